"""Per-step time of AgentWorkflow next to bare Temporal activity loops, in one run.

    python -m bench.step_overhead [--steps 40] [--rounds 3]

One AgentWorkflow step is one model activity (instant scripted model) plus one tool activity
(no-op), so the fair baseline is a bare loop of two no-op activities per step; the one-activity
loop is printed too. Runs alternate (bare, bare x2, agent, bare, ...) so machine noise hits all
of them alike; the table reports the median per configuration and ratios against the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.providers.scripted import ScriptedProvider
from agents import AgentRegistry
from bench.baselines import BareActivityLoop, bench_agent, noop_activity
from contracts import AgentInput, AgentResult
from runtime.devserver import find_temporal_cli
from worker import build_worker

RESULTS = Path(__file__).parent / "results"


async def time_bare(client: Client, queue: str, steps: int, per_step: int) -> float:
    started = time.perf_counter()
    await client.execute_workflow(
        BareActivityLoop.run, args=[steps, per_step], id=f"bare-{uuid.uuid4()}", task_queue=queue
    )
    return (time.perf_counter() - started) / steps * 1000


async def time_agent(client: Client, queue: str, steps: int) -> float:
    started = time.perf_counter()
    result = await client.execute_workflow(
        "AgentWorkflow",
        AgentInput(agent="bench-noop", task="bench", max_steps=steps),
        id=f"agent-{uuid.uuid4()}",
        task_queue=queue,
        result_type=AgentResult,
    )
    assert result.steps == steps, result
    return (time.perf_counter() - started) / steps * 1000


async def main(steps: int, rounds: int) -> dict[str, float]:
    registry = AgentRegistry([bench_agent])
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(), data_converter=pydantic_data_converter
    )
    async with env:
        client = env.client
        bare_queue, agent_queue = f"bare-{uuid.uuid4()}", f"agent-{uuid.uuid4()}"
        bare_worker = Worker(
            client, task_queue=bare_queue, workflows=[BareActivityLoop], activities=[noop_activity]
        )
        agent_worker = build_worker(
            client,
            agent_queue,
            registry=registry,
            providers={"scripted": ScriptedProvider(registry)},
        )
        samples: dict[str, list[float]] = {"bare x1": [], "bare x2": [], "AgentWorkflow": []}
        async with bare_worker, agent_worker:
            await time_bare(client, bare_queue, 3, 1)  # warm up both workers
            await time_agent(client, agent_queue, 3)
            for _ in range(rounds):
                samples["bare x1"].append(await time_bare(client, bare_queue, steps, 1))
                samples["bare x2"].append(await time_bare(client, bare_queue, steps, 2))
                samples["AgentWorkflow"].append(await time_agent(client, agent_queue, steps))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["bare x2"]
    print(f"\nsequential per-step time, {steps} steps x {rounds} rounds, in-memory dev server")
    print(f"{'loop':<16}{'ms/step':>10}{'vs bare x2':>12}   samples")
    for name, value in medians.items():
        shown = ", ".join(f"{v:.1f}" for v in samples[name])
        print(f"{name:<16}{value:>10.1f}{value / baseline:>11.2f}x   {shown}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "step_overhead.json").write_text(
        json.dumps({"steps": steps, "rounds": rounds, "samples_ms": samples}, indent=2)
    )
    return medians


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main(options.steps, options.rounds))
