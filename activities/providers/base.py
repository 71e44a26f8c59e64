"""The one interface every model provider implements."""

from __future__ import annotations

from typing import Protocol

from durable_agents.contracts.model import ModelRequest, ModelResponse


class ModelProvider(Protocol):
    """Turns a provider-neutral ``ModelRequest`` into one provider API call.

    Implementations make exactly one request per ``complete`` call, with their SDK's own retries
    off: Temporal owns retries so every attempt is visible in the workflow's history. They raise
    the SDK's exceptions unchanged; ``activities.providers.errors.to_activity_error`` maps them.
    """

    name: str

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse: ...


def split_model(model: str) -> tuple[str, str]:
    """``"anthropic:claude-sonnet-4-5"`` -> ``("anthropic", "claude-sonnet-4-5")``."""
    provider, _, name = model.partition(":")
    return provider, name
