"""What ``ParallelAgentsWorkflow`` costs over running its slowest branch alone.

    python -m bench.pattern_fanout [--rounds 3] [--latency 0.5] [--wide 100]

Branches run the ``bench-steps`` agent, which makes ``steps=N`` model calls (each taking
``--latency`` seconds on the scripted model) with a no-op tool call between them. Measured side
by side in each round, on one worker and one in-memory dev server:

- *slowest alone*: one ``AgentWorkflow`` of 4 steps (the slowest of the fan-out's branches);
- *4 branches*: a fan-out of 1, 2, 3 and 4 steps (its wall time cannot beat the slowest);
- *wide*: ``--wide`` branches of 4 steps each.

The fan-out overhead is wall(4 branches) - wall(slowest alone), and the ratio of the two; the
wide fan-out is compared with the same slowest-alone time. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
import uuid
from typing import Any

from temporalio.client import Client

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, bench_tool
from durable_agents.agents import Agent, AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.contracts.patterns import ParallelResult
from durable_agents.testing import ScriptedCall, ScriptedReply, ScriptView

SLOWEST = 4

steps_agent = Agent(
    name="bench-steps",
    description="Makes 'steps=N' model calls, a no-op tool call between them (benchmark only).",
    system_prompt="Benchmark.",
    tools=(bench_tool,),
    max_steps=1_000,
)


def _steps(view: ScriptView) -> ScriptedReply:
    found = re.search(r"steps=(\d+)", view.task)
    wanted = int(found.group(1)) if found else 1
    if view.turn + 1 < wanted:
        return ScriptedReply(calls=[ScriptedCall("bench_tool")])
    return ScriptedReply(text=f"done in {wanted} steps")


async def _alone(client: Client, queue: str) -> float:
    started = time.perf_counter()
    result = await client.execute_workflow(
        "AgentWorkflow",
        AgentInput(agent=steps_agent.name, task=f"steps={SLOWEST}"),
        id=f"alone-{uuid.uuid4()}",
        task_queue=queue,
        result_type=AgentResult,
    )
    assert result.steps == SLOWEST, result
    return time.perf_counter() - started


async def _fan_out(client: Client, queue: str, steps: list[int]) -> float:
    started = time.perf_counter()
    result = await client.execute_workflow(
        "ParallelAgentsWorkflow",
        {"branches": [{"agent": steps_agent.name, "task": f"steps={n}"} for n in steps]},
        id=f"fan-{len(steps)}-{uuid.uuid4()}",
        task_queue=queue,
        result_type=ParallelResult,
    )
    assert result.succeeded == len(steps), result.error
    return time.perf_counter() - started


async def main(rounds: int, latency: float, wide: int) -> dict[str, Any]:
    registry = AgentRegistry([steps_agent], scripts=BENCH_SCRIPTS)
    registry.scripts.add(steps_agent, _steps)
    env = await dev_server()
    walls: dict[str, list[float]] = {"alone": [], "four": [], "wide": []}
    with tempfile.TemporaryDirectory() as scratch:
        async with env:
            queue = f"pattern-fanout-{uuid.uuid4()}"
            async with agent_worker(env.client, queue, registry, scratch, model_latency=latency):
                await _alone(env.client, queue)  # warm up: first workflow tasks, imports
                for _ in range(rounds):
                    walls["alone"].append(await _alone(env.client, queue))
                    walls["four"].append(await _fan_out(env.client, queue, [1, 2, 3, SLOWEST]))
                    walls["wide"].append(await _fan_out(env.client, queue, [SLOWEST] * wide))
    alone, four, wide_wall = (statistics.median(walls[k]) for k in ("alone", "four", "wide"))
    report = {
        "rounds": rounds,
        "model_latency_s": latency,
        "slowest_branch_steps": SLOWEST,
        "slowest_alone_s": alone,
        "four_branches_s": four,
        "four_overhead_s": four - alone,
        "four_over_alone": four / alone,
        "wide_branches": wide,
        "wide_s": wide_wall,
        "wide_over_alone": wide_wall / alone,
        "walls": walls,
    }
    print(
        f"\nParallelAgentsWorkflow fan-out, {SLOWEST}-step slowest branch, model calls of "
        f"{latency:.2f} s (median of {rounds} rounds, side by side):\n"
        f"  slowest branch alone (AgentWorkflow): {alone:6.2f} s\n"
        f"  4 branches (1-4 steps):               {four:6.2f} s  "
        f"overhead {four - alone:+.2f} s, {four / alone:.2f}x\n"
        f"  {wide} branches ({SLOWEST} steps each):         {wide_wall:6.2f} s  "
        f"{wide_wall / alone:.2f}x the slowest alone"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pattern_fanout.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--wide", type=int, default=100)
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.latency, options.wide))
