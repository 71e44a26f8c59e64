"""A model's price as recorded with a run: what budgets reserve against and costs settle at.

``load_agent`` looks the run's model up in the price table (``activities/providers/pricing``)
and returns the price with the agent, so it is in the run's history: replays, continuations and
audits use the price the run started with, whatever the table says later. ``None`` means the
model is not in the table: its cost is unknown (never silently $0) and only ``budget_tokens``
can bound it.
"""

from __future__ import annotations

from pydantic import BaseModel

from durable_agents.contracts.messages import Usage

TOKENS_PER_PRICE_UNIT = 1_000_000


class ModelPrice(BaseModel):
    """USD per million tokens, as of a date."""

    model: str
    """The table entry that matched (a family name such as ``claude-sonnet-4-5``)."""
    input: float
    """Uncached input tokens."""
    output: float
    cache_read: float
    """Input tokens served from the prompt cache."""
    cache_write: float
    """Input tokens written to the prompt cache."""
    as_of: str = ""
    """The date the table's prices were checked (``YYYY-MM-DD``)."""
    source: str = ""
    """Where the entry came from: ``builtin`` or the override file's path."""

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at this price (cache reads and writes at their own prices)."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        ) / TOKENS_PER_PRICE_UNIT

    def worst_case(self, input_tokens: int, max_tokens: int) -> float:
        """The most a call can cost: every input token uncached, or written to the cache
        (whichever is dearer), and ``max_tokens`` of output."""
        per_input = max(self.input, self.cache_write)
        return (input_tokens * per_input + max_tokens * self.output) / TOKENS_PER_PRICE_UNIT
