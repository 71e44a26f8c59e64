"""A tiny user-account service, deliberately vulnerable (see ../README.md)."""
