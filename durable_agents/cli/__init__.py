"""Command-line helpers behind ``starter.py``: following a run's tree, the pattern catalog."""
