"""The patterns from the command lines users type: the Temporal CLI and ``starter.py``.

Each pattern's example (``starter.py patterns``) is started with ``temporal workflow start
--type <Name> --task-queue ... --input '<JSON>'`` and completes on the offline model, its
children's approvals decided through the pattern's own workflow id.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest
from temporalio.client import Client

from durable_agents.agents import AgentRegistry, default_registry
from durable_agents.cli.patterns import PATTERNS
from durable_agents.contracts import AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runtime.devserver import find_temporal_cli
from examples import AGENT_MODULES
from tests.conftest import running_worker
from tests.test_cli import address, run_cli


async def test_patterns_lists_every_workflow_with_a_valid_example() -> None:
    """``starter.py patterns --json`` names the five pattern workflow types; each example is a
    valid input naming only agents this repository serves."""
    done = await run_cli(sys.executable, "starter.py", "patterns", "--json")
    assert done.returncode == 0, done.stderr
    listed = {p["workflow_type"]: p for p in json.loads(done.stdout)}
    assert set(listed) == {
        "ParallelAgentsWorkflow",
        "PipelineWorkflow",
        "SupervisorWorkflow",
        "RouterWorkflow",
        "EvaluatorOptimizerWorkflow",
    }
    served = default_registry(AGENT_MODULES)
    for pattern in PATTERNS:
        value = pattern.parse(json.dumps(listed[pattern.workflow_type]["example"]))
        assert all(agent in served for agent in pattern.agents(value)), pattern.name


async def test_starter_refuses_a_bad_pattern_input_before_starting() -> None:
    """A pattern input that fails its model, or names an unknown agent, is refused locally
    (exit 2) with what is wrong and an example: nothing is started."""
    env = {"TEMPORAL_ADDRESS": "127.0.0.1:1"}  # nothing listens there: nothing is contacted
    bad = await run_cli(
        sys.executable, "starter.py", "run", "parallel", '{"branches": [], "policy": "most"}',
        env=env,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "branches: List should have at least 1 item" in bad.stderr
    assert "example: {" in bad.stderr
    unknown = await run_cli(
        sys.executable, "starter.py", "run", "RouterWorkflow",
        '{"router": "dispatcher", "routes": {"x": "ghost"}, "task": "t"}', env=env,
    )  # fmt: skip
    assert unknown.returncode == 2 and "unknown agent 'ghost'" in unknown.stderr


async def approve_through(client: Client, workflow_id: str, done: asyncio.Event) -> None:
    """Approve every approval the run shows (its children's included) by signalling it."""
    handle = client.get_workflow_handle(workflow_id)
    decided: set[str] = set()
    while not done.is_set():
        try:
            view = await handle.query("status", result_type=AgentStatusView)
        except Exception:  # not started yet
            view = None
        for approval in view.pending_approvals if view else []:
            if approval.id not in decided:
                decided.add(approval.id)
                await handle.signal(
                    "approve", ApprovalSignal(approval_id=approval.id, approver="cli-test")
                )
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p.name for p in PATTERNS])
async def test_temporal_cli_starts_each_pattern(
    client: Client, task_queue: str, registry: AgentRegistry, pattern: object
) -> None:
    """``temporal workflow start --type <Pattern>`` with the example's plain JSON completes;
    ``temporal workflow result`` reads a completed result."""
    from durable_agents.cli.patterns import Pattern

    assert isinstance(pattern, Pattern)
    temporal = find_temporal_cli()
    workflow_id = f"cli-{pattern.name}-{uuid.uuid4().hex[:8]}"
    common = ["--address", address(client), "--workflow-id", workflow_id]
    done = asyncio.Event()
    async with running_worker(client, task_queue, registry):
        started = await run_cli(
            temporal, "workflow", "start", "--type", pattern.workflow_type,
            "--task-queue", task_queue, "--input", json.dumps(pattern.example), *common,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        approver = asyncio.create_task(approve_through(client, workflow_id, done))
        result = await run_cli(temporal, "workflow", "result", *common, "--output", "json")
        done.set()
        await approver
    assert result.returncode == 0, result.stderr + result.stdout
    answer = json.loads(result.stdout)["result"]
    assert answer["status"] == "completed", answer
    assert answer["output"]


async def test_starter_run_follows_a_pattern_tree(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``starter.py run parallel '<JSON>'`` prints each branch's steps, indented under the
    branch's label, approves the finops branch's gated call as ``--approve-as`` (no terminal),
    and ends with every branch's status; ``starter.py result`` reads the pattern result back;
    the run is found by ``AgentPattern`` and its branch by ``AgentName`` and ``AgentModel``."""
    env = {"TEMPORAL_ADDRESS": address(client), "AGENTS_TASK_QUEUE": task_queue}
    workflow_id = f"cli-tree-{uuid.uuid4().hex[:8]}"
    example = next(p for p in PATTERNS if p.name == "parallel").example
    async with running_worker(client, task_queue, registry):
        done = await run_cli(
            sys.executable, "starter.py", "run", "parallel", json.dumps(example),
            "--id", workflow_id, "--approve-as", "cli-test", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        again = await run_cli(
            sys.executable, "starter.py", "result", workflow_id, "--json", env=env
        )
        temporal, target = find_temporal_cli(), address(client)
        by_pattern = await run_cli(
            temporal, "workflow", "list", "--address", target, "--query",
            f'AgentPattern = "ParallelAgentsWorkflow" AND WorkflowId = "{workflow_id}"',
        )  # fmt: skip
        by_agent = await run_cli(
            temporal, "workflow", "list", "--address", target, "--query",
            f'AgentName = "finops" AND AgentModel = "scripted" AND WorkflowId = '
            f'"{workflow_id}/branch-0-finops"',
        )  # fmt: skip
    out = done.stdout
    assert "started branch-0-finops (AgentWorkflow)" in out
    assert "    [branch-0-finops] step 1" in out
    assert "    [branch-1-triage] step 1" in out
    assert "[branch-0-finops]   -> stop_cluster(" in out
    assert "approved" in out and "cli-test" in out
    assert "branch 0 finops: completed" in out and "branch 1 triage: completed" in out
    result = json.loads(again.stdout)
    assert result["status"] == "completed" and result["succeeded"] == 2
    assert workflow_id in by_pattern.stdout, by_pattern.stderr  # the saved-view queries work
    assert f"{workflow_id}/branch-0-finops" in by_agent.stdout, by_agent.stderr
