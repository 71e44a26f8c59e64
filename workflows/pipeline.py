"""``PipelineWorkflow``: agents in sequence, each stage's (typed) output the next one's input.

Each stage is a child ``AgentWorkflow`` (``<id>/stage-<i>-<agent>``, stages numbered from 0 as
in ``failed_stage``). Its answer is checked at the edge by the child: against the stage's
``output_schema`` if the input gives one, else the agent's own ``output_type``, with the agent's
repairs. Stage 0 gets the task as it is; every later stage gets a short header and the previous
stage's answer::

    Pipeline task: "Add up 3, 4 and 5"
    Your input is the output of the previous stage (extractor), as JSON:

    {"numbers": [3, 4, 5]}

The header's lines never break (the task is a JSON string there), so the payload is everything
after the first blank line: the validated JSON when the previous stage was typed ("as JSON"),
else its text ("as text").

A stage that does not complete (``invalid_output`` after its repairs, ``max_steps``,
``cancelled``) stops the pipeline with that status; a stage whose child fails (an unknown agent,
an unusable schema) stops it with ``failed``. Either way the workflow returns its result, naming
the stage in ``failed_stage`` and ``error``; later stages stay ``not_started``. Cancelling the
workflow cancels the running stage's child, which ends ``cancelled``: so does the pipeline, with
what the earlier stages produced (as ``AgentWorkflow`` finishes a cancelled run with what it has).
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts.agent_io import RunStatus
    from durable_agents.contracts.patterns import (
        PipelineInput,
        PipelineResult,
        StageResult,
    )
    from durable_agents.runner.child_runs import run_child, why_not_completed
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.steps import failure_message


def hand_off(task: str, previous: StageResult) -> str:
    """The next stage's input: a header naming the task, then ``previous``'s answer."""
    if previous.output_json is not None:
        kind, payload = "JSON", json.dumps(previous.output_json, ensure_ascii=False)
    else:
        kind, payload = "text", previous.output
    return (
        f"Pipeline task: {json.dumps(task, ensure_ascii=False)}\n"
        f"Your input is the output of the previous stage ({previous.agent}), as {kind}:\n\n"
        f"{payload}"
    )


@workflow.defn(name="PipelineWorkflow", failure_exception_types=[pydantic.ValidationError])
class PipelineWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: PipelineInput) -> PipelineResult:
        self.agents.set_budget(input.budget_usd, input.budget_tokens)
        parent = workflow.info().workflow_id
        stages = [
            StageResult(index=i, agent=s.agent, workflow_id=f"{parent}/stage-{i}-{s.agent}")
            for i, s in enumerate(input.stages)
        ]
        previous: StageResult | None = None
        status: RunStatus = "completed"
        for stage, spec in zip(stages, input.stages, strict=True):
            stage.input = input.task if previous is None else hand_off(input.task, previous)
            status = await self._stage(stage, spec.output_schema, len(stages))
            if status != "completed":
                break
            previous = stage
        last = [s for s in stages if s.status != "not_started"][-1]
        return PipelineResult(
            status=status,
            output=last.output,
            output_json=last.output_json,
            stages=stages,
            failed_stage=None if status == "completed" else last.index,
            cost_usd=sum(s.cost_usd for s in stages),
            error=last.error,
        )

    async def _stage(self, stage: StageResult, schema: dict[str, Any] | None, n: int) -> RunStatus:
        """Run one stage as a child; record its outcome on ``stage`` and return its status."""
        workflow.set_current_details(f"stage {stage.index + 1}/{n}: {stage.agent}")
        where = f"stage {stage.index} ({stage.agent})"
        if workflow.cancellation_reason() is not None:
            stage.status, stage.error = "cancelled", f"{where} not started: pipeline cancelled"
            return "cancelled"
        stage.status = "running"
        try:
            result = await run_child(
                self.agents,
                stage.agent,
                stage.input,
                label=f"stage-{stage.index}-{stage.agent}",
                output_schema=schema,
            )
        except ChildWorkflowError as err:  # the child failed: its failure says why
            stage.status, stage.error = "failed", f"{where} failed: {failure_message(err)}"
            return "failed"
        stage.status, stage.cost_usd = result.status, result.cost_usd
        stage.output, stage.output_json = result.output, result.output_json
        if result.status != "completed":
            stage.error = f"{where} ended {result.status}: {why_not_completed(result)}"
        return result.status
