"""Isolated Python environments of the backends: making them, installing into them (uv or pip), the pip
configuration they inherit and the choice of torch for the machine."""
