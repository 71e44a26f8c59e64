"""Record the histories that ``test_replay.py`` replays: ``python -m tests.record_histories``.

Re-record only when a change to ``AgentWorkflow`` is *meant* to be incompatible with runs in
flight (and then version the workflow instead, if runs may be in flight in production).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agents import AgentRegistry, default_registry
from contracts import AgentInput, AgentResult, AgentStatusView
from contracts.approvals import ApprovalSignal
from runtime.devserver import find_temporal_cli
from tests.agents_for_tests import TEST_AGENTS
from tests.conftest import running_worker

HISTORIES = Path(__file__).parent / "histories"

RUNS = {
    "finops_completed": AgentInput(agent="finops", task="Why did the cloud bill spike?"),
    "adder_parallel_tools": AgentInput(agent="test-adder", task="add"),
    "clumsy_bad_tool_calls": AgentInput(agent="test-clumsy", task="go"),
    "looper_max_steps": AgentInput(agent="test-looper", task="loop", max_steps=3),
    "sleeper_cancelled": AgentInput(agent="test-sleeper", task="rest"),
    "gatekeeper_approved": AgentInput(agent="test-gatekeeper", task="pay"),
}


async def record(client: Client, registry: AgentRegistry) -> None:
    task_queue = f"record-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        for name, agent_input in RUNS.items():
            handle = await client.start_workflow(
                "AgentWorkflow",
                agent_input,
                id=f"{name}-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
                result_type=AgentResult,
            )
            if name == "sleeper_cancelled":
                while (await handle.query("status", result_type=AgentStatusView)).phase != (
                    "running_tools"
                ):
                    await asyncio.sleep(0.1)
                await handle.cancel()
            if name in ("finops_completed", "gatekeeper_approved"):
                while not (
                    await handle.query("status", result_type=AgentStatusView)
                ).pending_approvals:
                    await asyncio.sleep(0.1)
                await handle.signal("approve", ApprovalSignal(approver="alice"))
            result = await handle.result()
            history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"{name}: {result.status} in {result.steps} steps, {len(history.events)} events")


async def main() -> None:
    os.environ["INVENTORY_DB"] = str(Path(tempfile.mkdtemp()) / "inventory.db")
    registry = AgentRegistry(default_registry().all())
    for agent in TEST_AGENTS:
        registry.register(agent)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=[SearchAttributeKey.for_keyword("AgentStatus")],
    )
    async with env:
        await record(env.client, registry)


if __name__ == "__main__":
    asyncio.run(main())
