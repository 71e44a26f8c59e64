"""The ``call_model`` activity: one LLM call, through whichever provider the run uses.

All LLM I/O happens here, never in workflow code. Provider clients are built once per worker and
passed in; their own retries are off so every attempt shows in the run's Event History.

A request with ``stream`` set (a run started with ``stream``) is made with the provider's
streaming API, and its text is published to the run's workflow stream as it arrives, marked with
this activity's id and attempt (``durable_agents.streaming``). The response returned, and the
errors raised, are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._heartbeat import heartbeating
from activities.providers.base import ModelProvider, StreamingProvider, split_model
from activities.providers.errors import to_activity_error
from durable_agents.contracts.model import ModelRequest, ModelResponse

MAX_CALL_ID_CHARS = 64
"""Tool-call ids become parts of activity ids and idempotency keys; longer ones are replaced."""


def with_usable_call_ids(response: ModelResponse, step: int) -> ModelResponse:
    """``response`` with tool-call ids the workflow can key on: unique, non-empty, short.

    The workflow names each call's activity and idempotency key after its id, so a provider (or
    a misbehaving model server) that repeats an id, sends an empty one or a huge one would make
    two calls collide or the activity id too long. Such ids are replaced by ``call_STEP_INDEX``;
    the conversation keeps the replacement, so tool results still match their calls.
    """
    seen: set[str] = set()
    calls = []
    for index, call in enumerate(response.tool_calls):
        usable = (
            call.id
            and len(call.id) <= MAX_CALL_ID_CHARS
            and call.id not in seen
            and call.id.isascii()
            and call.id.isprintable()
        )
        if not usable:
            call = call.model_copy(update={"id": f"call_{step}_{index}"})
        if call.id in seen:  # the replacement itself was taken
            call = call.model_copy(update={"id": f"call_{step}_{index}_{len(seen)}"})
        seen.add(call.id)
        calls.append(call)
    if calls == response.tool_calls:
        return response
    return response.model_copy(update={"tool_calls": calls})


class ModelActivities:
    def __init__(self, providers: Mapping[str, ModelProvider]) -> None:
        self._providers = dict(providers)

    @activity.defn(name="call_model")
    async def call_model(self, request: ModelRequest) -> ModelResponse:
        provider_name, model_name = split_model(request.model)
        provider = self._providers.get(provider_name)
        if provider is None:
            raise ApplicationError(
                f"model provider {provider_name!r} is not configured on this worker "
                f"(configured: {', '.join(sorted(self._providers))})",
                type="ProviderNotConfigured",
                non_retryable=True,
            )
        async with heartbeating():
            try:
                if request.stream:
                    response = await self._streamed(provider, request, model_name)
                else:
                    response = await provider.complete(request, model_name)
            except ApplicationError:
                raise
            except Exception as err:
                raise to_activity_error(err) from err
        return with_usable_call_ids(response, request.step)

    @staticmethod
    async def _streamed(
        provider: ModelProvider, request: ModelRequest, model_name: str
    ) -> ModelResponse:
        """The call on the provider's streaming API, its text published as it arrives (a
        provider without one answers whole, and its reply is published as one piece)."""
        from durable_agents.streaming.publisher import AttemptStream

        async with AttemptStream(request.step) as out:
            if isinstance(provider, StreamingProvider):
                return await provider.stream(request, model_name, out.text)
            response = await provider.complete(request, model_name)
            out.text(response.text)
            return response
