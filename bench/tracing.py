"""What tracing costs per agent step: the same agent with tracing on and off, side by side.

    python -m bench.tracing [--steps 20] [--concurrency 1,20] [--rounds 3]

One step is a model call (instant, scripted) and one no-op tool call (the ``bench-noop`` agent
of ``bench.throughput``). Two workers in this process on one dev server: one on a plain client,
one on a client with the tracing plugins (``durable_agents.tracing``: the SDK's spans and the
GenAI ones), exporting over OTLP/HTTP protobuf through a ``BatchSpanProcessor`` to a receiver on
127.0.0.1 that decodes every request (``tests.otlp_receiver``, in this process too: its CPU is
counted against tracing). Rounds alternate off and on so drift hits both. Figures per setting
and concurrency: the median per-step latency (run wall time / steps) and the throughput (steps
of the batch / its wall time), the ratio on / off, and spans per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Client
from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider
from temporalio.contrib.pydantic import pydantic_data_converter

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, bench_agent
from bench.throughput import Figures, agent_workflow, batch
from durable_agents.agents import AgentRegistry
from durable_agents.tracing import TracingSettings, tracer_provider, tracing_plugins
from tests.otlp_receiver import OtlpReceiver

SETTINGS = ("off", "on")


async def main(steps: int, levels: list[int], rounds: int) -> dict[str, Any]:
    registry = AgentRegistry([bench_agent], scripts=BENCH_SCRIPTS)
    settings = TracingSettings(enabled=True)
    env = await dev_server()
    with OtlpReceiver() as receiver, tempfile.TemporaryDirectory() as scratch:
        exporter = OTLPSpanExporter(endpoint=receiver.traces_url)
        current = trace.get_tracer_provider()
        if isinstance(current, ReplaySafeTracerProvider):  # one per process: reuse it
            provider = current
            provider.add_span_processor(BatchSpanProcessor(exporter))
        else:
            provider = tracer_provider(settings, exporter)
            trace.set_tracer_provider(provider)
        target = env.client.service_client.config.target_host
        clients = {
            "off": env.client,
            "on": await Client.connect(
                target,
                data_converter=pydantic_data_converter,
                plugins=tracing_plugins(settings),
            ),
        }
        figures: dict[str, dict[int, list[Figures]]] = {
            s: {n: [] for n in levels} for s in SETTINGS
        }
        spans_per_run: dict[int, float] = {}
        async with (
            agent_worker(clients["off"], "bench-tracing-off", registry, scratch),
            agent_worker(clients["on"], "bench-tracing-on", registry, scratch),
        ):
            for setting in SETTINGS:  # warm up both
                await agent_workflow(clients[setting], f"bench-tracing-{setting}")(steps)
            provider.force_flush()
            for level in levels:
                for _ in range(rounds):
                    for setting in SETTINGS:
                        before = len(receiver.snapshot())
                        run = agent_workflow(clients[setting], f"bench-tracing-{setting}")
                        figures[setting][level].append(await batch(run, steps, level))
                        if setting == "on":
                            provider.force_flush()
                            spans_per_run[level] = (len(receiver.snapshot()) - before) / level
        provider.force_flush()
    await env.shutdown()

    table: dict[str, Any] = {"steps": steps, "rounds": rounds, "levels": {}}
    print(f"\ntracing off vs on, {steps} steps a run, median of {rounds} rounds")
    print(
        f"{'runs at once':>13}{'off ms/step':>13}{'on ms/step':>12}{'latency':>9}"
        f"{'off steps/s':>13}{'on steps/s':>12}{'thruput':>9}{'spans/run':>11}"
    )
    for level in levels:
        row: dict[str, Any] = {}
        for setting in SETTINGS:
            row[setting] = {
                "ms_per_step": statistics.median(f.latency_ms for f in figures[setting][level]),
                "steps_per_s": statistics.median(f.steps_per_s for f in figures[setting][level]),
            }
        row["latency_ratio"] = row["on"]["ms_per_step"] / row["off"]["ms_per_step"]
        row["throughput_ratio"] = row["on"]["steps_per_s"] / row["off"]["steps_per_s"]
        row["spans_per_run"] = spans_per_run[level]
        table["levels"][level] = row
        print(
            f"{level:>13}{row['off']['ms_per_step']:>13.1f}{row['on']['ms_per_step']:>12.1f}"
            f"{row['latency_ratio']:>8.2f}x{row['off']['steps_per_s']:>13.1f}"
            f"{row['on']['steps_per_s']:>12.1f}{row['throughput_ratio']:>8.2f}x"
            f"{row['spans_per_run']:>11.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tracing.json").write_text(json.dumps(table, indent=2))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--concurrency", default="1,20")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",")]
    asyncio.run(main(args.steps, levels, args.rounds))
