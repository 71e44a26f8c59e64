"""``SupervisorWorkflow``: a supervisor's typed decisions delegate to workers (child workflows)
round by round until it finishes, bounded by ``max_rounds``; failed workers are rerouted around,
an invalid decision ends the run. Raw dict input as the CLI sends it, on a real dev server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentResult
from durable_agents.contracts.patterns import SupervisorResult
from tests.conftest import running_worker
from workflows.supervisor import cut


async def supervise(
    client: Client, task_queue: str, registry: AgentRegistry, **input: Any
) -> tuple[SupervisorResult, str]:
    workflow_id = f"supervisor-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        result: SupervisorResult = await client.execute_workflow(
            "SupervisorWorkflow",
            input,
            id=workflow_id,
            task_queue=task_queue,
            result_type=SupervisorResult,
        )
    return result, workflow_id


async def test_supervisor_delegates_to_two_workers_then_answers(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The supervisor sends the numbers to sup-squarer, then (reading the squares from its
    prompt) the squares to sup-summer, then answers from both outputs; every decision, child id
    and output is in the result."""
    result, workflow_id = await supervise(
        client, task_queue, registry,
        supervisor="sup-boss", workers=["sup-squarer", "sup-summer"],
        task="Add up the squares of 3, 4 and 5",
    )  # fmt: skip
    assert result.status == "completed" and result.error is None
    assert result.output == "squares: 9, 16, 25; total: 50"
    decisions = [(r.decision.action, r.decision.worker, r.decision.task) for r in result.rounds]
    assert decisions == [
        ("delegate", "sup-squarer", "square the numbers in: Add up the squares of 3, 4 and 5"),
        ("delegate", "sup-summer", "add up squares: 9, 16, 25"),
        ("finish", None, ""),
    ]
    assert [r.round for r in result.rounds] == [1, 2, 3]
    assert [r.status for r in result.rounds] == ["completed"] * 3
    assert [r.output for r in result.rounds] == ["squares: 9, 16, 25", "total: 50", result.output]
    assert result.rounds[0].workflow_id == f"{workflow_id}/round-1-sup-squarer"
    assert result.rounds[1].workflow_id == f"{workflow_id}/round-2-sup-summer"
    assert result.rounds[2].workflow_id is None


async def test_max_rounds_bounds_the_worker_runs(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A supervisor that would delegate forever gets two worker runs; the final ask allows only
    ``finish`` (its delegation is sent back for repair), so it answers from the two outputs and
    the run ends ``max_steps`` with exactly two worker children."""
    result, workflow_id = await supervise(
        client, task_queue, registry,
        supervisor="sup-endless", workers=["sup-squarer"], task="square things", max_rounds=2,
    )  # fmt: skip
    assert result.status == "max_steps"
    assert result.output == "stopped after 2 rounds: squares: 1; squares: 4"
    assert [r.decision.action for r in result.rounds] == ["delegate", "delegate", "finish"]
    children = [r.workflow_id for r in result.rounds if r.workflow_id]
    assert children == [f"{workflow_id}/round-{n}-sup-squarer" for n in (1, 2)]
    with pytest.raises(RPCError):  # no third worker ran
        await client.get_workflow_handle(f"{workflow_id}/round-3-sup-squarer").describe()


async def test_a_failed_worker_is_recorded_and_rerouted(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The first worker is an agent the worker process does not serve: its round is recorded
    ``failed`` with why, the supervisor reads that and gives the job to sup-squarer, and the
    run completes."""
    result, _ = await supervise(
        client, task_queue, registry,
        supervisor="sup-rerouter", workers=["no-such-agent", "sup-squarer"], task="square 6, 7",
    )  # fmt: skip
    assert result.status == "completed"
    assert [r.status for r in result.rounds] == ["failed", "completed", "completed"]
    assert "unknown agent 'no-such-agent'" in (result.rounds[0].error or "")
    assert result.rounds[1].decision.worker == "sup-squarer"
    assert result.rounds[1].decision.reason == "no-such-agent failed"
    assert result.output == "no-such-agent failed; squares: 36, 49"


async def test_a_delegation_without_a_task_is_a_failed_round(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A delegation naming no sub-task starts no child: its round is recorded ``failed`` and
    counts toward ``max_rounds``; the supervisor reads why and delegates properly."""
    result, workflow_id = await supervise(
        client, task_queue, registry,
        supervisor="sup-sloppy", workers=["sup-squarer"], task="square 8", max_rounds=2,
    )  # fmt: skip
    assert result.status == "max_steps" and result.output == "squares: 64"
    assert [(r.status, r.workflow_id) for r in result.rounds] == [
        ("failed", None),
        ("completed", f"{workflow_id}/round-2-sup-squarer"),
        ("completed", None),
    ]
    assert result.rounds[1].decision.reason == "round 1: a delegation needs a worker and a task"


async def test_an_invalid_decision_ends_the_run_invalid_output(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A supervisor that keeps naming a worker it does not have is sent back for repair until
    its repairs run out: the run ends ``invalid_output``, naming the round, with no worker
    run."""
    result, _ = await supervise(
        client, task_queue, registry,
        supervisor="sup-confused", workers=["sup-squarer"], task="anything",
    )  # fmt: skip
    assert result.status == "invalid_output" and result.rounds == []
    assert (result.error or "").startswith(
        "round 1: the supervisor (sup-confused) ended invalid_output: "
        "its answer failed the output schema after 2 repairs"
    )


async def test_cancelling_the_supervisor_cancels_its_worker(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancel while a worker naps: the worker's child ends ``cancelled`` and the supervisor
    stops there (no further round), returning ``cancelled`` with the round so far."""
    workflow_id = f"supervisor-cancel-{uuid.uuid4()}"
    child_id = f"{workflow_id}/round-1-test-sleeper"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "SupervisorWorkflow",
            {"supervisor": "sup-endless", "workers": ["test-sleeper"], "task": "rest"},
            id=workflow_id,
            task_queue=task_queue,
            result_type=SupervisorResult,
        )
        for _ in range(300):
            try:
                await client.get_workflow_handle(child_id).describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)
        await handle.cancel()
        result = await handle.result()
        child = await client.get_workflow_handle(child_id, result_type=AgentResult).result()
    assert child.status == "cancelled"
    assert result.status == "cancelled" and result.error == "cancelled after round 1"
    assert [(r.round, r.status) for r in result.rounds] == [(1, "cancelled")]


def test_long_outputs_are_cut_keeping_both_ends() -> None:
    """What the supervisor reads of a long worker output: its start and end, and how much was
    cut between them."""
    text = "a" * 3_000 + "b" * 2_000
    shown = cut(text, 400)
    assert shown.startswith("a" * 300) and shown.endswith("b" * 100)
    assert "[…4600 characters cut…]" in shown
    assert cut("short", 400) == "short"
