"""What arrives from outside a run: its input, approval signals, ``decide`` updates.

Decoded by hand rather than by the SDK from type hints, so that bad payloads have a defined
outcome: a start with no input, a null input or two inputs fails the *run* with a message (the
SDK would raise inside the workflow task, which Temporal retries forever); a malformed signal is
logged and ignored; a malformed update is refused by its validator with an example of a good one.
"""

from __future__ import annotations

import difflib

import pydantic
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentInput
    from durable_agents.contracts.approvals import ApprovalSignal, DecideRequest
    from durable_agents.runner.approvals import InvalidDecision

INPUT_EXAMPLE = '{"agent": "finops", "task": "Why did the bill spike?"}'
SIGNAL_EXAMPLE = '{"approver": "alice", "approval_id": "apr-1-0"}'
DECISION_EXAMPLE = '{"approver": "alice", "decision": "approve", "approval_id": "apr-1-0"}'


def unknown_field_warnings(raw: object) -> list[str]:
    """One warning per field of ``raw`` (a JSON object) that ``AgentInput`` does not know.

    Unknown fields are ignored, not refused: during a rolling deploy a newer starter may send a
    field an older worker does not know yet, and the run should still go. A typo (``max_step``)
    is then visible in the run's ``status`` and result, with the field it probably meant.
    """
    if not isinstance(raw, dict):
        return []
    known = sorted(AgentInput.model_fields)
    warnings = []
    for field in sorted(str(k) for k in raw if k not in AgentInput.model_fields):
        close = difflib.get_close_matches(field, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}? " if close else ""
        warnings.append(
            f"ignored unknown input field {field!r} ({hint}accepted: {', '.join(known)}); a "
            "typo, or a field this worker's version does not know"
        )
    return warnings


def read_input(raw: object, unexpected: tuple[object, ...]) -> AgentInput:
    """The run's ``AgentInput``; a missing, null or extra input fails the run saying so.
    Unknown fields are ignored with a warning (``unknown_field_warnings``)."""
    if raw is None or unexpected:
        count = 0 if raw is None else 1 + len(unexpected)
        raise ApplicationError(
            f"AgentWorkflow takes one input, an AgentInput JSON object like {INPUT_EXAMPLE}; "
            f"got {count}",
            type="InvalidInput",
            non_retryable=True,
        )
    return AgentInput.model_validate(raw)  # a ValidationError fails the run (see defn)


def read_signal(name: str, raw: object, unexpected: tuple[object, ...]) -> ApprovalSignal | None:
    """The signal's ``ApprovalSignal``, or None (logged) when the payload is not one."""
    if raw is None or unexpected:
        workflow.logger.warning(
            "ignored %s signal: it takes one JSON object like %s", name, SIGNAL_EXAMPLE
        )
        return None
    try:
        return ApprovalSignal.model_validate(raw)
    except pydantic.ValidationError as err:
        workflow.logger.warning("ignored %s signal: %s", name, validation_summary(err))
        return None


def read_decision(raw: object) -> DecideRequest:
    """The update's ``DecideRequest``, or ``InvalidDecision`` saying what a decision looks like."""
    if raw is None:
        raise InvalidDecision(f"decide takes one JSON object like {DECISION_EXAMPLE}")
    try:
        return DecideRequest.model_validate(raw)
    except pydantic.ValidationError as err:
        raise InvalidDecision(
            f"invalid decision ({validation_summary(err)}); expected e.g. {DECISION_EXAMPLE}"
        ) from None


def validation_summary(err: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(payload)'}: {item['msg']}"
        for item in err.errors(include_url=False)
    )
