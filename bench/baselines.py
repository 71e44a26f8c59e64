"""Baselines for the step-overhead benchmark: bare Temporal loops and a no-op bench agent."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook, ScriptedCall, ScriptedReply, sequence
from durable_agents.tools import ToolContext, tool


@activity.defn(name="bench_noop")
async def noop_activity(step: int) -> int:
    return step


@workflow.defn(name="BareActivityLoop")
class BareActivityLoop:
    """``steps`` iterations of ``activities_per_step`` sequential no-op activities."""

    @workflow.run
    async def run(self, steps: int, activities_per_step: int) -> int:
        for step in range(steps):
            for _ in range(activities_per_step):
                await workflow.execute_activity(
                    noop_activity, step, start_to_close_timeout=timedelta(seconds=30)
                )
        return steps


class NoArgs(BaseModel):
    pass


@tool(effect="read_only", timeout=timedelta(seconds=5))  # short: runs as a local activity
def bench_tool(args: NoArgs, ctx: ToolContext) -> str:
    """Does nothing."""
    return "ok"


bench_agent = Agent(
    name="bench-noop",
    description="Calls a no-op tool every step until max_steps (benchmark only).",
    system_prompt="Benchmark.",
    tools=[bench_tool],
    max_steps=1_000,
)


@tool(effect="idempotent")
def bench_gated_tool(args: NoArgs, ctx: ToolContext) -> str:
    """Does nothing, once a human has approved it."""
    return "ok"


gated_bench_agent = Agent(
    name="bench-gated",
    description="One approval-gated no-op tool call, then done (benchmark only).",
    system_prompt="Benchmark.",
    tools=[bench_gated_tool],
    max_steps=3,
    policy={"bench_gated_tool": "require_approval"},
)


BENCH_SCRIPTS = ScriptBook(
    {
        bench_agent.name: sequence(ScriptedReply(calls=[ScriptedCall("bench_tool")])),
        gated_bench_agent.name: sequence(
            ScriptedReply(calls=[ScriptedCall("bench_gated_tool")]), ScriptedReply("done")
        ),
    }
)
"""The bench agents on the offline ``scripted`` model."""
