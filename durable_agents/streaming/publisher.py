"""``AttemptStream``: the activity end of a streamed model call.

Each attempt of the ``call_model`` activity publishes through a workflow-stream client of its
own (``WorkflowStreamClient.from_within_activity``), every event marked with the call (the
activity id) and the attempt number. Publishing is best effort: a stream that cannot be reached
never fails or delays the model call for long (the workflow's ``ReplyDone`` carries the text
anyway), and it never changes what the activity returns or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import timedelta
from types import TracebackType

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from durable_agents.streaming.events import (
    TOPIC,
    AttemptFailed,
    AttemptStarted,
    TextDelta,
)

BATCH_INTERVAL = timedelta(milliseconds=200)
"""How often the text that arrived is sent (one ``TextDelta``, one signal): the trade between how
live the text is and how many history events a streamed step adds (``bench/streaming.py``
measures it). The worker's ``DURABLE_AGENTS_STREAM_BATCH_MS`` overrides it."""
FLUSH_TIMEOUT_SECONDS = 5.0
"""Most an attempt waits, when it ends, for its last text to reach the workflow."""
MAX_RETRY_DURATION = timedelta(seconds=30)
"""How long the publisher retries a batch the server did not take (the contrib's default is
ten minutes; a model call should not wait on its audience that long)."""

log = logging.getLogger(__name__)


def batch_interval_from_env() -> timedelta:
    value = os.environ.get("DURABLE_AGENTS_STREAM_BATCH_MS")
    if not value:
        return BATCH_INTERVAL
    try:
        millis = float(value)
    except ValueError:
        raise ValueError(
            f"DURABLE_AGENTS_STREAM_BATCH_MS is {value!r}; expected milliseconds, e.g. 200"
        ) from None
    return timedelta(milliseconds=max(millis, 10.0))


class AttemptStream:
    """Publishes one model-call attempt: ``AttemptStarted``, its text, and ``AttemptFailed`` if
    it raises. Use inside the activity: ``async with AttemptStream(step) as out: out.text(...)``.

    The first piece of text goes out at once; after that, what arrived during each batch
    interval goes out as one ``TextDelta`` in one signal, however many pieces the provider sent.
    Batches are sent by this class's own task with the contrib client's ``flush`` (not by the
    client's background flusher, which Python 3.11's ``asyncio.wait_for`` can keep from
    stopping when it is cancelled just as it wakes).
    """

    def __init__(self, step: int, batch_interval: timedelta | None = None) -> None:
        info = activity.info()
        self.call = info.activity_id
        self.step = step
        self.attempt = info.attempt
        self._interval = (batch_interval or batch_interval_from_env()).total_seconds()
        self._seq = 0
        self._pending = ""
        self._wake = asyncio.Event()
        self._closing = False
        self._broken = False
        self._sender: asyncio.Task[None] | None = None
        self._client = WorkflowStreamClient.from_within_activity(
            max_retry_duration=MAX_RETRY_DURATION
        )
        self._topic = self._client.topic(TOPIC)

    async def __aenter__(self) -> AttemptStream:
        # Goes with the first text (sent at once), or with the first batch: either way within a
        # batch interval, which is soon enough to void a dead predecessor's text.
        self._topic.publish(AttemptStarted(call=self.call, step=self.step, attempt=self.attempt))
        self._sender = asyncio.create_task(self._send_batches())
        return self

    def text(self, delta: str) -> None:
        """Take a piece of model text (called by the provider as it streams)."""
        if not delta:
            return
        self._pending += delta
        if self._seq == 0:
            self._wake.set()

    def _take_text(self) -> None:
        if not self._pending:
            return
        self._seq += 1
        event = TextDelta(
            call=self.call, step=self.step, attempt=self.attempt, seq=self._seq, text=self._pending
        )
        self._pending = ""
        self._topic.publish(event)

    async def _send_batches(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            self._take_text()
            await self._flush()

    async def _flush(self) -> None:
        if self._broken:
            return
        try:
            await self._client.flush()
        except Exception as err:  # the stream must never fail the model call
            self._broken = True
            log.warning("streaming %s attempt %d stopped: %r", self.call, self.attempt, err)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        self._wake.set()
        try:
            if self._sender is not None:
                await asyncio.wait_for(self._sender, FLUSH_TIMEOUT_SECONDS)
            self._take_text()
            if exc is not None:
                error = str(exc) or type(exc).__name__
                self._topic.publish(
                    AttemptFailed(call=self.call, step=self.step, attempt=self.attempt, error=error)
                )
            await asyncio.wait_for(self._flush(), FLUSH_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("model text of %s attempt %d not fully streamed", self.call, self.attempt)
