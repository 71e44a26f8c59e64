"""A run's budget as workflow state: limits, what was spent, what is set aside, per child.

Shown in ``status`` and the result, carried across continue-as-new. The accounting itself is in
``durable_agents.runner.budget`` (deterministic workflow code).
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChildBudget(BaseModel):
    """The slice of its budget a run granted to one child (a sub-agent, a pattern's agent)."""

    label: str
    workflow_id: str
    granted_usd: float | None = None
    granted_tokens: int | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    open: bool = True
    """Still running: its grant is reserved here; once it ends, what it spent is counted and the
    rest comes back."""


class Budget(BaseModel):
    """Limits (``None``: none) and the spend against them. ``spent`` counts settled model calls
    (at the price recorded with the run) and ended children; ``reserved`` the worst case of the
    model call in flight and the grants of children still running. Nothing starts unless
    ``spent + reserved + its worst case`` fits."""

    limit_usd: float | None = None
    limit_tokens: int | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    unpriced_calls: int = 0
    """Model calls whose cost is unknown (no price for the model): they count only in tokens."""
    children: list[ChildBudget] = Field(default_factory=list)
    exhausted: str | None = None
    """Why the run stopped for its budget (what the next call needed, what was left)."""

    @property
    def limited(self) -> bool:
        return self.limit_usd is not None or self.limit_tokens is not None

    def available_usd(self) -> float | None:
        if self.limit_usd is None:
            return None
        return max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd)

    def available_tokens(self) -> int | None:
        if self.limit_tokens is None:
            return None
        return max(0, self.limit_tokens - self.spent_tokens - self.reserved_tokens)
