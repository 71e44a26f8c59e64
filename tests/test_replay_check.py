"""``starter.py replay-check`` (a subprocess, against the session's dev server): recent runs
replay against the current code, and a deliberately incompatible ``AgentWorkflow`` fails,
naming the run."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from tests.conftest import running_worker
from tests.test_cli import address, run_cli

INCOMPATIBLE = "tests.replay_check_workflows:IncompatibleAgentWorkflow"


async def run_agents(client: Client, task_queue: str, registry: AgentRegistry) -> list[str]:
    """Two completed test-adder runs on ``task_queue``; their workflow ids. The long task
    makes the conversation large enough to be offloaded to the payload store."""
    task = "add " + "these numbers, " * 500
    ids = [f"replay-check-{uuid.uuid4()}" for _ in range(2)]
    async with running_worker(client, task_queue, registry):
        for workflow_id in ids:
            handle = await client.start_workflow(
                "AgentWorkflow", AgentInput(agent="test-adder", task=task),
                id=workflow_id, task_queue=task_queue, result_type=AgentResult,
            )  # fmt: skip
            assert (await handle.result()).status == "completed"
    return ids


async def test_replay_check_passes_then_catches_an_incompatible_change(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """The current code replays both runs (their conversations offloaded to the payload
    store, which the check reads as the worker does): exit 0. The same runs against an
    ``AgentWorkflow`` whose first command differs: exit 1, the nondeterminism and the run named."""
    ids = await run_agents(stored_client, task_queue, registry)
    env = {
        "TEMPORAL_ADDRESS": address(stored_client),
        "AGENTS_TASK_QUEUE": task_queue,
        "PAYLOAD_STORE": "local",
        "PAYLOAD_STORE_DIR": str(payload_dir),
    }
    assert any(payload_dir.rglob("*")), "the runs offloaded nothing: the check proves less"

    ok = await run_cli(sys.executable, "starter.py", "replay-check", "--json", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    reports = {r["workflow_type"]: r for r in json.loads(ok.stdout)["reports"]}
    assert reports["AgentWorkflow"]["replayed"] == 2
    assert reports["AgentWorkflow"]["failed"] == 0
    assert {"ParallelAgentsWorkflow", "BillReview"} <= set(reports)  # every served type looked at

    text = await run_cli(sys.executable, "starter.py", "replay-check", env=env)
    assert text.returncode == 0, text.stderr
    assert "AgentWorkflow: replayed 2, failed 0" in text.stdout

    bad = await run_cli(
        sys.executable, "starter.py", "replay-check", "--workflow", INCOMPATIBLE, env=env
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "AgentWorkflow: replayed 2, failed 2" in bad.stdout
    first = bad.stdout.split("first nondeterminism: workflow ", 1)[1].split()[0]
    assert first in ids
    assert "NondeterminismError: [TMPRL1100] Nondeterminism error" in bad.stdout


async def test_replay_check_narrows_by_query_and_limit(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """``--limit`` caps the runs per type; ``--query`` is ANDed in (here: one workflow id)."""
    ids = await run_agents(stored_client, task_queue, registry)
    env = {
        "TEMPORAL_ADDRESS": address(stored_client),
        "AGENTS_TASK_QUEUE": task_queue,
        "PAYLOAD_STORE_DIR": str(payload_dir),
    }
    limited = await run_cli(
        sys.executable, "starter.py", "replay-check", "--json", "--limit", "1", env=env
    )
    one = {r["workflow_type"]: r for r in json.loads(limited.stdout)["reports"]}
    assert one["AgentWorkflow"]["replayed"] == 1
    queried = await run_cli(
        sys.executable, "starter.py", "replay-check", "--workflow", INCOMPATIBLE,
        "--query", f"WorkflowId = '{ids[1]}'", env=env,
    )  # fmt: skip
    assert queried.returncode == 1
    assert f"first nondeterminism: workflow {ids[1]} " in queried.stdout
    assert ids[0] not in queried.stdout
