"""``PipelineWorkflow``: stages as child workflows, each typed output handed to the next stage,
stopped by the first stage that does not complete; started with raw dict input as the CLI does,
on a real dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentResult
from durable_agents.contracts.patterns import PipelineResult
from tests.conftest import running_worker

TASK = "Add up the squares of 3, 4 and 5"

REPORT_SCHEMA = {
    "title": "Report",
    "type": "object",
    "properties": {"summary": {"type": "string"}, "total": {"type": "integer"}},
    "required": ["summary", "total"],
}


async def pipeline(
    client: Client, task_queue: str, registry: AgentRegistry, stages: list[Any]
) -> tuple[PipelineResult, str]:
    workflow_id = f"pipeline-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        result: PipelineResult = await client.execute_workflow(
            "PipelineWorkflow",
            {"stages": stages, "task": TASK},
            id=workflow_id,
            task_queue=task_queue,
            result_type=PipelineResult,
        )
    return result, workflow_id


async def test_typed_stages_hand_off_and_complete(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Three typed stages run as children ``<id>/stage-<i>-<agent>``: the extractor's numbers
    are squared by the next stage, whose squares the last one adds up; each later stage reads
    the original task from the hand-off's header."""
    stages = [{"agent": "pipe-extractor"}, {"agent": "pipe-squarer"}, {"agent": "pipe-summer"}]
    result, workflow_id = await pipeline(client, task_queue, registry, stages)
    assert result.status == "completed" and result.failed_stage is None and result.error is None
    assert [s.status for s in result.stages] == ["completed"] * 3
    assert result.stages[0].input == TASK
    assert result.stages[0].output_json == {"numbers": [3, 4, 5]}
    assert result.stages[1].input == (
        f"Pipeline task: {json.dumps(TASK)}\n"
        "Your input is the output of the previous stage (pipe-extractor), as JSON:\n\n"
        '{"numbers": [3, 4, 5]}'
    )
    assert result.stages[1].output_json == {"task": TASK, "squares": [9, 16, 25]}
    assert result.output_json == {"task": TASK, "total": 50}
    assert json.loads(result.output) == result.output_json
    for stage in result.stages:
        assert stage.workflow_id == f"{workflow_id}/stage-{stage.index}-{stage.agent}"
        child = client.get_workflow_handle(stage.workflow_id, result_type=AgentResult)
        assert (await child.result()).output_json == stage.output_json


async def test_a_stage_schema_from_the_input_is_enforced(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """pipe-reporter has no output type; the stage's ``output_schema`` in the input makes its
    child reject the prose answer and repair it into the schema's JSON (computed from the
    squares it was handed)."""
    stages = [
        {"agent": "pipe-extractor"},
        {"agent": "pipe-squarer"},
        {"agent": "pipe-reporter", "output_schema": REPORT_SCHEMA},
    ]
    result, _ = await pipeline(client, task_queue, registry, stages)
    assert result.status == "completed"
    assert result.output_json == {"summary": "the squares add up to 50", "total": 50}
    child = client.get_workflow_handle(result.stages[2].workflow_id, result_type=AgentResult)
    assert (await child.result()).output_repairs == 1


async def test_invalid_output_stops_the_pipeline(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """typed-stubborn's answer still fails its schema after its repairs: the pipeline returns
    ``invalid_output`` naming stage 1, and the stage after it never starts."""
    stages = [{"agent": "pipe-extractor"}, {"agent": "typed-stubborn"}, {"agent": "pipe-squarer"}]
    result, workflow_id = await pipeline(client, task_queue, registry, stages)
    assert result.status == "invalid_output" and result.failed_stage == 1
    assert [s.status for s in result.stages] == ["completed", "invalid_output", "not_started"]
    assert (result.error or "").startswith(
        "stage 1 (typed-stubborn) ended invalid_output: "
        "its answer failed the output schema after 2 repairs"
    )
    assert result.stages[1].error == result.error
    assert result.stages[2].input == ""
    with pytest.raises(RPCError):  # no such workflow: stage 2 never started
        await client.get_workflow_handle(f"{workflow_id}/stage-2-pipe-squarer").describe()


async def test_an_unknown_agent_fails_its_stage(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A stage naming no agent the worker serves fails its child: the pipeline returns
    ``failed`` with the stage and the child's reason."""
    stages = [{"agent": "pipe-extractor"}, {"agent": "no-such-agent"}, {"agent": "pipe-squarer"}]
    result, _ = await pipeline(client, task_queue, registry, stages)
    assert result.status == "failed" and result.failed_stage == 1
    assert [s.status for s in result.stages] == ["completed", "failed", "not_started"]
    assert (result.error or "").startswith("stage 1 (no-such-agent) failed: ")
    assert "unknown agent 'no-such-agent'" in (result.error or "")


async def test_cancelling_the_pipeline_cancels_the_running_stage(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancel a pipeline while its first stage naps: the stage's child ends ``cancelled`` (not
    terminated), the pipeline returns ``cancelled`` naming it, the next stage never starts."""
    workflow_id = f"pipeline-cancel-{uuid.uuid4()}"
    child_id = f"{workflow_id}/stage-0-test-sleeper"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "PipelineWorkflow",
            {"stages": [{"agent": "test-sleeper"}, {"agent": "pipe-squarer"}], "task": TASK},
            id=workflow_id,
            task_queue=task_queue,
            result_type=PipelineResult,
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
    assert result.status == "cancelled" and result.failed_stage == 0
    assert [s.status for s in result.stages] == ["cancelled", "not_started"]
    assert (result.error or "").startswith("stage 0 (test-sleeper) ended cancelled")
