"""Many agents at once with a slow model: wall time against the ideal.

    python -m bench.fanout [--agents 1000] [--steps 3] [--latency 1.0]

``--agents`` runs of the ``bench-noop`` agent start together; every model call takes
``--latency`` seconds (the scripted model's simulated latency), so with unlimited parallelism a
run of ``--steps`` model calls takes ``steps x latency`` and so does the whole batch: that is
the ideal. The ratio wall / ideal is what the orchestration costs at this scale (one worker in
this process, one in-memory dev server). The batch runs twice, side by side: with the worker's
activity slots at the SDK default (100) and at ours (``worker.MAX_CONCURRENT_ACTIVITIES``).

    python -m bench.fanout --workers 1,2,4 [--agents 500] [--steps 3] [--latency 1.0]

With ``--workers``, the same batch of ``soak`` runs (stopped after ``--steps`` steps by
``max_steps``: the same model and tool calls as ``bench-noop``) goes to real ``python worker.py``
processes, 1, 2 and 4 of them in turn on a fresh task queue each, against one in-memory dev
server of the benchmark's own (``bench/fanout_workers.py``). Figures per worker count: wall time,
agents/s, the ratio to the ideal, the CPU time of the workers, the dev server and the driver over
the batch, and from every run's history what a starved worker leaves behind: heartbeat timeouts
(model calls heartbeat every second), other activity retries, workflow task timeouts, and the
p50/p99 of a model call from scheduled to completed (the ideal is the model's latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from typing import Any

from temporalio.testing import WorkflowEnvironment

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, bench_agent
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from worker import MAX_CONCURRENT_ACTIVITIES

SDK_DEFAULT_ACTIVITY_SLOTS = 100


async def one_batch(
    env: WorkflowEnvironment, scratch: str, agents: int, steps: int, latency: float, slots: int
) -> float:
    registry = AgentRegistry([bench_agent], scripts=BENCH_SCRIPTS)
    queue = f"fanout-{uuid.uuid4()}"
    worker = agent_worker(
        env.client, queue, registry, scratch, model_latency=latency, max_concurrent_activities=slots
    )
    async with worker:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                env.client.execute_workflow(
                    "AgentWorkflow",
                    AgentInput(agent=bench_agent.name, task="bench", max_steps=steps),
                    id=f"fanout-{i}-{uuid.uuid4()}",
                    task_queue=queue,
                    result_type=AgentResult,
                )
                for i in range(agents)
            )
        )
        wall = time.perf_counter() - started
    assert all(r.steps == steps for r in results)
    return wall


async def main(agents: int, steps: int, latency: float) -> dict[str, Any]:
    env = await dev_server()
    ideal = steps * latency
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        async with env:
            for slots in (SDK_DEFAULT_ACTIVITY_SLOTS, MAX_CONCURRENT_ACTIVITIES):
                walls[slots] = await one_batch(env, scratch, agents, steps, latency, slots)
    tuned = walls[MAX_CONCURRENT_ACTIVITIES]
    report = {
        "agents": agents,
        "steps": steps,
        "model_latency_s": latency,
        "ideal_s": ideal,
        "wall_s": tuned,
        "wall_over_ideal": tuned / ideal,
        "wall_s_by_activity_slots": walls,
    }
    print(f"\n{agents} agents x {steps} model calls of {latency:.1f} s (ideal {ideal:.1f} s):")
    for slots, wall in walls.items():
        print(f"  activity slots {slots:>5}: wall {wall:6.1f} s, {wall / ideal:5.2f}x the ideal")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fanout.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument(
        "--workers", help="worker process counts, e.g. 1,2,4 (default: one in-process worker)"
    )
    options = parser.parse_args()
    if options.workers:
        from bench.fanout_workers import main as main_workers

        counts = [int(n) for n in options.workers.split(",")]
        asyncio.run(main_workers(options.agents, options.steps, options.latency, counts))
    else:
        asyncio.run(main(options.agents, options.steps, options.latency))
