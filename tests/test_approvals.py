"""Tool policy and human approval on a real dev server, driven as a user would."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView, PendingApproval
from durable_agents.contracts.approvals import ApprovalSignal, DecideRequest, DecideResult
from tests.agents_for_tests import TRANSFERS
from tests.conftest import running_worker


async def start_gated(
    client: Client, task_queue: str, agent: str = "test-gatekeeper"
) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent=agent, task="pay"),
        id=f"gate-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


async def pending(
    handle: WorkflowHandle[object, AgentResult], count: int = 1
) -> list[PendingApproval]:
    for _ in range(200):
        view = await handle.query("status", result_type=AgentStatusView)
        if len(view.pending_approvals) == count:
            return view.pending_approvals
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} pending approvals, status: {view}")


async def refused(handle: WorkflowHandle[object, AgentResult], request: DecideRequest) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("decide", request, result_type=DecideResult)
    return str(getattr(caught.value.cause, "message", caught.value.cause))


async def test_gated_call_waits_and_runs_after_signal_approval(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A gated call shows as pending (query and AgentStatus search attribute) and nothing runs
    until a human approves by signal; denied and disallowed-argument calls never run."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await start_gated(client, task_queue)
        [approval] = await pending(handle)
        assert approval.tool == "transfer" and approval.arguments == {"amount": 10, "to": "acct-1"}
        assert approval.reason == "moves money" and approval.deadline is not None
        assert TRANSFERS == []
        waiting = [
            w.id
            async for w in client.list_workflows(
                f'AgentStatus = "awaiting_approval" AND WorkflowId = "{handle.id}"'
            )
        ]
        assert waiting == [handle.id]
        await handle.signal("approve", ApprovalSignal(approver="alice", comment="ok"))
        result = await handle.result()
        final = await handle.query("status", result_type=AgentStatusView)
    assert len(TRANSFERS) == 1 and TRANSFERS[0][1:] == (10, "acct-1")
    assert "transfer: sent 10 to acct-1" in result.output
    assert "wipe: tool 'wipe' is not allowed for this agent" in result.output
    assert "channel='pager' is not allowed" in result.output
    [record] = result.approvals
    assert (record.decision, record.approver, record.comment) == ("approve", "alice", "ok")
    assert {p.action for p in result.policy_decisions} == {"denied", "refused_arguments", "gated"}
    assert final.status == "completed" and final.pending_approvals == []


async def test_decide_update_validates_and_reject_reason_reaches_the_model(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The decide update refuses unknown ids, unknown approvers and invalid edited arguments
    without harming the run; a rejection's reason is what the model reads."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await start_gated(client, task_queue)
        [approval] = await pending(handle)
        assert "unknown approval 'nope'" in await refused(
            handle, DecideRequest(approval_id="nope", approver="alice", decision="approve")
        )
        assert "'mallory' may not decide" in await refused(
            handle, DecideRequest(approver="mallory", decision="approve")
        )
        assert "amount" in await refused(
            handle,
            DecideRequest(approver="bob", decision="approve", arguments={"amount": 0, "to": "x"}),
        )
        # Invalid signals are logged and ignored.
        await handle.signal("approve", ApprovalSignal(approval_id="nope", approver="alice"))
        await handle.signal("approve", ApprovalSignal(approver="mallory"))
        assert [a.id for a in await pending(handle)] == [approval.id]
        outcome = await handle.execute_update(
            "decide",
            DecideRequest(approver="bob", decision="reject", comment="wrong account"),
            result_type=DecideResult,
        )
        assert outcome.decision == "reject"
        # (Deciding it again is refused: test_parallel_gated_calls_get_their_own_approvals,
        # where the run cannot end in between.)
        result = await handle.result()
    assert TRANSFERS == []
    assert "a human (bob) rejected this call to 'transfer': wrong account" in result.output
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events


async def test_approve_with_edited_arguments(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """An approver may change the arguments; the tool runs with the edited ones."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await start_gated(client, task_queue)
        await pending(handle)
        outcome = await handle.execute_update(
            "decide",
            DecideRequest(approver="alice", decision="approve", arguments={"amount": 5, "to": "b"}),
            result_type=DecideResult,
        )
        result = await handle.result()
    assert outcome.arguments == {"amount": 5, "to": "b"}
    assert [t[1:] for t in TRANSFERS] == [(5, "b")]
    assert result.approvals[0].edited_arguments == {"amount": 5, "to": "b"}
    assert json.loads(result.tool_calls[0].arguments) == {"amount": 5, "to": "b"}


async def test_parallel_gated_calls_get_their_own_approvals(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Two gated calls in one turn are two approvals; approval_id is then required, and an
    approval decided once cannot be decided again."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await start_gated(client, task_queue, "test-twin-gates")
        first, second = await pending(handle, 2)
        assert "approval_id is required when 2 approvals are pending" in await refused(
            handle, DecideRequest(approver="x", decision="approve")
        )
        await handle.execute_update(
            "decide",
            DecideRequest(approval_id=second.id, approver="x", decision="reject", comment="no"),
            result_type=DecideResult,
        )
        # The other call still waits, so the run is open: a second decision on the same
        # approval is refused, by update; by signal it is ignored.
        assert "already decided (reject by 'x')" in await refused(
            handle, DecideRequest(approval_id=second.id, approver="y", decision="approve")
        )
        await handle.signal("approve", ApprovalSignal(approval_id=second.id, approver="y"))
        await handle.signal("approve", ApprovalSignal(approval_id=first.id, approver="x"))
        result = await handle.result()
    assert [t[1:] for t in TRANSFERS] == [(1, "a")]
    assert sorted((a.id, a.decision) for a in result.approvals) == [
        (first.id, "approve"),
        (second.id, "reject"),
    ]


async def test_starter_pending_and_approve(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``starter.py pending`` lists the waiting call and ``starter.py approve`` decides it."""
    from tests.test_cli import address, run_cli

    env = {"TEMPORAL_ADDRESS": address(client), "AGENTS_TASK_QUEUE": task_queue}
    async with running_worker(client, task_queue, registry):
        handle = await start_gated(client, task_queue)
        [approval] = await pending(handle)
        listed = await run_cli(sys_executable(), "starter.py", "pending", "--json", env=env)
        assert approval.id in [
            p["id"] for p in json.loads(listed.stdout) if p["workflow_id"] == handle.id
        ]
        bad = await run_cli(
            sys_executable(), "starter.py", "approve", handle.id, "--as", "eve", env=env
        )
        assert bad.returncode == 2 and "'eve' may not decide" in bad.stderr
        good = await run_cli(
            sys_executable(), "starter.py", "approve", handle.id, approval.id, "--as", "alice",
            "--comment", "fine", env=env,
        )  # fmt: skip
        assert good.returncode == 0, good.stderr
        result = await handle.result()
    assert result.approvals[0].approver == "alice"


def sys_executable() -> str:
    import sys

    return sys.executable


async def test_approval_signalled_as_a_continued_run_starts_is_applied(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A decision that reaches a run in its very first workflow task — the run that continued
    as new while the approval waited, before it has re-opened that approval — is held until the
    approval re-opens, then applied: the call runs once and the record names the approver.

    (Seen under chaos: an approval accepted by the server just as the run continued as new was
    ignored as "nothing is pending", and the run waited for it forever.) The timing is made
    exact here: the continued run's input is started again with the signal in its first task."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-gatekeeper", task="pay", continue_as_new_after_steps=1),
            id=f"gate-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        first_run = handle.first_execution_run_id or handle.result_run_id
        latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
        for _ in range(400):
            if (await latest.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.05)
        [approval] = await pending(latest)
        started = (await latest.fetch_history()).events[0]
        [carried] = await client.data_converter.decode(
            started.workflow_execution_started_event_attributes.input.payloads, [AgentInput]
        )
        assert isinstance(carried, AgentInput) and carried.carry is not None
        await latest.terminate("its input is run again below")

        again = await client.start_workflow(
            "AgentWorkflow",
            carried,
            id=f"gate-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
            start_signal="approve",
            start_signal_args=[ApprovalSignal(approval_id=approval.id, approver="alice")],
        )
        result = await asyncio.wait_for(again.result(), timeout=60)
    assert result.status == "completed"
    [record] = result.approvals
    assert (record.id, record.decision, record.approver) == (approval.id, "approve", "alice")
    assert [t[1:] for t in TRANSFERS] == [(10, "acct-1")]


async def test_a_decision_sent_before_the_approval_exists_approves_nothing(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A decision in a new run's first task, for an approval its model has not asked for yet
    (the id guessed ahead), is dropped: the call, when it comes, still waits for a human."""
    TRANSFERS.clear()
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-gatekeeper", task="pay"),
            id=f"gate-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
            start_signal="approve",
            start_signal_args=[ApprovalSignal(approval_id="apr-1-0", approver="alice")],
        )
        [approval] = await pending(handle)
        assert approval.id == "apr-1-0" and TRANSFERS == []
        await handle.signal("reject", ApprovalSignal(approval_id="apr-1-0", approver="bob"))
        result = await handle.result()
    [record] = result.approvals
    assert (record.decision, record.approver) == ("reject", "bob") and TRANSFERS == []
