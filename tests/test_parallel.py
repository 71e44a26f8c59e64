"""``ParallelAgentsWorkflow``: fan-out as child workflows with the all / best_effort / quorum
policies and per-branch timeouts, on a real dev server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentResult
from durable_agents.contracts.patterns import ParallelResult
from tests.conftest import running_worker

ADD = {"agent": "test-adder", "task": "add"}
NAP = {"agent": "test-sleeper", "task": "nap for ten minutes"}
MISSING = {"agent": "no-such-agent", "task": "x"}


async def fan_out(
    client: Client, task_queue: str, registry: AgentRegistry, **input: Any
) -> tuple[ParallelResult, str]:
    workflow_id = f"parallel-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "ParallelAgentsWorkflow",
            input,
            id=workflow_id,
            task_queue=task_queue,
            result_type=ParallelResult,
        )
    return result, workflow_id


async def test_best_effort_lists_a_failed_and_a_timed_out_branch(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Two adders succeed, an unknown agent fails and a sleeper runs past its 3 s timeout (it
    is cancelled): the run completes with the two outputs and says what failed and why."""
    result, _ = await fan_out(
        client, task_queue, registry,
        branches=[ADD, MISSING, NAP, ADD], policy="best_effort", branch_timeout=3,
    )  # fmt: skip
    assert result.status == "completed" and result.policy == "best_effort"
    assert [b.status for b in result.branches] == ["completed", "failed", "timed_out", "completed"]
    assert "unknown agent 'no-such-agent'" in (result.branches[1].error or "")
    assert result.succeeded == 2 and result.failed == 2
    assert result.output.count("The sums are 3 and 42.") == 2
    sleeper = client.get_workflow_handle(result.branches[2].workflow_id, result_type=AgentResult)
    assert (await sleeper.result()).status == "cancelled"


async def test_quorum_cancels_the_rest_once_reached(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """With ``{"quorum": 2}``, two adders finishing end the run; the sleepers still napping are
    cancelled (their child workflows end ``cancelled``) and the result says so."""
    result, _ = await fan_out(
        client, task_queue, registry, branches=[NAP, ADD, NAP, ADD], policy={"quorum": 2}
    )
    assert result.status == "completed" and result.policy == "quorum:2"
    assert [b.status for b in result.branches] == [
        "cancelled",
        "completed",
        "cancelled",
        "completed",
    ]
    assert result.cancelled == 2
    for branch in (result.branches[0], result.branches[2]):
        child = client.get_workflow_handle(branch.workflow_id, result_type=AgentResult)
        assert (await child.result()).status == "cancelled"


async def test_all_fails_the_whole_when_one_branch_fails(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Under ``all`` a failing branch fails the workflow, naming the branch and why; the sleeper
    still running is cancelled."""
    with pytest.raises(WorkflowFailureError) as failed:
        await fan_out(client, task_queue, registry, branches=[NAP, MISSING], policy="all")
    message = str(failed.value.cause)
    assert "branch 1 (no-such-agent) failed" in message


async def test_synthesizer_combines_the_outputs(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A synthesizer agent (inline) turns the branch outputs into the answer; costs add up."""
    result, _ = await fan_out(
        client, task_queue, registry, branches=[ADD, ADD], synthesizer="test-adder"
    )
    assert result.status == "completed" and result.output == "The sums are 3 and 42."
    assert result.succeeded == 2


async def test_cancelling_the_fan_out_cancels_its_branches(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancel a fan-out whose branches are napping: every branch's child ends ``cancelled``
    (not terminated by the parent-close policy)."""
    workflow_id = f"parallel-cancel-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "ParallelAgentsWorkflow",
            {"branches": [NAP, NAP], "policy": "best_effort"},
            id=workflow_id,
            task_queue=task_queue,
        )
        children = [f"{workflow_id}/branch-{i}-test-sleeper" for i in range(2)]
        for _ in range(300):
            try:
                for child in children:
                    await client.get_workflow_handle(child).describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        for child in children:
            result = await client.get_workflow_handle(child, result_type=AgentResult).result()
            assert result.status == "cancelled"


async def test_an_approval_two_levels_down_is_decided_from_the_top(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A user workflow runs a fan-out as its child; a branch's gated transfer shows in the
    top workflow's ``status`` (passed up through the fan-out) and is approved there with the
    validated ``decide`` update, forwarded down two levels to the branch."""
    from durable_agents.contracts import AgentStatusView
    from durable_agents.contracts.approvals import DecideRequest, DecideResult
    from tests.user_workflows import NestedFanOutWorkflow

    workflow_id = f"nested-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, workflows=[NestedFanOutWorkflow]):
        handle = await client.start_workflow(
            "NestedFanOutWorkflow", "pay", id=workflow_id, task_queue=task_queue,
            result_type=ParallelResult,
        )  # fmt: skip
        async with asyncio.timeout(60):
            while not (
                view := await handle.query("status", result_type=AgentStatusView)
            ).pending_approvals:
                await asyncio.sleep(0.1)
        [approval] = view.pending_approvals
        assert approval.id.startswith("fan-out/branch-0-test-gatekeeper/apr-")
        assert approval.workflow_id == f"{workflow_id}/fan-out" and approval.tool == "transfer"
        decided = await handle.execute_update(
            "decide",
            DecideRequest(approval_id=approval.id, approver="alice", decision="approve"),
            result_type=DecideResult,
        )
        assert decided.tool == "transfer"
        result = await handle.result()
    assert result.status == "completed" and result.succeeded == 2
    branch = client.get_workflow_handle(result.branches[0].workflow_id, result_type=AgentResult)
    assert [a.approver for a in (await branch.result()).approvals] == ["alice"]
