"""A deliberately incompatible build of ``AgentWorkflow``, for tests/test_replay_check.py: same
type name, different first command (a timer where the real one schedules ``load_agent``), as a
careless edit of the agent loop would be."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from durable_agents.contracts import AgentInput


@workflow.defn(name="AgentWorkflow")
class IncompatibleAgentWorkflow:
    @workflow.run
    async def run(self, agent_input: AgentInput) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return agent_input.task
