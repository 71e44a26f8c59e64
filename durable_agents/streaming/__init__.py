"""Streamed runs: model text as it is generated, and step events as they happen.

Opt-in per run (``AgentInput(stream=True)``, ``starter.py run --stream``). Built on Temporal's
workflow streams (``temporalio.contrib.workflow_streams``), with every piece of model text marked
by its call and activity attempt so a consumer shows each reply exactly once, however often the
call was retried (docs/streaming.md).

- ``events``: what is published (``StreamEvent``, topic ``TOPIC``).
- ``AgentStream`` (``workflow_side``): the workflow end; ``AttemptStream`` (``publisher``): the
  model activity's end.
- ``StreamConsumer`` / ``follow_stream`` (``consumer``): reading a run's stream;
  ``TerminalView`` (``terminal``): printing it.

Only ``events`` and ``workflow_side`` are imported by workflow code.
"""

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

__all__ = [
    "TOPIC",
    "AttemptFailed",
    "AttemptStarted",
    "CallFailed",
    "ContinuedAsNew",
    "ReplyDone",
    "RunEnded",
    "StepStarted",
    "StreamEvent",
    "TextDelta",
]
