"""Workflows a user writes with the library's API: test-only, never imported by the library.

``ReviewWorkflow`` runs three agents inline (one with typed output, one gated by a human
approval) and one as a child workflow, the way the README shows; ``HandLoopWorkflow`` writes its
own loop from the single steps (model call, tool call under policy, approval request);
``NestedFanOutWorkflow`` runs a pattern (``ParallelAgentsWorkflow``) as its child.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts.patterns import Branch, ParallelInput, ParallelResult
    from durable_agents.runner.host import AgentHost
    from tests.composition_agents import Verdict


class ReviewInput(BaseModel):
    task: str


class ReviewResult(BaseModel):
    verdict: Verdict
    sums: str
    transfer: str
    child: str
    child_workflow_id: str | None
    cost_usd: float


@workflow.defn(name="ReviewWorkflow")
class ReviewWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: ReviewInput) -> ReviewResult:
        verdict = await self.agents.run("typed-first-time", input.task, output_type=Verdict)
        sums = await self.agents.run("test-adder", input.task)  # inline
        transfer = await self.agents.run("test-gatekeeper", "pay bob")  # inline, gated
        child = await self.agents.run("test-adder", input.task, child=True)  # own workflow
        return ReviewResult(
            verdict=verdict.output_as(Verdict),
            sums=sums.output,
            transfer=transfer.output,
            child=child.output,
            child_workflow_id=self.agents.children[0].workflow_id,
            cost_usd=sums.cost_usd + transfer.cost_usd + child.cost_usd,
        )


class HandLoopResult(BaseModel):
    reply: str
    tool_result: str
    decision: str
    steps: int


@workflow.defn(name="HandLoopWorkflow")
class HandLoopWorkflow(AgentHost):
    @workflow.run
    async def run(self, task: str) -> HandLoopResult:
        session = await self.agents.session("test-adder")
        reply = await session.model_call(task)
        outcome = await session.tool_call(reply.tool_calls[0])
        decision = await session.request_approval("publish", {"sum": outcome.content})
        return HandLoopResult(
            reply=reply.text,
            tool_result=outcome.content,
            decision=decision.decision,
            steps=2,
        )


@workflow.defn(name="NestedFanOutWorkflow")
class NestedFanOutWorkflow(AgentHost):
    """A fan-out of a gated transfer and an adder, as a child of this workflow."""

    @workflow.run
    async def run(self, task: str) -> ParallelResult:
        result: ParallelResult = await workflow.execute_child_workflow(
            "ParallelAgentsWorkflow",
            ParallelInput(
                branches=[
                    Branch(agent="test-gatekeeper", task=task),
                    Branch(agent="test-adder", task="add"),
                ]
            ),
            id=f"{workflow.info().workflow_id}/fan-out",
            result_type=ParallelResult,
        )
        return result
