"""The resume timings (``runtime.resume_timings``): every run and child started through this
library gets the short workflow-task timeout unless its starter chose one, and workers with the
plugin get the short sticky-queue timeout; without them a dead worker's runs wait Temporal's
10 s defaults (measured in ``bench.resume``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.contracts.patterns import ParallelResult
from durable_agents.plugin import AgentsPlugin
from durable_agents.runner.policies import (
    STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    WORKFLOW_TASK_TIMEOUT,
)
from durable_agents.runtime.resume_timings import ResumeTimings
from tests.conftest import running_worker

ADD = {"agent": "test-adder", "task": "add"}
TEMPORAL_DEFAULT = timedelta(seconds=10)


async def task_timeout(client: Client, workflow_id: str) -> timedelta:
    described = await client.get_workflow_handle(workflow_id).describe()
    return described.raw_description.execution_config.default_workflow_task_timeout.ToTimedelta()


async def test_runs_started_through_the_library_get_the_short_task_timeout(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A client with the interceptor (as ``runtime.client.connect`` and any client given
    ``AgentsPlugin`` have) starts runs with ``WORKFLOW_TASK_TIMEOUT``; a timeout the caller
    chose is kept; a client without it gets Temporal's 10 s."""
    config = client.config()
    config["interceptors"] = [ResumeTimings()]
    ours = Client(**config)
    async with running_worker(client, task_queue, registry):
        chosen = timedelta(seconds=7)
        ids = {"ours": f"rt-{uuid.uuid4()}", "chosen": f"rt-{uuid.uuid4()}"}
        ids["plain"] = f"rt-{uuid.uuid4()}"
        for name, starter, timeout in (
            ("ours", ours, None),
            ("chosen", ours, chosen),
            ("plain", client, None),
        ):
            await starter.execute_workflow(
                "AgentWorkflow",
                AgentInput(agent="test-adder", task="add"),
                id=ids[name],
                task_queue=task_queue,
                result_type=AgentResult,
                task_timeout=timeout,
            )
    assert await task_timeout(client, ids["ours"]) == WORKFLOW_TASK_TIMEOUT
    assert await task_timeout(client, ids["chosen"]) == chosen
    assert await task_timeout(client, ids["plain"]) == TEMPORAL_DEFAULT


async def test_children_get_the_short_task_timeout_and_workers_the_short_sticky_timeout(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A pattern started by a plain client (10 s for itself) starts its branches with
    ``WORKFLOW_TASK_TIMEOUT``: the plugin's workflow interceptor sets it on every child. The
    plugin gives the worker the short sticky-queue timeout."""
    workflow_id = f"rt-parallel-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry) as workers:
        result = await client.execute_workflow(
            "ParallelAgentsWorkflow",
            {"branches": [ADD, ADD]},
            id=workflow_id,
            task_queue=task_queue,
            result_type=ParallelResult,
        )
        active = workers.agents.config(active_config=True)
    assert result.status == "completed"
    assert await task_timeout(client, workflow_id) == TEMPORAL_DEFAULT
    for branch in result.branches:
        assert await task_timeout(client, branch.workflow_id) == WORKFLOW_TASK_TIMEOUT
    assert active.get("sticky_queue_schedule_to_start_timeout") == (
        STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT
    )


def test_a_worker_that_chose_its_sticky_timeout_keeps_it(
    client: Client, registry: AgentRegistry
) -> None:
    plugin = AgentsPlugin(registry=registry, providers={})
    chosen = timedelta(seconds=30)
    config = plugin.configure_worker(
        {"client": client, "sticky_queue_schedule_to_start_timeout": chosen}
    )
    assert config.get("sticky_queue_schedule_to_start_timeout") == chosen
    default = plugin.configure_worker(
        {"client": client, "sticky_queue_schedule_to_start_timeout": TEMPORAL_DEFAULT}
    )
    assert default.get("sticky_queue_schedule_to_start_timeout") == (
        STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT
    )
