"""The demo (Demo.py: classic tools, AI and comparison on the example CT) and its PNG overview (Overview.py)."""
