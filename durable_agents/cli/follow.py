"""Follow a run and every workflow under it, printing each agent's steps as they happen.

The tree comes from the server, not from guesses: each followed workflow's description lists its
pending children (``pending_children``), which are followed in turn, one indent deeper, until
they close; once a workflow closes, its history names any child that started and ended between
two polls. Steps come from each workflow's ``status`` query (every ``AgentHost`` answers it).
An approval is decided on the workflow that owns it (copies that a parent shows for its
children are skipped), by asking in a terminal or approving as ``--approve-as``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from durable_agents.contracts import AgentStatusView, PendingApproval, ToolCallRecord

POLL_SECONDS = 0.3

ApprovalHandler = Callable[[WorkflowHandle[Any, Any], PendingApproval], Awaitable[None]]


def describe_call(call: ToolCallRecord) -> str:
    mark = "error" if call.is_error else "ok"
    preview = call.result_preview.replace("\n", " ")
    if len(preview) > 160:
        preview = preview[:157] + "..."
    return f"  -> {call.name}({call.arguments})\n     [{mark}] {preview}"


def describe_approval(approval: PendingApproval) -> str:
    deadline = f"{approval.deadline:%Y-%m-%d %H:%M} UTC" if approval.deadline else "none"
    return (
        f"approval {approval.id} needed: {approval.tool}({json.dumps(approval.arguments)})\n"
        f"  why: {approval.reason}; deadline: {deadline}"
        + ("; escalated" if approval.escalated else "")
    )


@dataclass
class _Followed:
    handle: WorkflowHandle[Any, Any]
    label: str
    depth: int
    printed: dict[str, int] = field(default_factory=dict)
    """Last step printed, per inline agent run (steps restart with each run)."""
    printed_calls: set[tuple[str, int, str]] = field(default_factory=set)
    done: bool = False


class RunFollower:
    """Prints a run's tree of workflows and their steps (``starter.py run``).

    Args:
        out: Where to print (stderr when stdout must stay one JSON document).
        on_approval: Called once per pending approval, with the owning workflow's handle.
        steps: Print steps and children (else only approvals).
    """

    def __init__(
        self,
        client: Client,
        out: Any = None,
        on_approval: ApprovalHandler | None = None,
        steps: bool = True,
    ) -> None:
        self._client = client
        self._out = out if out is not None else sys.stdout
        self._on_approval = on_approval
        self._steps = steps
        self._seen_approvals: set[tuple[str, str]] = set()

    def _print(self, followed: _Followed, text: str, always: bool = False) -> None:
        if not (self._steps or always):
            return
        indent = "    " * followed.depth
        prefix = f"{indent}[{followed.label}] " if followed.depth else ""
        lines = text.splitlines() or [""]
        pad = " " * len(prefix)
        print(prefix + lines[0], file=self._out, flush=True)
        for line in lines[1:]:
            print(pad + line, file=self._out, flush=True)

    async def follow(self, root: WorkflowHandle[Any, Any]) -> None:
        """Until ``root`` closes (its children's last steps printed too)."""
        tree = {root.id: _Followed(root, label=root.id, depth=0)}
        while True:
            for followed in list(tree.values()):
                if not followed.done:
                    await self._poll(followed, tree)
            if tree[root.id].done and all(f.done for f in tree.values()):
                return
            await asyncio.sleep(POLL_SECONDS)

    async def _poll(self, followed: _Followed, tree: dict[str, _Followed]) -> None:
        try:
            description = await followed.handle.describe()
        except RPCError:
            return  # not started yet
        running = description.status == WorkflowExecutionStatus.RUNNING
        children = [
            (child.workflow_id, child.workflow_type_name)
            for child in description.raw_description.pending_children
        ]
        if not running or description.workflow_type != "AgentWorkflow":
            # Children that came and went between two polls are in the history. A pattern's
            # history is short (its agents' steps are in theirs): read it every time, so its
            # children are shown in order; an agent's, only once it has closed.
            children += await self._children_in_history(followed.handle)
        for workflow_id, workflow_type in children:
            if workflow_id not in tree:
                label = workflow_id.removeprefix(followed.handle.id + "/")
                tree[workflow_id] = _Followed(
                    self._client.get_workflow_handle(workflow_id),
                    label=label,
                    depth=followed.depth + 1,
                )
                self._print(followed, f"started {label} ({workflow_type})")
        try:
            view = await followed.handle.query("status", result_type=AgentStatusView)
        except RPCError:
            view = None  # its first task has not run, or it is not an AgentHost
        if view is not None:
            self._print_steps(followed, view)
            if running:
                await self._approvals(followed, view)
        if not running:
            followed.done = True
            status = description.status.name.lower() if description.status else "closed"
            if followed.depth:
                self._print(followed, f"{status}")

    async def _children_in_history(self, handle: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
        found = []
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                attributes = event.child_workflow_execution_started_event_attributes
                found.append(
                    (attributes.workflow_execution.workflow_id, attributes.workflow_type.name)
                )
        return found

    def _print_steps(self, followed: _Followed, view: AgentStatusView) -> None:
        inline = [a.label for a in view.agents if a.workflow_id is None]
        run = inline[-1] if inline else view.agent
        for step in view.recent_steps:
            if step.step > followed.printed.get(run, 0):
                followed.printed[run] = step.step
                who = f"{view.agent} " if inline else ""
                total = f"/{view.max_steps}" if view.max_steps else ""
                self._print(followed, f"{who}step {step.step}{total}")
                if step.text:
                    self._print(followed, "  model: " + step.text.strip())
            for call in step.tool_calls:
                key = (run, step.step, call.call_id)
                if call.result_preview and key not in followed.printed_calls:
                    followed.printed_calls.add(key)
                    self._print(followed, describe_call(call))

    async def _approvals(self, followed: _Followed, view: AgentStatusView) -> None:
        for approval in view.pending_approvals:
            if approval.workflow_id is not None:
                continue  # a child's, shown here too: decided where it lives
            key = (followed.handle.id, approval.id)
            if key in self._seen_approvals:
                continue
            self._seen_approvals.add(key)
            self._print(followed, describe_approval(approval), always=True)
            if self._on_approval is not None:
                await self._on_approval(followed.handle, approval)
