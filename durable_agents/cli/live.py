"""``starter.py run --stream``: the run's model text as it is generated, next to its steps.

The root run's steps and text come from its workflow stream (``durable_agents.streaming``); its
tool calls, approvals and sub-agent workflows still come from ``RunFollower``, which polls. Both
print through one ``TerminalView``, so a line of live text is ended before anything else is
printed, and a step's tool results are printed before the next step starts.
"""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from durable_agents.cli.follow import ApprovalHandler, RunFollower, _Followed, describe_call
from durable_agents.contracts import AgentStatusView
from durable_agents.streaming.consumer import StreamConsumer, follow_stream
from durable_agents.streaming.events import (
    CallFailed,
    ReplyDone,
    RunEnded,
    StepStarted,
    StreamEvent,
)
from durable_agents.streaming.terminal import TerminalView

STREAM_DRAIN_SECONDS = 10.0
"""How long the stream may go on after the run closed (its last items, read by query)."""


class StreamingRunFollower(RunFollower):
    """A ``RunFollower`` that leaves the root run's steps and model text to the stream."""

    def __init__(
        self,
        client: Client,
        view: TerminalView,
        out: TextIO,
        on_approval: ApprovalHandler | None = None,
    ) -> None:
        super().__init__(client, out=out, on_approval=on_approval)
        self.view = view
        self._out_stream = out
        self._root_calls: set[tuple[int, str]] = set()
        self.holding = False
        """A model call of the root run is being streamed: what the polls find about the root
        (its tool calls, an approval it waits for) waits until the reply is complete, so it
        never cuts a reply's text in two (the stream may lag behind the polls)."""
        self._held: list[tuple[_Followed, str, bool]] = []

    def _print(self, followed: _Followed, text: str, always: bool = False) -> None:
        if self.holding and not followed.depth:
            self._held.append((followed, text, always))
            return
        self.view.break_line()
        super()._print(followed, text, always)

    def _print_steps(self, followed: _Followed, view: AgentStatusView) -> None:
        if followed.depth:
            super()._print_steps(followed, view)
        elif not self.holding:
            self.print_tool_calls(view)

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        """Print what was held back while a reply streamed."""
        self.holding = False
        held, self._held = self._held, []
        for followed, text, always in held:
            self._print(followed, text, always)

    def print_tool_calls(self, view: AgentStatusView) -> None:
        """The root run's finished tool calls not printed yet."""
        for step in view.recent_steps:
            for call in step.tool_calls:
                key = (step.step, call.call_id)
                if call.result_preview and key not in self._root_calls:
                    self._root_calls.add(key)
                    self.view.break_line()
                    print(describe_call(call), file=self._out_stream, flush=True)

    async def catch_up(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Print the root's tool results that finished before the event about to be shown."""
        try:
            view = await handle.query("status", result_type=AgentStatusView)
        except RPCError:
            return
        self.print_tool_calls(view)


async def follow_streamed(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    out: TextIO,
    on_approval: ApprovalHandler | None = None,
    tty: bool | None = None,
) -> StreamConsumer:
    """Follow ``handle``'s run (by workflow id) to its end, printing its live text, its steps,
    tool calls, approvals and children; the consumer, with the run's text as it was shown."""
    view = TerminalView(out, tty=tty)
    follower = StreamingRunFollower(client, view, out, on_approval)
    consumer = StreamConsumer(view)

    async def before(event: StreamEvent) -> None:
        if isinstance(event, StepStarted | RunEnded):
            follower.release()
            await follower.catch_up(handle)
        if isinstance(event, StepStarted):
            follower.hold()
        elif isinstance(event, ReplyDone | CallFailed):
            # After the consumer has taken this event (it finishes the reply's line).
            asyncio.get_running_loop().call_soon(follower.release)

    async def stream() -> None:
        try:
            await follow_stream(client, handle.id, consumer, before=before)
        except WorkflowUpdateFailedError as err:
            view.break_line()
            reason = getattr(err.cause, "message", None) or str(err)
            print(f"(no live text: the run does not stream: {reason})", file=out, flush=True)

    streaming = asyncio.create_task(stream())
    try:
        await follower.follow(handle)
        # The stream ends with the run's RunEnded event; a run terminated from outside has
        # none, and its last items are read by query: give that a moment, no more.
        await asyncio.wait_for(asyncio.shield(streaming), STREAM_DRAIN_SECONDS)
    except TimeoutError:
        print("(the stream did not close; stopped following it)", file=out, flush=True)
    finally:
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        follower.release()
    view.break_line()
    return consumer
