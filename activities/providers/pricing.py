"""List prices of the hosted models, for the cost shown next to each model call.

Prices are USD per million tokens, standard tier, prompts under any long-context surcharge
threshold. Anthropic's cache write price is the 5-minute ``ephemeral`` cache. OpenAI caches
prompts automatically and charges nothing extra to write them, so its cache write price is the
input price. Update the table when providers change their prices; it is informational
(budgets and dashboards), never used to decide what the agent does.
"""

from __future__ import annotations

from dataclasses import dataclass

from durable_agents.contracts.messages import Usage

TOKENS_PER_PRICE_UNIT = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    """Uncached input tokens."""
    output: float
    cache_read: float
    """Input tokens served from the prompt cache."""
    cache_write: float
    """Input tokens written to the prompt cache."""


PRICES: dict[str, ModelPrice] = {
    # Anthropic
    "claude-opus-4-1": ModelPrice(input=15.0, output=75.0, cache_read=1.50, cache_write=18.75),
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75),
    "claude-sonnet-4": ModelPrice(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75),
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_read=0.10, cache_write=1.25),
    "claude-3-5-haiku": ModelPrice(input=0.80, output=4.0, cache_read=0.08, cache_write=1.0),
    # OpenAI
    "gpt-4.1": ModelPrice(input=2.0, output=8.0, cache_read=0.50, cache_write=2.0),
    "gpt-4.1-mini": ModelPrice(input=0.40, output=1.60, cache_read=0.10, cache_write=0.40),
    "gpt-4.1-nano": ModelPrice(input=0.10, output=0.40, cache_read=0.025, cache_write=0.10),
    "gpt-4o": ModelPrice(input=2.50, output=10.0, cache_read=1.25, cache_write=2.50),
    "gpt-4o-mini": ModelPrice(input=0.15, output=0.60, cache_read=0.075, cache_write=0.15),
    "o4-mini": ModelPrice(input=1.10, output=4.40, cache_read=0.275, cache_write=1.10),
}


def price_for(model_name: str) -> ModelPrice | None:
    """The price of ``model_name``: an exact match, else the longest matching prefix.

    Prefixes let dated snapshots and aliases (``claude-sonnet-4-5-20250929``,
    ``gpt-4o-mini-2024-07-18``) share their family's price; the longest prefix wins so
    ``gpt-4o-mini-...`` is not priced as ``gpt-4o``.
    """
    if model_name in PRICES:
        return PRICES[model_name]
    matches = [name for name in PRICES if model_name.startswith(name)]
    return PRICES[max(matches, key=len)] if matches else None


def cost_usd(model_name: str, usage: Usage) -> float:
    """What ``usage`` cost on ``model_name``, in USD.

    Returns 0.0 for models not in ``PRICES`` (local models behind an OpenAI-compatible server,
    or a model released after this table was written): an unknown cost is reported as free
    rather than failing the call.
    """
    price = price_for(model_name)
    if price is None:
        return 0.0
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    )
    return total / TOKENS_PER_PRICE_UNIT
