"""``StreamConsumer``: a streamed run's model text, exactly once, whatever the retries.

Rules, per model call (``call``, the activity id):

- Text belongs to one attempt. As soon as an event of a newer attempt of the same call arrives
  (its ``AttemptStarted`` or its first ``TextDelta``), the older attempt's text is discarded:
  a worker killed mid-call cannot announce its own failure, but its successor announces itself.
  ``AttemptFailed`` discards at once. Text of an older attempt arriving late (a zombie attempt
  whose timeout already passed) is ignored.
- ``ReplyDone`` is the workflow's record of the call's result. Text after it is ignored; if the
  text assembled so far differs from the reply (a publish was lost, or a structured answer came
  as a tool call), the reply wins and the view is told it was corrected.
- ``CallFailed`` discards the call's text: it has no reply.

The view (``StreamView``) is told about each change; ``follow_stream`` subscribes to a run by
workflow id, across continue-as-new, and feeds a consumer until the run ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, cast

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from durable_agents.streaming.events import (
    TOPIC,
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    ContinuedAsNew,
    ReplyDone,
    RunEnded,
    StepStarted,
    StreamEvent,
    TextDelta,
)

POLL_COOLDOWN = timedelta(milliseconds=50)
"""Least time between two polls when the subscriber is caught up."""


class StreamView(Protocol):
    """What a consumer tells whoever shows the stream (a terminal, a UI, a test)."""

    def step(self, event: StepStarted) -> None: ...

    def text(self, call: str, delta: str) -> None: ...

    def discard(self, call: str, attempt: int, text: str, reason: str) -> None:
        """``text`` (already shown) of ``attempt`` is void: take it back."""

    def reply(self, call: str, text: str, corrected: bool) -> None:
        """The call is done; ``corrected``: what was shown differs from ``text``, show ``text``."""

    def continued(self, event: ContinuedAsNew) -> None: ...

    def ended(self, event: RunEnded) -> None: ...


@dataclass
class CallText:
    """One model call as the consumer has assembled it."""

    call: str
    step: int
    attempt: int = 0
    seq: int = 0
    text: str = ""
    """The current attempt's text so far (after ``done``: the reply's text)."""
    done: bool = False
    failed: bool = False


@dataclass
class Discarded:
    call: str
    attempt: int
    text: str
    reason: str


@dataclass
class StreamConsumer:
    """Feed it every event of a run's stream (``feed``), in order."""

    view: StreamView | None = None
    calls: dict[str, CallText] = field(default_factory=dict)
    """Every call seen, in the order they started."""
    discarded: list[Discarded] = field(default_factory=list)
    corrections: int = 0
    """Replies whose text differed from what had been assembled live."""
    ended: RunEnded | None = None
    continued: list[ContinuedAsNew] = field(default_factory=list)
    """The run's continue-as-new hand-overs seen so far."""
    text_events: int = 0
    """``TextDelta`` events taken (not ignored)."""

    def transcript(self) -> list[str]:
        """The finished calls' texts, in order: each reply exactly once."""
        return [c.text for c in self.calls.values() if c.done and not c.failed]

    def feed(self, event: StreamEvent) -> None:
        if isinstance(event, StepStarted):
            self._call(event.call, event.step)
            if self.view:
                self.view.step(event)
        elif isinstance(event, AttemptStarted):
            self._attempt(self._call(event.call, event.step), event.attempt)
        elif isinstance(event, TextDelta):
            self._text(event)
        elif isinstance(event, AttemptFailed):
            call = self._call(event.call, event.step)
            if not call.done and call.attempt == event.attempt:
                self._discard(call, f"attempt {event.attempt} failed: {event.error}")
        elif isinstance(event, ReplyDone):
            self._reply(event)
        elif isinstance(event, CallFailed):
            call = self._call(event.call, event.step)
            if not call.done:
                self._discard(call, f"the call failed: {event.error}")
                call.done = call.failed = True
        elif isinstance(event, ContinuedAsNew):
            self.continued.append(event)
            if self.view:
                self.view.continued(event)
        elif isinstance(event, RunEnded):
            self.ended = event
            if self.view:
                self.view.ended(event)

    def _call(self, call_id: str, step: int) -> CallText:
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = CallText(call=call_id, step=step)
        return call

    def _attempt(self, call: CallText, attempt: int) -> bool:
        """Make ``attempt`` the call's current one if it is newer; whether it is current."""
        if call.done or attempt < call.attempt:
            return False
        if attempt > call.attempt:
            if call.text:
                self._discard(call, f"attempt {attempt} started")
            call.attempt, call.seq = attempt, 0
        return True

    def _text(self, event: TextDelta) -> None:
        call = self._call(event.call, event.step)
        if not self._attempt(call, event.attempt) or event.seq <= call.seq:
            return  # an older attempt's, or after the reply, or a duplicate
        call.seq = event.seq
        call.text += event.text
        self.text_events += 1
        if self.view:
            self.view.text(call.call, event.text)

    def _discard(self, call: CallText, reason: str) -> None:
        self.discarded.append(Discarded(call.call, call.attempt, call.text, reason))
        if self.view:
            self.view.discard(call.call, call.attempt, call.text, reason)
        call.text, call.seq = "", 0

    def _reply(self, event: ReplyDone) -> None:
        call = self._call(event.call, event.step)
        if call.done:
            return
        corrected = call.text != event.text
        self.corrections += corrected
        call.text, call.done = event.text, True
        if self.view:
            self.view.reply(call.call, event.text, corrected)


async def follow_stream(
    client: Client,
    workflow_id: str,
    consumer: StreamConsumer,
    from_offset: int = 0,
    before: Callable[[StreamEvent], Awaitable[None]] | None = None,
) -> RunEnded | None:
    """Feed ``consumer`` the stream of ``workflow_id`` (its latest run, then the runs it
    continues as new into) until the run ends; the ``RunEnded`` event, or ``None`` when the
    stream closed without one (the run was terminated, or timed out).

    Args:
        before: Awaited with each event before the consumer takes it (to print what else
            happened first, for instance).

    Raises:
        temporalio.client.WorkflowUpdateFailedError: The run does not stream (it was not
            started with ``stream``).
    """
    stream = WorkflowStreamClient.create(client, workflow_id)
    event_type = cast(Any, StreamEvent)  # an annotated union, which the pydantic converter takes
    async for item in stream.subscribe(
        [TOPIC], from_offset, result_type=event_type, poll_cooldown=POLL_COOLDOWN
    ):
        if before is not None:
            await before(item.data)
        consumer.feed(item.data)
        if consumer.ended is not None:
            return consumer.ended
    return None
