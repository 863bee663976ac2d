"""A job of a backend: its request file, the background runner of its process steps, the pre-flight memory
estimate, and the import of its result into a segmentation."""
