"""The approval desk: pending approvals, who may decide them, and the decisions made.

Workflow code (deterministic, no I/O). Signals and the ``decide`` update both go through
``check``: the update's validator rejects a bad decision before it reaches history, a bad signal
is logged and ignored. Neither can harm the run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import jsonschema

    from durable_agents.contracts import PendingApproval, ToolSchema
    from durable_agents.contracts.approvals import (
        ApprovalRecord,
        ApprovalSettings,
        ChildApprovals,
        DecideRequest,
        DecideResult,
    )


class InvalidDecision(ValueError):
    """A decision that cannot be applied; the message says why."""


class ApprovalDesk:
    def __init__(self) -> None:
        self.pending: dict[str, PendingApproval] = {}
        self.records: list[ApprovalRecord] = []
        self._submitted: dict[str, DecideRequest] = {}
        self.child_pending: dict[str, list[PendingApproval]] = {}
        """Approvals pending in sub-agents' child workflows, by child workflow id, as they
        reported them (``agent_child_approvals``)."""
        self.closed_children: set[str] = set()
        """Children that ended: late reports from them are ignored."""
        self.held: list[DecideRequest] = []
        """Decisions signalled to a continued run before it re-opened the approvals it carries
        (signal handlers run before the workflow's code in its first task): applied when their
        approval re-opens (``take_held``)."""

    def hold(self, request: DecideRequest) -> None:
        self.held.append(request)

    def take_held(self, approval_id: str) -> list[DecideRequest]:
        """The held decisions for ``approval_id`` (or naming none), removed from the hold."""
        taken = [r for r in self.held if r.approval_id in (approval_id, None)]
        self.held = [r for r in self.held if r not in taken]
        return taken

    def child_report(self, workflow_id: str, pending: list[PendingApproval]) -> None:
        if workflow_id not in self.closed_children:
            self.child_pending[workflow_id] = pending

    def child_closed(self, workflow_id: str) -> None:
        self.child_pending.pop(workflow_id, None)
        self.closed_children.add(workflow_id)

    def child_approvals(self, parent_id: str) -> dict[str, tuple[str, PendingApproval]]:
        """Pending child approvals by the id this run shows them under:
        ``<child workflow id without this run's id>/<approval id>`` -> (child id, approval)."""
        shown: dict[str, tuple[str, PendingApproval]] = {}
        for workflow_id, pending in self.child_pending.items():
            label = workflow_id.removeprefix(parent_id + "/")
            for approval in pending:
                shown[f"{label}/{approval.id}"] = (workflow_id, approval)
        return shown

    def report_to_parent(self) -> None:
        """Tell the parent workflow, if any, every approval waiting in this workflow and below
        it: its own agents' and, under the ids it shows them by, its children's. The parent
        (an ``AgentHost``) shows them in its ``status`` and forwards decisions made by its id;
        a parent that is itself a child passes them on up (``AgentHost.child_approvals``)."""
        info = workflow.info()
        if info.parent is None:
            return
        shown = [
            approval.model_copy(update={"id": shown_id})
            for shown_id, (_, approval) in self.child_approvals(info.workflow_id).items()
        ]
        report = ChildApprovals(
            workflow_id=info.workflow_id,
            pending=[a.model_dump(mode="json") for a in [*self.pending.values(), *shown]],
        )
        handle = workflow.get_external_workflow_handle(info.parent.workflow_id)
        asyncio.create_task(handle.signal("agent_child_approvals", report))  # noqa: RUF006

    def open(self, approval: PendingApproval) -> None:
        self.pending[approval.id] = approval

    def resolve_id(self, approval_id: str | None) -> str:
        if approval_id:
            return approval_id
        waiting = [a for a in self.pending if a not in self._submitted]
        if len(waiting) != 1:
            raise InvalidDecision(
                f"approval_id is required when {len(waiting)} approvals are pending"
                + (f" ({', '.join(waiting)})" if waiting else "")
            )
        return waiting[0]

    def check(
        self,
        request: DecideRequest,
        settings: ApprovalSettings,
        tools: dict[str, ToolSchema],
    ) -> PendingApproval:
        """The approval ``request`` decides, or ``InvalidDecision`` saying why it can't."""
        approval_id = self.resolve_id(request.approval_id)
        earlier: DecideRequest | ApprovalRecord | None = self._submitted.get(approval_id) or next(
            (r for r in self.records if r.id == approval_id), None
        )
        if earlier is not None:
            raise InvalidDecision(
                f"approval {approval_id!r} was already decided ({earlier.decision} by "
                f"{earlier.approver!r})"
            )
        approval = self.pending.get(approval_id)
        if approval is None:
            known = ", ".join(self.pending) or "none"
            raise InvalidDecision(f"unknown approval {approval_id!r}; pending: {known}")
        if not request.approver.strip():
            raise InvalidDecision("approver is required")
        if settings.approvers and request.approver not in settings.approvers:
            raise InvalidDecision(
                f"{request.approver!r} may not decide approvals of this agent; approvers: "
                f"{', '.join(settings.approvers)}"
            )
        if request.arguments is not None:
            if request.decision != "approve":
                raise InvalidDecision("edited arguments are only accepted with 'approve'")
            if approval.tool not in tools:
                raise InvalidDecision(f"approval {approval_id!r} takes no edited arguments")
            schema = tools[approval.tool].parameters
            try:
                jsonschema.validate(request.arguments, schema)
            except jsonschema.ValidationError as err:
                where = ".".join(str(p) for p in err.absolute_path) or "(arguments)"
                raise InvalidDecision(
                    f"edited arguments do not match {approval.tool!r}: {where}: {err.message}"
                ) from None
        return approval

    def submit(self, request: DecideRequest, approval: PendingApproval) -> DecideResult:
        self._submitted[approval.id] = request
        return DecideResult(
            approval_id=approval.id,
            decision=request.decision,
            approver=request.approver,
            tool=approval.tool,
            arguments=request.arguments if request.arguments is not None else approval.arguments,
        )

    def decision(self, approval_id: str) -> DecideRequest | None:
        return self._submitted.get(approval_id)

    def close(self, approval: PendingApproval, request: DecideRequest) -> ApprovalRecord:
        """Move a decided approval from pending to the record."""
        del self.pending[approval.id]
        self._submitted.pop(approval.id, None)
        record = ApprovalRecord(
            id=approval.id,
            tool=approval.tool,
            step=approval.step,
            arguments=approval.arguments,
            decision=request.decision,
            approver=request.approver,
            comment=request.comment,
            edited_arguments=request.arguments,
            requested_at=approval.requested_at,
            decided_at=workflow.now(),
            escalated=approval.escalated,
        )
        self.records.append(record)
        return record


def argument_refusal(arguments: dict[str, Any], allowed: dict[str, list[Any]]) -> str | None:
    """Why ``arguments`` break an allowlist, or ``None`` when they don't."""
    for name, values in allowed.items():
        if name in arguments and arguments[name] not in values:
            return f"{name}={arguments[name]!r} is not allowed (allowed: {values!r})"
    return None
