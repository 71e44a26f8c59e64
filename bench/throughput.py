"""Per-step overhead and throughput, side by side: AgentWorkflow, a bare Temporal loop, a plain
asyncio loop and LangGraph with its SQLite checkpointer.

    python -m bench.throughput [--steps 10] [--concurrency 1,50,200,1000] [--rounds 2]

One *step* is what an agent step costs: a model call (instant) and one tool call (no-op).

- ``AgentWorkflow``: the ``bench-noop`` agent on the offline scripted model (one ``call_model``
  and one ``run_tool`` activity per step).
- ``bare Temporal``: a workflow running two no-op activities per step, the fairest baseline.
- ``asyncio``: the same loop with no durability at all (the floor).
- ``LangGraph``: a two-node graph (model -> tool -> model ...) with ``AsyncSqliteSaver``
  checkpointing every super-step (needs ``uv sync --group bench``).

Runs of the same configuration start together (``concurrency`` at once). Figures: the median
per-step latency (wall time of a run divided by its steps) and the throughput (steps completed
by all runs divided by the wall time of the batch). The ratio column compares AgentWorkflow with
the bare Temporal loop measured in the same round. Temporal runs use one in-memory dev server
and one worker per configuration in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, BareActivityLoop, bench_agent, noop_activity
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult

RunOnce = Callable[[int], Awaitable[None]]
"""Run one loop of ``steps`` steps to completion."""


@dataclass(frozen=True)
class Figures:
    latency_ms: float
    """Median over runs of (run wall time / steps)."""
    steps_per_s: float


async def batch(run_once: RunOnce, steps: int, concurrency: int) -> Figures:
    async def timed() -> float:
        started = time.perf_counter()
        await run_once(steps)
        return (time.perf_counter() - started) / steps * 1000

    started = time.perf_counter()
    latencies = await asyncio.gather(*(timed() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return Figures(statistics.median(latencies), steps * concurrency / wall)


# --- the loops -----------------------------------------------------------------------------------


async def _instant_model(step: int) -> int:
    await asyncio.sleep(0)
    return step + 1


async def _noop_tool(step: int) -> str:
    await asyncio.sleep(0)
    return "ok"


def asyncio_loop() -> RunOnce:
    async def run(steps: int) -> None:
        step = 0
        while step < steps:
            step = await _instant_model(step)
            await _noop_tool(step)

    return run


def bare_temporal(client: Client, queue: str) -> RunOnce:
    async def run(steps: int) -> None:
        await client.execute_workflow(
            BareActivityLoop.run, args=[steps, 2], id=f"bare-{uuid.uuid4()}", task_queue=queue
        )

    return run


def agent_workflow(client: Client, queue: str) -> RunOnce:
    async def run(steps: int) -> None:
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent=bench_agent.name, task="bench", max_steps=steps),
            id=f"agent-{uuid.uuid4()}",
            task_queue=queue,
            result_type=AgentResult,
        )
        assert result.steps == steps, result

    return run


async def langgraph_loop(db_path: Path) -> tuple[RunOnce, Callable[[], Awaitable[None]]]:
    from typing import TypedDict

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        step: int
        steps: int
        result: str

    async def model(state: State) -> dict[str, Any]:
        return {"step": await _instant_model(state["step"])}

    async def tool(state: State) -> dict[str, Any]:
        return {"result": await _noop_tool(state["step"])}

    graph = StateGraph(State)
    graph.add_node("model", model)
    graph.add_node("tool", tool)
    graph.add_edge(START, "model")
    graph.add_edge("model", "tool")
    graph.add_conditional_edges(
        "tool", lambda state: END if state["step"] >= state["steps"] else "model"
    )
    saver_context = AsyncSqliteSaver.from_conn_string(str(db_path))
    saver = await saver_context.__aenter__()
    app = graph.compile(checkpointer=saver)

    async def run(steps: int) -> None:
        config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": 10**6}
        final = await app.ainvoke({"step": 0, "steps": steps, "result": ""}, config)
        assert final["step"] == steps

    async def close() -> None:
        await saver_context.__aexit__(None, None, None)

    return run, close


# --- the benchmark -------------------------------------------------------------------------------


async def main(steps: int, levels: list[int], rounds: int) -> dict[str, Any]:
    registry = AgentRegistry([bench_agent], scripts=BENCH_SCRIPTS)
    env = await dev_server()
    results: dict[str, dict[int, list[Figures]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        async with env:
            client = env.client
            bare_queue, agent_queue = f"bare-{uuid.uuid4()}", f"agent-{uuid.uuid4()}"
            bare_worker = Worker(
                client,
                task_queue=bare_queue,
                workflows=[BareActivityLoop],
                activities=[noop_activity],
                max_concurrent_activities=1_000,
            )
            agent_loop_worker = agent_worker(client, agent_queue, registry, scratch)
            loops: dict[str, RunOnce] = {
                "asyncio": asyncio_loop(),
                "bare Temporal": bare_temporal(client, bare_queue),
                "AgentWorkflow": agent_workflow(client, agent_queue),
            }
            close_langgraph: Callable[[], Awaitable[None]] | None = None
            try:
                loops["LangGraph+SQLite"], close_langgraph = await langgraph_loop(
                    Path(scratch) / "langgraph.db"
                )
            except ImportError:
                print("LangGraph not installed (uv sync --group bench): skipped")
            async with bare_worker, agent_loop_worker:
                for run_once in loops.values():  # warm up
                    await batch(run_once, 2, 1)
                for level in levels:
                    for _ in range(rounds):
                        for name, run_once in loops.items():
                            figures = await batch(run_once, steps, level)
                            results.setdefault(name, {}).setdefault(level, []).append(figures)
                            print(
                                f"  {name:<18} x{level:<5} {figures.latency_ms:8.2f} ms/step "
                                f"{figures.steps_per_s:9.1f} steps/s",
                                flush=True,
                            )
            if close_langgraph is not None:
                await close_langgraph()

    def median(name: str, level: int, field: str) -> float:
        values: list[float] = [getattr(f, field) for f in results[name][level]]
        return statistics.median(values)

    print(f"\nper-step latency and throughput, {steps} steps a run, median of {rounds} rounds")
    header = f"{'loop':<18}{'runs':>6}{'ms/step':>10}{'steps/s':>10}{'vs bare':>9}"
    print(header)
    table: dict[str, Any] = {}
    for level in levels:
        bare_latency = median("bare Temporal", level, "latency_ms")
        bare_rate = median("bare Temporal", level, "steps_per_s")
        for name in results:
            latency = median(name, level, "latency_ms")
            rate = median(name, level, "steps_per_s")
            ratio = f"{latency / bare_latency:.2f}x" if name == "AgentWorkflow" else ""
            print(f"{name:<18}{level:>6}{latency:>10.2f}{rate:>10.1f}{ratio:>9}")
            table.setdefault(name, {})[level] = {"ms_per_step": latency, "steps_per_s": rate}
        table.setdefault("AgentWorkflow vs bare", {})[level] = {
            "latency_ratio": median("AgentWorkflow", level, "latency_ms") / bare_latency,
            "throughput_ratio": median("AgentWorkflow", level, "steps_per_s") / bare_rate,
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(
        json.dumps({"steps": steps, "rounds": rounds, "table": table}, indent=2)
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrency", default="1,50,200,1000")
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    asyncio.run(
        main(options.steps, [int(c) for c in options.concurrency.split(",")], options.rounds)
    )
