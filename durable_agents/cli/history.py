"""A run's steps, read back from its Temporal history (``starter.py steps``, ``starter.py fork``).

History is the record: every model call is a ``call_model`` activity whose input (the
``ModelRequest``, with the conversation it sent) and result (the ``ModelResponse``) are in it,
every tool call a ``run_tool`` / ``call_mcp_tool`` activity with its ``ToolRequest`` and
``ToolOutcome`` (a local tool's call: a marker with its ``ToolOutcome``), every human decision
a signal or an update. Nothing here asks the workflow: closed runs, and runs whose worker is
gone, read the same.

A run that continued as new is a chain of runs; each run's first event names the run before it
(``continued_execution_run_id``, copied into a run made by ``temporal workflow reset`` too), so
the chain is walked back from the latest run and read oldest first. Payloads are decoded with
the client's own data converter, so offloaded (external storage) and encrypted payloads read
as they do on a worker.

Only ``AgentWorkflow`` runs are read: a pattern's inline agents share their workflow's history
under scoped activity ids; its child agents are ``AgentWorkflow`` runs of their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from durable_agents.contracts import (
    AgentInput,
    AgentResult,
    AgentSpec,
    ModelRequest,
    ModelResponse,
    ToolCallRecord,
    ToolOutcome,
    ToolRequest,
    ToolResultMessage,
)
from durable_agents.contracts.agent_io import ForkOrigin, LoadedAgent
from durable_agents.contracts.approvals import ApprovalSignal, DecideResult, Decision

ValueT = TypeVar("ValueT")

PREVIEW_CHARS = 300
"""How much of each tool result a step shows (as the ``status`` query does)."""

TOOL_ACTIVITIES = ("run_tool", "call_mcp_tool")
TIMEOUT_APPROVER = "system:timeout"


class HistoryError(Exception):
    """The run cannot be read as an agent run: unknown id, not an ``AgentWorkflow``, a payload
    this client cannot decode."""


class StepApproval(BaseModel):
    """A human decision on one of a step's gated tool calls."""

    id: str
    tool: str
    decision: Decision | None = None
    """``None``: still pending."""
    approver: str = ""
    """Who decided; ``system:timeout`` when the deadline's default applied."""
    comment: str = ""


class RunStep(BaseModel):
    """One step (model call) of a run: what the model said and did, and what came of it."""

    step: int
    run_id: str
    """The run of the continue-as-new chain that made the model call."""
    model: str
    """The model that answered (a fallback's name when the run's own model failed)."""
    text: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    approvals: list[StepApproval] = Field(default_factory=list)


class RunSteps(BaseModel):
    """What ``starter.py steps`` prints: a run's steps over its whole continue-as-new chain."""

    workflow_id: str
    run_ids: list[str]
    """The chain, oldest first."""
    agent: str
    task: str
    status: str
    """The latest run's state: ``running``, ``completed``, ``failed``, ``terminated`` ..."""
    forked_from: ForkOrigin | None = None
    steps: list[RunStep]


@dataclass
class Turn:
    """One step's model call as recorded, and its tool calls' requests and outcomes."""

    run_id: str
    request: ModelRequest
    response: ModelResponse
    tool_requests: dict[str, ToolRequest] = field(default_factory=dict)
    outcomes: dict[str, ToolOutcome] = field(default_factory=dict)


@dataclass
class RunHistory:
    """Everything read from one run's history chain; ``steps()`` for people, ``turns`` for
    forks."""

    workflow_id: str
    run_ids: list[str]
    input: AgentInput
    """The first run's input (as the starter sent it)."""
    status: str
    spec: AgentSpec | None = None
    turns: dict[int, Turn] = field(default_factory=dict)
    decisions: dict[str, StepApproval] = field(default_factory=dict)
    result: AgentResult | None = None

    def steps(self) -> list[RunStep]:
        return [self._step(n) for n in sorted(self.turns)]

    def view(self) -> RunSteps:
        return RunSteps(
            workflow_id=self.workflow_id,
            run_ids=self.run_ids,
            agent=self.input.agent,
            task=self.input.task,
            status=self.status,
            forked_from=self.input.forked_from,
            steps=self.steps(),
        )

    def tool_results(self, step: int) -> dict[str, ToolResultMessage]:
        """Step ``step``'s tool results as the model saw them in the next request (refused and
        delegated calls included), else as the tool activities returned them."""
        turn = self.turns[step]
        following = self.turns.get(step + 1)
        seen = following.request.messages if following is not None else []
        results = {
            o.call_id: ToolResultMessage(
                tool_call_id=o.call_id, name=o.name, content=o.content, is_error=o.is_error
            )
            for o in turn.outcomes.values()
        }
        for message in seen:
            if isinstance(message, ToolResultMessage):
                results[message.tool_call_id] = message
        return results

    def _step(self, n: int) -> RunStep:
        turn = self.turns[n]
        results = self.tool_results(n)
        calls, approvals = [], []
        for index, call in enumerate(turn.response.tool_calls):
            result = results.get(call.id)
            request = turn.tool_requests.get(call.id)
            calls.append(
                ToolCallRecord(
                    step=n,
                    call_id=call.id,
                    name=call.name,
                    arguments=request.arguments if request is not None else call.arguments,
                    is_error=result.is_error if result is not None else False,
                    result_preview=result.content[:PREVIEW_CHARS] if result is not None else "",
                    idempotency_key=request.idempotency_key if request is not None else None,
                )
            )
            approval = self._approval(n, index, call.name, call.id, result)
            if approval is not None:
                approvals.append(approval)
        return RunStep(
            step=n,
            run_id=turn.run_id,
            model=turn.request.model,
            text=turn.response.text,
            tool_calls=calls,
            approvals=approvals,
        )

    def _approval(
        self, step: int, index: int, tool: str, call_id: str, result: ToolResultMessage | None
    ) -> StepApproval | None:
        approval_id = f"apr-{step}-{index}"  # AgentLoop's ids for the workflow's own agent
        known = self.decisions.get(approval_id)
        if known is not None:
            return known
        rule = self.spec.policy.get(tool) if self.spec is not None else None
        if rule is None or rule.action != "require_approval":
            return None
        if result is None:
            return StepApproval(id=approval_id, tool=tool)  # pending
        if "refused by policy" in result.content:
            return None  # refused before anyone was asked
        # No human decision in history, yet the call has a result: the deadline's default
        # decided (the only decision the workflow makes by itself).
        ran = call_id in self.turns[step].tool_requests
        return StepApproval(
            id=approval_id,
            tool=tool,
            decision="approve" if ran else "reject",
            approver=TIMEOUT_APPROVER,
        )


def _local_activity_of(details: Mapping[str, Payloads]) -> tuple[str, str]:
    """(activity type, activity id) of a local activity's marker; empty when not one."""
    try:
        data = json.loads(details["data"].payloads[0].data)
        return str(data["activity_type"]), str(data["activity_id"])
    except (KeyError, IndexError, ValueError, TypeError):
        return "", ""


async def read_run(client: Client, workflow_id: str) -> RunHistory:
    """Read the agent run ``workflow_id`` (its latest chain) from Temporal.

    Raises:
        HistoryError: No such workflow, not an ``AgentWorkflow``, or an undecodable payload.
    """
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise HistoryError(f"no workflow {workflow_id!r}") from None
        raise
    if description.workflow_type != "AgentWorkflow":
        raise HistoryError(
            f"{workflow_id!r} is a {description.workflow_type} workflow, not an AgentWorkflow: "
            "steps and fork read single-agent runs (a pattern's child agents are AgentWorkflow "
            "runs of their own; its inline agents cannot be forked)"
        )
    chain: list[tuple[str, list[HistoryEvent]]] = []
    run_id = description.run_id
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        chain.append((run_id, events))
        run_id = events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    chain.reverse()
    status = description.status.name.lower() if description.status else "unknown"
    reader = _Reader(client, workflow_id)
    for index, (run_id, events) in enumerate(chain):
        await reader.read(run_id, events, first=index == 0)
    assert reader.input is not None
    return RunHistory(
        workflow_id=workflow_id,
        run_ids=[run_id for run_id, _ in chain],
        input=reader.input,
        status=status,
        spec=reader.spec,
        turns=reader.turns,
        decisions=reader.decisions,
        result=reader.result,
    )


class _Reader:
    """Folds a chain's events, run by run, into turns and decisions."""

    def __init__(self, client: Client, workflow_id: str) -> None:
        self._client = client
        self._workflow_id = workflow_id
        self.input: AgentInput | None = None
        self.spec: AgentSpec | None = None
        self.turns: dict[int, Turn] = {}
        self.decisions: dict[str, StepApproval] = {}
        self.result: AgentResult | None = None
        self._tool_requests: dict[tuple[int, str], ToolRequest] = {}
        self._outcomes: dict[tuple[int, str], ToolOutcome] = {}

    async def decode(self, payloads: Payloads, as_type: type[ValueT]) -> ValueT:
        try:
            values = await self._client.data_converter.decode(list(payloads.payloads), [as_type])
        except Exception as err:  # a missing store, a wrong key, a shape we do not know
            raise HistoryError(
                f"cannot decode a {as_type.__name__} in {self._workflow_id!r}'s history: {err} "
                "(this client needs the workers' payload store and encryption keys)"
            ) from err
        value: ValueT = values[0]
        return value

    async def read(self, run_id: str, events: list[HistoryEvent], first: bool) -> None:
        scheduled: dict[int, HistoryEvent] = {}
        for event in events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                await self._started(event, first)
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                await self._marker(event)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                attributes = event.activity_task_completed_event_attributes
                start = scheduled.get(attributes.scheduled_event_id)
                if start is not None:
                    await self._completed(run_id, start, attributes.result)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                await self._signal(event)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
                outcome = event.workflow_execution_update_completed_event_attributes.outcome
                if outcome.HasField("success"):
                    await self._decided(outcome.success)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                completed = event.workflow_execution_completed_event_attributes
                self.result = await self.decode(completed.result, AgentResult)
                for record in self.result.approvals:
                    self.decisions[record.id] = StepApproval(
                        id=record.id,
                        tool=record.tool,
                        decision=record.decision,
                        approver=record.approver,
                        comment=record.comment,
                    )
        for turn in self.turns.values():
            step = turn.request.step
            for call in turn.response.tool_calls:
                if (step, call.id) in self._tool_requests:
                    turn.tool_requests[call.id] = self._tool_requests[step, call.id]
                if (step, call.id) in self._outcomes:
                    turn.outcomes[call.id] = self._outcomes[step, call.id]

    async def _started(self, event: HistoryEvent, first: bool) -> None:
        attributes = event.workflow_execution_started_event_attributes
        value = await self.decode(attributes.input, AgentInput)
        if first:
            self.input = value
        if value.carry is not None:
            self.spec = value.carry.spec

    async def _marker(self, event: HistoryEvent) -> None:
        # Local activities leave markers: ``load_agent`` (its result is the spec, with the
        # policy that says which tools are gated) and local tool calls (``Tool.local``: the
        # outcome is recorded, the request is not; the model's call has its arguments).
        details = event.marker_recorded_event_attributes.details
        if "result" not in details or not details["result"].payloads:
            return
        activity_type, activity_id = _local_activity_of(details)
        if activity_type == "run_tool" and activity_id.startswith("tool-"):
            outcome = await self.decode(details["result"], ToolOutcome)
            step = activity_id.split("-", 2)[1]
            if step.isdigit():
                self._outcomes[int(step), outcome.call_id] = outcome
        elif self.spec is None:
            try:
                loaded = await self.decode(details["result"], LoadedAgent)
            except HistoryError:
                return  # another local activity's marker
            self.spec = loaded.spec

    async def _completed(self, run_id: str, start: HistoryEvent, result: Payloads) -> None:
        attributes = start.activity_task_scheduled_event_attributes
        name, activity_id = attributes.activity_type.name, attributes.activity_id
        if name == "call_model" and activity_id.startswith("model-"):
            request = await self.decode(attributes.input, ModelRequest)
            if request.purpose == "turn":
                response = await self.decode(result, ModelResponse)
                self.turns[request.step] = Turn(run_id, request, response)
        elif name in TOOL_ACTIVITIES and activity_id.startswith("tool-"):
            tool_request = await self.decode(attributes.input, ToolRequest)
            key = (tool_request.step, tool_request.call_id)
            self._tool_requests[key] = tool_request
            self._outcomes[key] = await self.decode(result, ToolOutcome)

    async def _signal(self, event: HistoryEvent) -> None:
        attributes = event.workflow_execution_signaled_event_attributes
        if attributes.signal_name not in ("approve", "reject"):
            return
        try:
            signal = await self.decode(attributes.input, ApprovalSignal)
        except HistoryError:
            return  # a malformed signal: the workflow ignored it too
        approval_id = signal.approval_id or self._only_open()
        if approval_id is None or approval_id in self.decisions:
            return
        decision: Decision = "approve" if attributes.signal_name == "approve" else "reject"
        self.decisions[approval_id] = StepApproval(
            id=approval_id,
            tool=self._tool_of(approval_id),
            decision=decision,
            approver=signal.approver,
            comment=signal.reason or signal.comment,
        )

    async def _decided(self, payloads: Payloads) -> None:
        try:
            result = await self.decode(payloads, DecideResult)
        except HistoryError:
            return  # another update's result
        self.decisions.setdefault(
            result.approval_id,
            StepApproval(
                id=result.approval_id,
                tool=result.tool,
                decision=result.decision,
                approver=result.approver,
            ),
        )

    def _open(self) -> list[str]:
        """Gated calls asked for so far that have neither a decision nor a result."""
        gated = {
            name
            for name, rule in (self.spec.policy.items() if self.spec is not None else [])
            if rule.action == "require_approval"
        }
        found = []
        for step, turn in self.turns.items():
            for index, call in enumerate(turn.response.tool_calls):
                approval_id = f"apr-{step}-{index}"
                if (
                    call.name in gated
                    and approval_id not in self.decisions
                    and (step, call.id) not in self._outcomes
                ):
                    found.append(approval_id)
        return found

    def _only_open(self) -> str | None:
        # A signal without ``approval_id`` decides the one approval pending, as the workflow's
        # desk resolves it; with none or several pending the workflow ignored it.
        candidates = self._open()
        return candidates[0] if len(candidates) == 1 else None

    def _tool_of(self, approval_id: str) -> str:
        try:
            _, step, index = approval_id.split("-")
            return self.turns[int(step)].response.tool_calls[int(index)].name
        except (ValueError, KeyError, IndexError):
            return ""
