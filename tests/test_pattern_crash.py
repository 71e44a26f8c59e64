"""kill -9 of the worker during a ``ParallelAgentsWorkflow`` fan-out.

Four ``finops-chaos`` branches (the flagship agent, its side effects held open after they are
committed) run as child workflows on a real ``python worker.py`` process, which is killed -9
while effects are in flight and replaced. Every branch completes; no model call that had
completed before the kill is made again (the scripted provider's own journal); every effect
happens exactly once (the inventory's rows); the branches' approvals are decided through the
parent's id.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from durable_agents.contracts import AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.contracts.patterns import ParallelResult
from examples.finops import inventory
from tests.worker_processes import (
    WorkerProcess,
    assert_model_calls_not_repeated,
    completed_model_calls,
    completed_model_calls_in,
    effects_in_flight,
    wait_for_poller,
)

pytestmark = pytest.mark.slow

BRANCHES = 4


async def test_kill9_during_fan_out_every_branch_completes_once(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """The worker dies -9 with a branch's side effect committed and unreported; a new worker
    finishes the fan-out. All four branches complete; model calls completed before the kill are
    not made again; each branch sent one notification and recorded one stop action, and the
    idle cluster was stopped once overall. Approvals inside the branches are approved by
    signalling the parent."""
    client = stored_client
    journal = tmp_path / "effects.journal"
    env = {
        **worker_env,
        "DURABLE_AGENTS_MODULES": "tests.chaos_agents",
        "CHAOS_EFFECTS_JOURNAL": str(journal),
        "SCRIPTED_MODEL_LATENCY_MS": "300",
    }
    workers.append(WorkerProcess(env, tmp_path / "worker-1.log"))
    await wait_for_poller(client, task_queue)
    parent = f"fan-out-crash-{uuid.uuid4()}"
    handle = await client.start_workflow(
        "ParallelAgentsWorkflow",
        {
            "branches": [{"agent": "finops-chaos", "task": "Why did the bill spike? Act."}]
            * BRANCHES,
            "policy": "all",
        },
        id=parent,
        task_queue=task_queue,
        result_type=ParallelResult,
    )
    children = [f"{parent}/branch-{i}-finops-chaos" for i in range(BRANCHES)]

    async def done_in_children() -> dict[str, list[str]]:
        return await completed_model_calls_in(client, children)

    approved: set[str] = set()

    async def approve_through_parent() -> None:
        try:
            view = await handle.query("status", result_type=AgentStatusView)
        except RPCError:
            return  # no worker to answer right now
        for approval in view.pending_approvals:
            if approval.id not in approved:
                assert approval.workflow_id in children  # a branch's, shown by the parent
                approved.add(approval.id)
                await handle.signal(
                    "approve", ApprovalSignal(approval_id=approval.id, approver="crash-test")
                )

    async with asyncio.timeout(120):
        while not effects_in_flight(journal):
            await approve_through_parent()
            await asyncio.sleep(0.05)
    before = await done_in_children()
    workers[0].kill9()
    assert sum(map(len, before.values())) >= BRANCHES

    workers.append(WorkerProcess(env, tmp_path / "worker-2.log"))
    async with asyncio.timeout(300):
        while True:
            await approve_through_parent()
            try:
                result = await asyncio.wait_for(handle.result(), timeout=0.2)
                break
            except TimeoutError:
                pass

    assert result.status == "completed" and result.succeeded == BRANCHES, result
    assert len(approved) == BRANCHES  # one gated stop per branch, each decided via the parent
    for child in children:  # each completed model call is in the history once
        calls = await completed_model_calls(client.get_workflow_handle(child))
        assert len(calls) == len(set(calls))
    assert_model_calls_not_repeated(Path(env["SCRIPTED_MODEL_JOURNAL"]), before)
    with inventory.connect(Path(worker_env["INVENTORY_DB"])) as db:
        notified = [key for (key,) in db.execute("SELECT idempotency_key FROM notifications")]
        acted = [key for (key,) in db.execute("SELECT idempotency_key FROM actions")]
        stops = db.execute("SELECT COUNT(*) FROM actions WHERE action = 'stop'").fetchone()[0]

    def per_branch(keys: list[str]) -> Counter[str]:
        return Counter(next(c for c in children if key.startswith(f"{c}/")) for key in keys)

    assert per_branch(notified) == dict.fromkeys(children, 1)
    assert per_branch(acted) == dict.fromkeys(children, 1)
    assert stops == 1
