"""Endurance: one ``soak`` run of many steps, with worker memory sampled along the way.

    python -m bench.soak_endurance [--steps 10000] [--bytes 1000]

The worker runs in this process (the default converter, local payload store in a scratch
directory); its resident set size (VmRSS) is sampled at the start, every tenth of the run and at
the end, next to the run's step count (from the ``status`` query). Also printed: the runs in the
continue-as-new chain and the history events of each. Absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.client import Client

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.runtime.converter import data_converter_from_env
from examples.soak import SOAK_SCRIPTS, soak


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(steps: int, size: int) -> dict[str, object]:
    registry = AgentRegistry([soak], scripts=SOAK_SCRIPTS)
    env = await dev_server()
    samples: list[tuple[int, float, float]] = []  # (step, seconds, RSS MiB)
    with tempfile.TemporaryDirectory() as scratch:
        async with env:
            client = await Client.connect(
                env.client.service_client.config.target_host,
                data_converter=data_converter_from_env(
                    {"PAYLOAD_STORE": "local", "PAYLOAD_STORE_DIR": f"{scratch}/payloads"}
                ),
            )
            queue = f"soak-{uuid.uuid4()}"
            worker = agent_worker(client, queue, registry, scratch)
            async with worker:
                started = time.perf_counter()
                samples.append((0, 0.0, rss_mib()))
                handle = await client.start_workflow(
                    "AgentWorkflow",
                    AgentInput(agent=soak.name, task=f"steps={steps} bytes={size}"),
                    id=f"soak-{uuid.uuid4()}",
                    task_queue=queue,
                    result_type=AgentResult,
                )
                latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
                result_task = asyncio.create_task(latest.result())
                next_sample = steps // 10
                while not result_task.done():
                    await asyncio.sleep(1)
                    try:
                        view = await latest.query("status", result_type=AgentStatusView)
                    except Exception:  # between runs of the chain: ask again next second
                        continue
                    if view.steps >= next_sample:
                        samples.append((view.steps, time.perf_counter() - started, rss_mib()))
                        print(f"step {view.steps:>6}  run {view.runs:>3}  RSS {rss_mib():.0f} MiB")
                        next_sample += steps // 10
                result = await result_task
                samples.append((result.steps, time.perf_counter() - started, rss_mib()))
                lengths = []
                async for execution in client.list_workflows(f"WorkflowId = '{handle.id}'"):
                    history = await client.get_workflow_handle(
                        handle.id, run_id=execution.run_id
                    ).fetch_history()
                    lengths.append(len(history.events))
    elapsed = samples[-1][1]
    report: dict[str, object] = {
        "steps": result.steps,
        "status": result.status,
        "runs": result.runs,
        "events_per_run": lengths[::-1],
        "seconds": elapsed,
        "ms_per_step": elapsed / result.steps * 1000,
        "rss_mib": [(step, round(rss, 1)) for step, _, rss in samples],
    }
    print(
        f"\nsoak {result.steps} steps ({result.status}) in {elapsed:.0f} s "
        f"({report['ms_per_step']:.1f} ms/step), {result.runs} runs, "
        f"events per run: min {min(lengths)} max {max(lengths)}"
    )
    print("worker RSS (MiB) at step: " + ", ".join(f"{s}: {r:.0f}" for s, _, r in samples))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak_endurance.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--bytes", type=int, default=1_000)
    options = parser.parse_args()
    asyncio.run(main(options.steps, options.bytes))
