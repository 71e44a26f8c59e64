"""The demo agents and their data, kept apart from the library: the flagship ``finops`` agent
(a cloud cost investigation over a small SQLite inventory), ``soak`` (load and endurance),
``triage`` (typed output), ``team`` (the agents of ``starter.py patterns``' examples) and
``BillReview`` (``bill_review.py``), a workflow written on the
library's API as a user would; ``security_review`` (``SecurityReviewWorkflow``: parallel
reviewers, a fix verified by tests in a sandbox, an approved write) is the second flagship."""

AGENT_MODULES: tuple[str, ...] = (
    "examples.finops.agent",
    "examples.soak",
    "examples.triage",
    "examples.team",
    "examples.security_review.agents",
)
"""Modules whose ``Agent`` definitions this repository's worker and starter serve by default."""
