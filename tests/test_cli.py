"""The command lines users type: ``starter.py`` and the Temporal CLI, as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

from temporalio.client import Client

from durable_agents.agents import AgentRegistry
from durable_agents.runtime.devserver import find_temporal_cli
from durable_agents.runtime.settings import PROJECT_ROOT
from tests.conftest import running_worker


async def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


def address(client: Client) -> str:
    return client.service_client.config.target_host


async def test_agents_json_lists_the_flagship_first() -> None:
    """``starter.py agents --json`` is machine-readable and puts the finops agent first."""
    done = await run_cli(sys.executable, "starter.py", "agents", "--json")
    assert done.returncode == 0, done.stderr
    agents = json.loads(done.stdout)
    assert agents[0]["name"] == "finops"
    assert {"stop_cluster", "notify_owner"} <= {t["name"] for t in agents[0]["tools"]}
    assert agents[0]["offline"] is True


async def test_starter_refuses_an_unknown_agent_before_starting() -> None:
    """An unknown agent is refused locally (exit 2, the known agents listed): no server needed."""
    done = await run_cli(
        sys.executable, "starter.py", "run", "no-such-agent", "do it",
        env={"TEMPORAL_ADDRESS": "127.0.0.1:1"},  # nothing listens there: nothing is contacted
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown agent 'no-such-agent'" in done.stderr
    assert "finops" in done.stderr


async def test_starter_run_follows_to_the_result(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``starter.py run`` against a given server prints the result as JSON, and ``status``
    and ``result`` read the same run back."""
    env = {"TEMPORAL_ADDRESS": address(client), "AGENTS_TASK_QUEUE": task_queue}
    workflow_id = f"cli-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        done = await run_cli(
            sys.executable, "starter.py", "run", "finops", "check the bill", "--json",
            "--id", workflow_id, "--approve-as", "cli-test", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        status = await run_cli(
            sys.executable, "starter.py", "status", workflow_id, "--json", env=env
        )
    assert result["status"] == "completed"
    assert result["workflow_id"] == workflow_id
    assert "gpu-train-7" in result["output"]
    assert json.loads(status.stdout)["steps"] == result["steps"]
    again = await run_cli(sys.executable, "starter.py", "result", workflow_id, "--json", env=env)
    assert json.loads(again.stdout)["output"] == result["output"]


async def test_temporal_cli_starts_an_agent_workflow(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``temporal workflow start --type AgentWorkflow`` with plain JSON input completes, and
    ``temporal workflow query/result`` read it, as the README shows."""
    temporal = find_temporal_cli()
    workflow_id = f"temporal-cli-{uuid.uuid4()}"
    common = ["--address", address(client), "--workflow-id", workflow_id]
    async with running_worker(client, task_queue, registry):
        started = await run_cli(
            temporal, "workflow", "start", "--type", "AgentWorkflow", "--task-queue", task_queue,
            "--input", json.dumps({"agent": "test-adder", "task": "add"}), *common,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        result = await run_cli(temporal, "workflow", "result", *common, "--output", "json")
        query = await run_cli(
            temporal, "workflow", "query", "--name", "status", *common, "--output", "json"
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["output"] == "The sums are 3 and 42."
    assert json.loads(query.stdout)["queryResult"][0]["status"] == "completed"
