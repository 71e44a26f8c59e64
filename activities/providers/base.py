"""The one interface every model provider implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from durable_agents.contracts.model import ModelRequest, ModelResponse


class ModelProvider(Protocol):
    """Turns a provider-neutral ``ModelRequest`` into one provider API call.

    Implementations make exactly one request per ``complete`` call, with their SDK's own retries
    off: Temporal owns retries so every attempt is visible in the workflow's history. They raise
    the SDK's exceptions unchanged; ``activities.providers.errors.to_activity_error`` maps them.
    """

    name: str

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse: ...


TextSink = Callable[[str], None]
"""Takes each piece of a reply's text as the provider streams it."""


@runtime_checkable
class StreamingProvider(Protocol):
    """A provider that can also stream: ``stream`` makes the same single request as
    ``complete`` on the SDK's streaming API, passes each piece of text to ``on_text`` as it
    arrives, and returns the same ``ModelResponse``. A stream that ends before the reply is
    complete raises (``errors.StreamIncomplete``), so a cut connection is retried like any other.
    """

    name: str

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse: ...

    async def stream(
        self, request: ModelRequest, model_name: str, on_text: TextSink
    ) -> ModelResponse: ...


def split_model(model: str) -> tuple[str, str]:
    """``"anthropic:claude-sonnet-4-5"`` -> ``("anthropic", "claude-sonnet-4-5")``."""
    provider, _, name = model.partition(":")
    return provider, name
