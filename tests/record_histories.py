"""Record the histories that ``test_replay.py`` replays: ``python -m tests.record_histories``.

``python -m tests.record_histories NAME ...`` records only those runs (add a new one without
touching the histories recorded by earlier versions). A run that continues as new is saved one
file per run of its chain: ``NAME.run1.json``, ``NAME.run2.json``, ...

Re-record only when a change to ``AgentWorkflow`` is *meant* to be incompatible with runs in
flight (and then version the workflow instead, if runs may be in flight in production).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from durable_agents.agents import AgentRegistry, default_registry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runtime.devserver import find_temporal_cli
from examples import AGENT_MODULES
from tests.agents_for_tests import TEST_AGENTS, TEST_SCRIPTS
from tests.conftest import running_worker
from tests.evaluator_agents import EVALUATOR_CHECKS
from tests.user_workflows import HandLoopWorkflow, ReviewInput, ReviewWorkflow

USER_WORKFLOWS = [ReviewWorkflow, HandLoopWorkflow]

HISTORIES = Path(__file__).parent / "histories"

RUNS = {
    "finops_completed": AgentInput(agent="finops", task="Why did the cloud bill spike?"),
    "adder_parallel_tools": AgentInput(agent="test-adder", task="add"),
    "clumsy_bad_tool_calls": AgentInput(agent="test-clumsy", task="go"),
    "looper_max_steps": AgentInput(agent="test-looper", task="loop", max_steps=3),
    "sleeper_cancelled": AgentInput(agent="test-sleeper", task="rest"),
    "gatekeeper_approved": AgentInput(agent="test-gatekeeper", task="pay"),
    "soak_continue_as_new": AgentInput(
        agent="soak", task="steps=5 bytes=200", continue_as_new_after_steps=2
    ),
    "soak_rolling_summary": AgentInput.model_validate(
        {
            "agent": "soak",
            "task": "steps=12 bytes=400",
            "context": {
                "strategy": "rolling_summary",
                "max_context_tokens": 600,
                "keep_recent_turns": 3,
                "fold_every_turns": 2,
                "summary_max_tokens": 200,
            },
        }
    ),
    "gatekeeper_handoff": AgentInput(
        agent="test-gatekeeper", task="pay", continue_as_new_after_steps=1
    ),
    "delegator_subagent": AgentInput(agent="delegator", task="delegate"),
    "typed_repaired": AgentInput(agent="typed-repaired", task="judge"),
    "looper_budget_exhausted": AgentInput(
        agent="test-looper", task="loop", max_steps=500, budget_tokens=6_000
    ),
    "delegator_budget": AgentInput(agent="delegator", task="delegate", budget_usd=1.0),
}

NAMED_BY_FILE = {"delegator_subagent", "delegator_budget"}
"""Runs whose workflow id must be the file's name (they start children; see record_user_run)."""

USER_RUNS = {"review_workflow": ("ReviewWorkflow", ReviewInput(task="add"))}
"""Runs of user-style workflows (``tests/user_workflows.py``); their children are not saved."""

ADD = {"agent": "test-adder", "task": "add"}
NAP = {"agent": "test-sleeper", "task": "nap for ten minutes"}
PATTERN_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "parallel_best_effort": (
        "ParallelAgentsWorkflow",
        {
            "branches": [ADD, {"agent": "no-such-agent", "task": "x"}, NAP, ADD],
            "policy": "best_effort",
            "branch_timeout": 2,
            "synthesizer": "test-adder",
        },
    ),
    "parallel_quorum": (
        "ParallelAgentsWorkflow",
        {"branches": [NAP, ADD, ADD], "policy": {"quorum": 2}},
    ),
    "pipeline_typed": (
        "PipelineWorkflow",
        {
            "stages": [
                {"agent": "pipe-extractor"},
                {"agent": "pipe-squarer"},
                {"agent": "pipe-summer"},
            ],
            "task": "Add up the squares of 3, 4 and 5",
        },
    ),
    "supervisor_rounds": (
        "SupervisorWorkflow",
        {
            "supervisor": "sup-rerouter",
            "workers": ["no-such-agent", "sup-squarer"],
            "task": "square 6, 7",
        },
    ),
    "evaluator_optimizer_check": (
        "EvaluatorOptimizerWorkflow",
        {
            "generator": "test-lister",
            "evaluator": {"check": "test-item-count"},
            "task": "List fruits.",
        },
    ),
    "router_routed": (
        "RouterWorkflow",
        {"router": "test-router", "routes": {"math": "test-adder"}, "task": "add"},
    ),
}
"""Runs of the pattern workflows (``workflows/``), id = file name; their children are not saved."""


async def record_pattern_run(client: Client, task_queue: str, name: str) -> None:
    workflow_type, workflow_input = PATTERN_RUNS[name]
    handle = await client.start_workflow(
        workflow_type, workflow_input, id=name, task_queue=task_queue
    )
    await handle.result()
    (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())
    print(f"{name}: completed")


async def record_user_run(client: Client, task_queue: str, name: str) -> None:
    workflow_type, workflow_input = USER_RUNS[name]
    # The workflow id is the file's name: the replay test names histories by file, and child
    # workflow ids (recorded in the history) are derived from the parent's id.
    handle = await client.start_workflow(
        workflow_type, workflow_input, id=name, task_queue=task_queue
    )
    while not (view := await handle.query("status", result_type=AgentStatusView)).pending_approvals:
        await asyncio.sleep(0.1)
    await handle.signal(
        "approve", ApprovalSignal(approver="alice", approval_id=view.pending_approvals[0].id)
    )
    await handle.result()
    (HISTORIES / f"{name}.json").write_text((await handle.fetch_history()).to_json())
    print(f"{name}: completed")


async def record(client: Client, registry: AgentRegistry, names: list[str]) -> None:
    task_queue = f"record-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, workflows=USER_WORKFLOWS):
        for name in names:
            if name in USER_RUNS:
                await record_user_run(client, task_queue, name)
                continue
            if name in PATTERN_RUNS:
                await record_pattern_run(client, task_queue, name)
                continue
            agent_input = RUNS[name]
            handle = await client.start_workflow(
                "AgentWorkflow",
                agent_input,
                id=name if name in NAMED_BY_FILE else f"{name}-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
                result_type=AgentResult,
            )
            if name == "sleeper_cancelled":
                while (await handle.query("status", result_type=AgentStatusView)).phase != (
                    "running_tools"
                ):
                    await asyncio.sleep(0.1)
                await handle.cancel()
            latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
            if name in ("finops_completed", "gatekeeper_approved", "gatekeeper_handoff"):
                while True:
                    view = await latest.query("status", result_type=AgentStatusView)
                    if view.pending_approvals and (name != "gatekeeper_handoff" or view.runs > 1):
                        break
                    await asyncio.sleep(0.1)
                await latest.signal("approve", ApprovalSignal(approver="alice"))
            result = await latest.result()
            runs = [e.run_id async for e in client.list_workflows(f"WorkflowId = '{handle.id}'")]
            for number, run_id in enumerate(reversed(runs), start=1):
                history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
                file = f"{name}.run{number}.json" if len(runs) > 1 else f"{name}.json"
                (HISTORIES / file).write_text(history.to_json())
            print(f"{name}: {result.status} in {result.steps} steps, {len(runs)} run(s)")


async def main() -> None:
    os.environ["INVENTORY_DB"] = str(Path(tempfile.mkdtemp()) / "inventory.db")
    registry = default_registry(AGENT_MODULES).copy()
    for agent in TEST_AGENTS:
        registry.register(agent)
    registry.scripts.update(TEST_SCRIPTS)
    for test_check in EVALUATOR_CHECKS:
        registry.register_check(test_check)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=[
            SearchAttributeKey.for_keyword("AgentStatus"),
            SearchAttributeKey.for_float("AgentCostUSD"),
            SearchAttributeKey.for_int("AgentTokens"),
            SearchAttributeKey.for_keyword("AgentName"),
            SearchAttributeKey.for_keyword("AgentModel"),
            SearchAttributeKey.for_keyword("AgentPattern"),
        ],
    )
    async with env:
        await record(env.client, registry, sys.argv[1:] or [*RUNS, *USER_RUNS, *PATTERN_RUNS])


if __name__ == "__main__":
    asyncio.run(main())
