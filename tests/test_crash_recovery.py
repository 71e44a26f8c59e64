"""kill -9 of a real worker process mid-run: a new worker finishes the run without repeating work.

The worker runs as a separate ``python worker.py`` process against the session's dev server, so
the kill is the real thing: no graceful shutdown, in-flight activities simply vanish.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from examples.finops import inventory
from tests.worker_processes import (
    WorkerProcess,
    assert_model_calls_not_repeated,
    completed_model_calls,
    completed_model_calls_in,
    effect_journal,
    effects_in_flight,
    wait_for_poller,
)

pytestmark = pytest.mark.slow


async def test_kill9_worker_mid_run_new_worker_finishes_without_repeating_model_calls(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """After kill -9 the run resumes on a new worker; model calls completed before the kill
    are never made again (one attempt each in the provider's own journal), and the flagship's
    destructive step happens exactly once in the inventory database."""
    client = stored_client
    workers.append(WorkerProcess(worker_env, tmp_path / "worker-1.log"))
    await wait_for_poller(client, task_queue)
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="finops", task="Why did the bill spike?"),
        id=f"crash-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )
    for _ in range(600):
        done_before_kill = await completed_model_calls(handle)
        if len(done_before_kill) >= 2:
            break
        await asyncio.sleep(0.05)
    workers[0].kill9()
    done_before_kill = await completed_model_calls(handle)
    assert len(done_before_kill) >= 2

    workers.append(WorkerProcess(worker_env, tmp_path / "worker-2.log"))
    # The flagship's stop_cluster is gated: approve it when it shows up.
    for _ in range(1800):
        view = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            await handle.signal("approve", ApprovalSignal(approver="crash-test"))
            break
        await asyncio.sleep(0.1)
    result = await asyncio.wait_for(handle.result(), timeout=180)

    assert result.status == "completed", result
    assert "gpu-train-7" in result.output
    model_calls = await completed_model_calls(handle)
    assert len(model_calls) == len(set(model_calls)) == result.steps
    journal = Path(worker_env["SCRIPTED_MODEL_JOURNAL"]).read_text().split()
    attempts = Counter(key.rsplit("/", 1)[1] for key in journal)
    for activity_id in done_before_kill:
        step = activity_id.removeprefix("model-")
        assert attempts[step] == 1, f"model call {activity_id} was made again after the kill"
    with inventory.connect(Path(worker_env["INVENTORY_DB"])) as db:
        stops = db.execute("SELECT COUNT(*) FROM actions WHERE action = 'stop'").fetchone()[0]
        status = db.execute("SELECT status FROM resources WHERE id = 'gpu-train-7'").fetchone()[0]
    assert stops == 1
    assert status == "stopped"


CHAOS_RUNS = 6
CHAOS_KILLS = 5


async def test_concurrent_runs_survive_repeated_kill9_with_each_effect_exactly_once(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """Several flagship runs at once; the worker is killed -9 again and again at the worst
    moment (a side effect committed, its activity not yet reported) and replaced. Every run
    completes, and in the inventory, the system that performed the effects, each run sent
    exactly one notification and recorded exactly one stop action, and the idle cluster was
    stopped exactly once overall."""
    client = stored_client
    journal = tmp_path / "effects.journal"
    env = {
        **worker_env,
        "DURABLE_AGENTS_MODULES": "tests.chaos_agents",
        "CHAOS_EFFECTS_JOURNAL": str(journal),
        "SCRIPTED_MODEL_LATENCY_MS": "200",
    }
    workers.append(WorkerProcess(env, tmp_path / "worker-0.log"))
    await wait_for_poller(client, task_queue)
    # All runs start together, so each finds the idle cluster running and acts on it.
    handles = [
        await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="finops-chaos", task="Why did the bill spike? Act on it."),
            id=f"chaos-{i}-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        for i in range(CHAOS_RUNS)
    ]
    results: dict[str, AgentResult] = {}
    kills = 0

    async def approve_pending() -> None:
        for handle in handles:
            if handle.id in results:
                continue
            try:
                view = await handle.query(
                    "status", result_type=AgentStatusView, rpc_timeout=timedelta(seconds=1)
                )
            except Exception:  # no worker to answer right now: try on the next round
                continue
            for approval in view.pending_approvals:
                await handle.signal(
                    "approve", ApprovalSignal(approval_id=approval.id, approver="chaos-test")
                )

    async def collect() -> None:
        for handle in handles:
            if handle.id not in results:
                try:
                    results[handle.id] = await asyncio.wait_for(handle.result(), timeout=0.05)
                except TimeoutError:
                    pass

    killed: Counter[str] = Counter()  # kills each call was caught in
    async with asyncio.timeout(400):
        while len(results) < CHAOS_RUNS:
            in_flight = effects_in_flight(journal)
            # Every kill costs the calls in flight one of their 5 attempts: never kill a call
            # already caught three times, so each call keeps attempts to finish with.
            if kills < CHAOS_KILLS and in_flight and all(killed[key] < 3 for key in in_flight):
                killed.update(in_flight)
                workers[-1].kill9()
                kills += 1
                workers.append(WorkerProcess(env, tmp_path / f"worker-{kills}.log"))
            await approve_pending()
            await collect()
            await asyncio.sleep(0.1)

    entries = effect_journal(journal)
    attempts_after_kill = sum(1 for event, _, dup in entries if event == "committed" and dup)
    with inventory.connect(Path(worker_env["INVENTORY_DB"])) as db:
        notifications = Counter(
            key.split("/")[0] for (key,) in db.execute("SELECT idempotency_key FROM notifications")
        )
        actions = Counter(
            key.split("/")[0] for (key,) in db.execute("SELECT idempotency_key FROM actions")
        )
        stops = db.execute("SELECT COUNT(*) FROM actions WHERE action = 'stop'").fetchone()[0]
        status = db.execute("SELECT status FROM resources WHERE id = 'gpu-train-7'").fetchone()[0]
    print(
        f"\ncrash test: runs={len(handles)} kills={kills} (each with an effect committed and "
        f"unreported) attempts answered from the ledger={attempts_after_kill} "
        f"notifications expected={len(handles)} performed={sum(notifications.values())} "
        f"stop actions expected={len(handles)} performed={sum(actions.values())} "
        f"clusters stopped expected=1 performed={stops}"
    )
    assert kills >= 3, f"only {kills} kills landed in an effect's window"
    assert attempts_after_kill >= 1  # the kills did land between effect and report
    for handle in handles:
        result = results[handle.id]
        assert result.status == "completed", result
        assert not [c for c in result.tool_calls if c.is_error], [
            c.result_preview for c in result.tool_calls if c.is_error
        ]
        assert notifications[handle.id] == 1, notifications
        assert actions[handle.id] == 1, actions
    assert stops == 1
    assert status == "stopped"


async def test_kill9_while_subagents_run_every_run_completes_without_repeating_model_calls(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """``fan-out`` delegates to three test-adder sub-agents (child workflows) at once; the
    worker is killed -9 while they run. A new worker finishes the parent and every child, and
    no model call that had completed before the kill is made again (journal of the provider)."""
    client = stored_client
    env = {
        **worker_env,
        "DURABLE_AGENTS_MODULES": "tests.agents_for_tests,tests.composition_agents",
    }
    env["SCRIPTED_MODEL_LATENCY_MS"] = "800"
    workers.append(WorkerProcess(env, tmp_path / "worker-1.log"))
    await wait_for_poller(client, task_queue)
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="fan-out", task="fan out"),
        id=f"crash-fan-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )
    children = [f"{handle.id}/test-adder-1-call_1_{i}" for i in range(3)]

    async def done_in_children() -> dict[str, list[str]]:
        return await completed_model_calls_in(client, children)

    for _ in range(600):
        before = await done_in_children()
        if sum(map(len, before.values())) >= 2:
            break
        await asyncio.sleep(0.05)
    workers[0].kill9()
    before = await done_in_children()
    before[handle.id] = await completed_model_calls(handle)
    assert sum(len(calls) for calls in before.values()) >= 3

    workers.append(WorkerProcess(env, tmp_path / "worker-2.log"))
    result = await asyncio.wait_for(handle.result(), timeout=180)
    assert result.status == "completed" and result.subagent_calls == 3
    for child in children:
        child_result = await client.get_workflow_handle(child, result_type=AgentResult).result()
        assert child_result.output == "The sums are 3 and 42."
    assert_model_calls_not_repeated(Path(env["SCRIPTED_MODEL_JOURNAL"]), before)
