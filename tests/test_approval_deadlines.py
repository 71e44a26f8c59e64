"""Approval deadlines and escalation, in the time-skipping test server: hours pass in moments."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runtime.devserver import find_temporal_cli
from tests.agents_for_tests import TRANSFERS
from tests.conftest import running_worker


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(find_temporal_cli()).with_name("temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "escalations.jsonl"
    monkeypatch.setenv("ESCALATION_OUTBOX", str(path))
    return path


async def start(client: Client, task_queue: str, agent: str) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent=agent, task="pay"),
        id=f"deadline-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


async def test_unanswered_approval_escalates_then_rejects_by_default(
    skipping_env: WorkflowEnvironment, registry: AgentRegistry, outbox: Path
) -> None:
    """No answer in 1 h: the escalation list is notified and the wait extended by a day; no
    answer then either: the agent's default (reject) applies and the model is told."""
    TRANSFERS.clear()
    client, task_queue = skipping_env.client, f"deadline-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, status_search_attribute=False):
        handle = await start(client, task_queue, "test-gatekeeper")
        started = await skipping_env.get_current_time()
        result = await handle.result()  # time skips through both deadlines
        finished = await skipping_env.get_current_time()
    assert TRANSFERS == []
    [record] = result.approvals
    assert (record.decision, record.approver, record.escalated) == (
        "reject",
        "system:timeout",
        True,
    )
    assert "no decision before the deadline" in result.output
    assert finished - started >= timedelta(hours=25)
    [notice] = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert notice["recipients"] == ["oncall@example.com"]
    assert notice["tool"] == "transfer"


async def test_decision_after_escalation_is_honoured(
    skipping_env: WorkflowEnvironment, registry: AgentRegistry, outbox: Path
) -> None:
    """A decision that arrives after the first deadline (during escalation) still counts."""
    TRANSFERS.clear()
    client, task_queue = skipping_env.client, f"deadline-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, status_search_attribute=False):
        handle = await start(client, task_queue, "test-gatekeeper")
        await skipping_env.sleep(timedelta(hours=3))
        view = await handle.query("status", result_type=AgentStatusView)
        assert view.pending_approvals[0].escalated
        await handle.signal("approve", ApprovalSignal(approver="bob", comment="late but fine"))
        result = await handle.result()
    assert [t[1:] for t in TRANSFERS] == [(10, "acct-1")]
    assert result.approvals[0].approver == "bob" and result.approvals[0].escalated


async def test_timeout_default_can_approve(
    skipping_env: WorkflowEnvironment, registry: AgentRegistry, outbox: Path
) -> None:
    """An agent configured with on_timeout='approve' and no escalation list proceeds at the
    first deadline, for each of its parallel gated calls."""
    TRANSFERS.clear()
    client, task_queue = skipping_env.client, f"deadline-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, status_search_attribute=False):
        result = await (await start(client, task_queue, "test-twin-gates")).result()
    assert sorted(t[1:] for t in TRANSFERS) == [(1, "a"), (2, "b")]
    assert {(a.decision, a.approver, a.escalated) for a in result.approvals} == {
        ("approve", "system:timeout", False)
    }
    assert not outbox.exists()


async def test_continue_as_new_keeps_a_pending_approval_and_its_deadline(
    skipping_env: WorkflowEnvironment, registry: AgentRegistry, outbox: Path
) -> None:
    """A run that continues as new while a gated call waits hands the approval over as it was:
    the new run shows the same approval id and deadline, escalates at the original deadline,
    and a decision sent to the new run releases the call, which runs exactly once."""
    TRANSFERS.clear()
    client, task_queue = skipping_env.client, f"deadline-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, status_search_attribute=False):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-gatekeeper", task="pay", continue_as_new_after_steps=1),
            id=f"deadline-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        first_run = handle.first_execution_run_id or handle.result_run_id
        latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
        # Time does not skip while the test queries; wait (in real time) for the second run.
        while (await latest.describe()).run_id == first_run:
            await skipping_env.sleep(timedelta(seconds=1))
        view = await latest.query("status", result_type=AgentStatusView)
        [approval] = view.pending_approvals
        assert view.runs == 2
        assert approval.id == "apr-1-0" and not approval.escalated
        assert approval.deadline == approval.requested_at + timedelta(hours=1)

        await skipping_env.sleep(timedelta(hours=2))
        view = await latest.query("status", result_type=AgentStatusView)
        [escalated] = view.pending_approvals
        assert escalated.escalated and escalated.id == approval.id
        assert escalated.deadline is not None and approval.deadline is not None
        # The second deadline runs from when the first one fired (the timer's own latency on top).
        extension = escalated.deadline - approval.deadline
        assert timedelta(days=1) <= extension < timedelta(days=1, minutes=1)
        await latest.signal("approve", ApprovalSignal(approver="alice"))
        result = await latest.result()

    assert result.status == "completed" and result.runs == 2 and result.steps == 2
    assert [t[1:] for t in TRANSFERS] == [(10, "acct-1")]
    [record] = result.approvals
    assert (record.id, record.approver, record.escalated) == ("apr-1-0", "alice", True)
    assert record.requested_at == approval.requested_at
    assert len([json.loads(line) for line in outbox.read_text().splitlines()]) == 1
    assert {(c.name, c.is_error) for c in result.tool_calls} == {
        ("transfer", False),
        ("wipe", True),
        ("add", True),
    }
