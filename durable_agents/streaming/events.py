"""What a streamed run publishes on its workflow stream: one topic, ``agent``, of ``StreamEvent``.

Model text is marked with the call it belongs to (``call``: the model activity's id, ``model-3``)
and the activity attempt that produced it (``attempt``: ``activity.info().attempt``), so a
consumer can tell a retried call's text from the failed attempt's::

    StepStarted    workflow   a model call begins (step, model)
    AttemptStarted activity   attempt N of that call is running
    TextDelta      activity   text of attempt N, numbered (seq) within the attempt
    AttemptFailed  activity   attempt N failed (best effort: a killed worker sends nothing)
    ReplyDone      workflow   the call's result as recorded in history: the authoritative text
    CallFailed     workflow   the call failed for good (its text is void)
    ContinuedAsNew workflow   the run continued as new; the stream goes on in the next run
    RunEnded       workflow   the run finished (status, steps)

Plain pydantic: imported inside the workflow sandbox and by activities and consumers alike.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

TOPIC = "agent"
"""The workflow-stream topic every event of a streamed agent run is published on."""


class StepStarted(BaseModel):
    kind: Literal["step"] = "step"
    call: str
    """The model activity's id (``model-3``, ``model-3-fallback-1``, ``planner-1:model-2``)."""
    step: int
    max_steps: int | None = None
    model: str = ""
    agent: str = ""
    scope: str = ""
    """The inline agent's label in a workflow that runs several (``""``: the run's own agent)."""


class AttemptStarted(BaseModel):
    kind: Literal["attempt"] = "attempt"
    call: str
    step: int
    attempt: int


class TextDelta(BaseModel):
    kind: Literal["text"] = "text"
    call: str
    step: int
    attempt: int
    seq: int
    """1, 2, 3 ... within the attempt."""
    text: str


class AttemptFailed(BaseModel):
    kind: Literal["attempt_failed"] = "attempt_failed"
    call: str
    step: int
    attempt: int
    error: str


class ReplyDone(BaseModel):
    kind: Literal["reply"] = "reply"
    call: str
    step: int
    text: str
    """The reply's text as the workflow recorded it."""
    tool_calls: list[str] = Field(default_factory=list)
    """Names of the tools the model asked for."""


class CallFailed(BaseModel):
    kind: Literal["call_failed"] = "call_failed"
    call: str
    step: int
    error: str


class ContinuedAsNew(BaseModel):
    kind: Literal["continued"] = "continued"
    runs: int
    """Runs in the chain, the new one included."""
    steps: int


class RunEnded(BaseModel):
    kind: Literal["ended"] = "ended"
    status: str
    steps: int


StreamEvent = Annotated[
    StepStarted
    | AttemptStarted
    | TextDelta
    | AttemptFailed
    | ReplyDone
    | CallFailed
    | ContinuedAsNew
    | RunEnded,
    Field(discriminator="kind"),
]
"""Any event on the ``agent`` topic (decode with ``result_type=StreamEvent``)."""
