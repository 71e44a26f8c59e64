"""Tool policy and human approval: what the workflow enforces and what humans send it.

Policy is data (it is recorded in history with the agent spec, so replay stays deterministic):
per tool, allow / deny / require approval, plus allowlists of argument values.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

PolicyAction = Literal["allow", "deny", "require_approval"]
Decision = Literal["approve", "reject"]
TimeoutDefault = Literal["reject", "approve"]


class ToolRule(BaseModel):
    """How one tool may be used."""

    action: PolicyAction = "allow"
    allowed_values: dict[str, list[Any]] = Field(default_factory=dict)
    """Argument name -> the only values it may take; anything else is refused."""
    reason: str = ""
    """Why the rule exists; shown to approvers and to the model on refusal."""


class ApprovalSettings(BaseModel):
    """Who may approve, how long a gated call waits, and what happens when nobody answers."""

    approvers: list[str] = Field(default_factory=list)
    """Names allowed to decide; empty means anyone."""
    timeout: timedelta = timedelta(hours=1)
    """First deadline, from the request."""
    escalate_to: list[str] = Field(default_factory=list)
    """Notified when the first deadline passes; the wait is then extended once."""
    escalation_timeout: timedelta = timedelta(hours=24)
    """Second deadline, from the escalation."""
    on_timeout: TimeoutDefault = "reject"
    """Applied when the second deadline passes without a decision."""


class ApprovalRecord(BaseModel):
    """A decided approval, kept in the result: who decided what, when and why."""

    id: str
    tool: str
    step: int
    arguments: dict[str, Any]
    """The arguments the model asked for."""
    decision: Decision
    approver: str
    """A person's name, or ``system:timeout`` when the deadline default applied."""
    comment: str = ""
    edited_arguments: dict[str, Any] | None = None
    requested_at: datetime
    decided_at: datetime
    escalated: bool = False


PolicyRecordAction = Literal["denied", "refused_arguments", "gated"]


class PolicyRecord(BaseModel):
    """A policy decision about one tool call (refusals and gates), kept in the result."""

    step: int
    call_id: str
    tool: str
    action: PolicyRecordAction
    detail: str


class ApprovalSignal(BaseModel):
    """Input of the ``approve`` and ``reject`` signals (for ``temporal workflow signal``).

    ``approval_id`` may be omitted when exactly one approval is pending.
    """

    approval_id: str | None = None
    approver: str = ""
    comment: str = ""
    reason: str = ""
    """For ``reject``: what the model is told (``comment`` is used when empty)."""
    arguments: dict[str, Any] | None = None
    """For ``approve``: edited arguments, validated against the tool's schema."""


class DecideRequest(BaseModel):
    """Input of the ``decide`` update."""

    approval_id: str | None = None
    approver: str
    decision: Decision
    arguments: dict[str, Any] | None = None
    comment: str = ""


class DecideResult(BaseModel):
    """What the ``decide`` update returns."""

    approval_id: str
    decision: Decision
    approver: str
    tool: str
    arguments: dict[str, Any]
    """The arguments the tool will run with (edited ones when given)."""


class ChildApprovals(BaseModel):
    """Input of the ``agent_child_approvals`` signal: a sub-agent's child workflow tells its
    parent which of its approvals are pending (the whole list, each time it changes)."""

    workflow_id: str
    pending: list[Any] = Field(default_factory=list)
    """``PendingApproval`` objects as JSON (kept loose: a newer child may add fields)."""


class EscalationNotice(BaseModel):
    """Input of the ``notify_escalation`` activity."""

    workflow_id: str
    approval_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    recipients: list[str]
    requested_at: datetime
    new_deadline: datetime
    idempotency_key: str
