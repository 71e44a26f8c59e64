"""``AgentStream``: the workflow end of a streamed run, on Temporal's workflow streams.

Built on ``temporalio.contrib.workflow_streams.WorkflowStream``: activities publish model text by
signal (batched, deduplicated per publishing client), subscribers long-poll by update, and the
workflow appends its own events (step started, reply done) to the same log. Appending is
in-memory state, not a command, and a run that was not started with ``stream`` never makes an
``AgentStream``: its history has no stream signals or updates at all.

Construct it from the workflow's ``__init__`` (``@workflow.init``), as the contrib requires, so
its handlers exist before the first signal or poll arrives::

    @workflow.init
    def __init__(self, input: AgentInput) -> None:
        self.agents.stream = AgentStream.for_input(input)

Dedupe in the contrib is per publishing client, and each activity attempt publishes through a
client of its own, so a retried model call's text arrives twice; ``TextDelta.attempt`` is what
lets a consumer (``StreamConsumer``) keep only the latest attempt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pydantic
from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

from durable_agents.contracts.model import ModelRequest, ModelResponse
from durable_agents.streaming.events import (
    TOPIC,
    CallFailed,
    ContinuedAsNew,
    ReplyDone,
    RunEnded,
    StepStarted,
)

ITEMS_CARRIED = 500
"""Stream items a run hands to its continuation (the latest): enough for a subscriber a step
behind to catch up; older ones are dropped so the continue-as-new input stays bounded."""
PUBLISHER_TTL = timedelta(minutes=15)
"""How long a publisher's dedupe state is kept across continue-as-new (the contrib's default)."""

_state_adapter: pydantic.TypeAdapter[WorkflowStreamState] = pydantic.TypeAdapter(
    WorkflowStreamState
)


class AgentStream:
    """A run's stream: publish events, hand the stream across continue-as-new, close it."""

    def __init__(self, prior_state: WorkflowStreamState | None = None) -> None:
        # The contrib checks that it is built from an ``__init__``; this one is, and is itself
        # only ever built from the workflow's ``__init__``.
        self._stream = WorkflowStream(prior_state)
        self._topic = self._stream.topic(TOPIC)

    @classmethod
    def for_input(cls, raw_input: Any) -> AgentStream | None:
        """The stream of a run whose (raw, undecoded) input asks for one, else ``None``.

        Lenient: a malformed input fails the run in ``@workflow.run`` with a clear message; here
        it only means no stream.
        """
        if isinstance(raw_input, pydantic.BaseModel):
            raw_input = raw_input.model_dump(mode="json")
        if not isinstance(raw_input, dict) or raw_input.get("stream") is not True:
            return None
        prior = raw_input.get("stream_state")
        try:
            state = _state_adapter.validate_python(prior) if prior is not None else None
        except pydantic.ValidationError:
            state = None
        return cls(state)

    def publish(self, event: pydantic.BaseModel) -> None:
        self._topic.publish(event)

    def model_call(
        self, request: ModelRequest, call: str, max_steps: int | None, scope: str
    ) -> ModelRequest:
        """Announce a model call (``StepStarted``); the request, asking its activity to stream."""
        self.publish(
            StepStarted(
                call=call, step=request.step, max_steps=max_steps, model=request.model,
                agent=request.agent, scope=scope,
            )
        )  # fmt: skip
        return request.model_copy(update={"stream": True})

    def reply(self, call: str, step: int, response: ModelResponse) -> None:
        """The call's result as recorded: the text every consumer ends with."""
        names = [c.name for c in response.tool_calls]
        self.publish(ReplyDone(call=call, step=step, text=response.text, tool_calls=names))

    def call_failed(self, call: str, step: int, error: str) -> None:
        self.publish(CallFailed(call=call, step=step, error=error))

    def continued(self, runs: int, steps: int) -> None:
        self.publish(ContinuedAsNew(runs=runs, steps=steps))

    def detach(self) -> None:
        """Release waiting subscribers before the run waits for its handlers to finish (to
        continue as new): a long poll is a handler that would otherwise never finish."""
        self._stream.detach_pollers()

    def reattach(self) -> None:
        """Take subscribers again after a ``detach`` that did not end in continue-as-new (a
        decision arrived while the run waited for its handlers)."""
        # The contrib has no public way back from detach_pollers; its flag is all there is.
        self._stream._detaching = False

    def state_for_continue_as_new(self) -> WorkflowStreamState:
        """The stream for the next run: offsets go on, the latest ``ITEMS_CARRIED`` items
        travel with it (call after ``detach``)."""
        state = self._stream.get_state(publisher_ttl=PUBLISHER_TTL)
        end = state.base_offset + len(state.log)
        if len(state.log) > ITEMS_CARRIED:
            self._stream.truncate(end - ITEMS_CARRIED)
            state = self._stream.get_state(publisher_ttl=PUBLISHER_TTL)
        return state

    async def close(self, status: str, steps: int) -> None:
        """The run is ending: tell subscribers, release their polls and let them finish."""
        self.publish(RunEnded(status=status, steps=steps))
        self.detach()
        await workflow.wait_condition(workflow.all_handlers_finished)
