"""The demo agents and their data, kept apart from the library: the flagship ``finops`` agent
(a cloud cost investigation over a small SQLite inventory) and ``soak`` (load and endurance)."""

AGENT_MODULES: tuple[str, ...] = ("examples.finops.agent", "examples.soak")
"""Modules whose ``Agent`` definitions this repository's worker and starter serve by default."""
