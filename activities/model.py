"""The ``call_model`` activity: one LLM call, through whichever provider the run uses.

All LLM I/O happens here, never in workflow code. Provider clients are built once per worker and
passed in; their own retries are off so every attempt shows in the run's Event History.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._heartbeat import heartbeating
from activities.providers.base import ModelProvider, split_model
from activities.providers.errors import to_activity_error
from contracts.model import ModelRequest, ModelResponse


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
                return await provider.complete(request, model_name)
            except ApplicationError:
                raise
            except Exception as err:
                raise to_activity_error(err) from err
