"""Per-step overhead and throughput, side by side: AgentWorkflow, a bare Temporal loop, a plain
asyncio loop, LangGraph with its SQLite checkpointer, and the peers on Temporal (pydantic-ai's
durable execution, the OpenAI Agents SDK's Temporal plugin; ``bench/peers.py``).

    python -m bench.throughput [--steps 10] [--concurrency 1,50,200,1000] [--rounds 2]
                               [--peers-up-to 200]

One *step* is what an agent step costs: a model call (instant) and one tool call (no-op).

- ``AgentWorkflow``: the ``bench-noop`` agent on the offline scripted model (one ``call_model``
  and one ``run_tool`` activity per step), stopped by ``max_steps``: N model and N tool calls.
- ``AgentWorkflow soak``: the ``soak`` agent (``steps=N``): N tool steps, then the model answers,
  so N+1 model calls; the same work as the peers.
- ``bare Temporal``: a workflow running two no-op activities per step, the fairest baseline.
- ``asyncio``: the same loop with no durability at all (the floor).
- ``LangGraph``: a two-node graph (model -> tool -> model ...) with ``AsyncSqliteSaver``
  checkpointing every super-step (in process, no server).
- ``pydantic-ai-temporal``, ``openai-agents-temporal``: see ``bench/peers.py``.

LangGraph and the peers need the bench group (``uv sync --group bench``); without it they are
skipped. The soak row and the peers run at the levels up to ``--peers-up-to``.

Runs of the same configuration start together (``concurrency`` at once); the loops take turns,
one batch at a time. Figures: the median per-step latency (wall time of a run divided by its
steps) and the throughput (steps completed by all runs divided by the wall time of the batch).
The ``vs bare`` ratios divide each loop's figure by the bare Temporal loop's from the same round
(median over rounds). Temporal runs use one in-memory dev server and one worker per loop in this
process, each with ``worker.MAX_CONCURRENT_ACTIVITIES`` activity slots and the SDK's other
defaults. The table ends with each Temporal loop's history per step (activities, workflow tasks,
events), from one of its runs.
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
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, BareActivityLoop, bench_agent, noop_activity
from bench.peers import HistoryShape, LastRun, differences, history_shape, start_peers
from durable_agents.agents import Agent, AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.testing import ScriptBook
from examples.soak import SOAK_SCRIPTS, soak, soak_chunk
from worker import MAX_CONCURRENT_ACTIVITIES

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


def bare_temporal(client: Client, queue: str, last: LastRun | None = None) -> RunOnce:
    last = last or LastRun()

    async def run(steps: int) -> None:
        last.workflow_id = f"bare-{uuid.uuid4()}"
        await client.execute_workflow(
            BareActivityLoop.run, args=[steps, 2], id=last.workflow_id, task_queue=queue
        )

    return run


def agent_workflow(client: Client, queue: str, last: LastRun | None = None) -> RunOnce:
    last = last or LastRun()

    async def run(steps: int) -> None:
        last.workflow_id = f"agent-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent=bench_agent.name, task="bench", max_steps=steps),
            id=last.workflow_id,
            task_queue=queue,
            result_type=AgentResult,
        )
        assert result.steps == steps, result

    return run


soak_tool_activity = replace(
    soak,
    name="soak-tool-activity",
    tools=[replace(soak_chunk, local=False)],
)
"""``soak`` with its read-only tool as a regular activity (``soak`` runs it as a local one)."""


def soak_workflow(
    client: Client, queue: str, last: LastRun | None = None, agent: Agent = soak
) -> RunOnce:
    """The ``soak`` agent: N tool steps, then a final answer (N+1 model calls)."""
    last = last or LastRun()

    async def run(steps: int) -> None:
        last.workflow_id = f"{agent.name}-{uuid.uuid4()}"
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent=agent.name, task=f"steps={steps} bytes=2"),
            id=last.workflow_id,
            task_queue=queue,
            result_type=AgentResult,
        )
        assert result.status == "completed" and result.steps == steps + 1, result

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

BARE = "bare Temporal"
SOAK = "AgentWorkflow soak"
SOAK_TOOL_ACTIVITY = "soak, tool as activity"
PEER_ROWS = (
    "AgentWorkflow",
    SOAK,
    SOAK_TOOL_ACTIVITY,
    "pydantic-ai-temporal",
    "openai-agents-temporal",
    "LangGraph+SQLite",
    "asyncio",
)
"""The rows of the side-by-side table, in order, after the bare loop."""
NOTES = {
    BARE: "2N no-op activities a run (no model, no tool, no state)",
    "AgentWorkflow": (
        "bench-noop agent stopped by max_steps: N model activities, N calls of its sync "
        "read-only tool as local activities (our default for short read-only tools)"
    ),
    SOAK: "soak agent as shipped: N+1 model activities, N tool calls as local activities",
    SOAK_TOOL_ACTIVITY: (
        "soak, its tool as a regular activity: N+1 model and N tool activities (the peers' shape)"
    ),
    "LangGraph+SQLite": "in process, no Temporal: AsyncSqliteSaver checkpoint every super-step",
}
"""What differs between the loops, printed under the table (the peers' notes are in peers.py)."""


async def main(
    steps: int, levels: list[int], rounds: int, peers_up_to: int = 200
) -> dict[str, Any]:
    scripts = ScriptBook({**BENCH_SCRIPTS, **SOAK_SCRIPTS})
    scripts.add(soak_tool_activity, SOAK_SCRIPTS[soak.name])
    registry = AgentRegistry([bench_agent, soak, soak_tool_activity], scripts=scripts)
    env = await dev_server()
    results: dict[str, dict[int, list[Figures]]] = {}
    last: dict[str, LastRun] = {name: LastRun() for name in (BARE, *PEER_ROWS[:3])}
    shapes: dict[str, HistoryShape] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        async with env, AsyncExitStack() as stack:
            client = env.client
            bare_queue, agent_queue = f"bare-{uuid.uuid4()}", f"agent-{uuid.uuid4()}"
            bare_worker = Worker(
                client,
                task_queue=bare_queue,
                workflows=[BareActivityLoop],
                activities=[noop_activity],
                max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
                # bench.baselines imports durable_agents outside imports_passed_through: without
                # this the sandbox would import it again for every run (about 0.1 s a run
                # here), a cost AgentWorkflow's passed-through imports do not pay.
                workflow_runner=SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_modules(
                        "durable_agents", "examples"
                    )
                ),
            )
            await stack.enter_async_context(bare_worker)
            await stack.enter_async_context(agent_worker(client, agent_queue, registry, scratch))
            loops: dict[str, RunOnce] = {
                "asyncio": asyncio_loop(),
                BARE: bare_temporal(client, bare_queue, last[BARE]),
                "AgentWorkflow": agent_workflow(client, agent_queue, last["AgentWorkflow"]),
            }
            peers: dict[str, RunOnce] = {
                SOAK: soak_workflow(client, agent_queue, last[SOAK]),
                SOAK_TOOL_ACTIVITY: soak_workflow(
                    client, agent_queue, last[SOAK_TOOL_ACTIVITY], soak_tool_activity
                ),
            }
            try:
                loops["LangGraph+SQLite"], close_langgraph = await langgraph_loop(
                    Path(scratch) / "langgraph.db"
                )
                stack.push_async_callback(close_langgraph)
            except ImportError:
                print("LangGraph not installed (uv sync --group bench): skipped")
            peers.update(await start_peers(client, stack, last))
            running = {**loops, **peers}
            notes = [
                f"{name}: {NOTES[name]}"
                for name in (BARE, *PEER_ROWS)
                if name in NOTES and name in running
            ]
            notes += differences(list(peers))
            for run_once in (*loops.values(), *peers.values()):  # warm up
                await batch(run_once, 2, 1)
            for level in levels:
                at_level = {**loops, **(peers if level <= peers_up_to else {})}
                for _ in range(rounds):
                    for name, run_once in at_level.items():
                        figures = await batch(run_once, steps, level)
                        results.setdefault(name, {}).setdefault(level, []).append(figures)
                        print(
                            f"  {name:<22} x{level:<5} {figures.latency_ms:8.2f} ms/step "
                            f"{figures.steps_per_s:9.1f} steps/s",
                            flush=True,
                        )
            for name, run in last.items():
                if run.workflow_id:
                    shapes[name] = await history_shape(client, run.workflow_id)

    table = summarize(results, levels)
    print(f"\nper-step latency and throughput, {steps} steps a run, median of {rounds} rounds")
    print(f"{'loop':<24}{'runs':>6}{'ms/step':>10}{'vs bare':>9}{'steps/s':>10}{'vs bare':>9}")
    for level in levels:
        for name in results:
            if level in table[name]:
                row = table[name][level]
                print(
                    f"{name:<24}{level:>6}{row['ms_per_step']:>10.2f}"
                    f"{row['latency_vs_bare']:>8.2f}x{row['steps_per_s']:>10.1f}"
                    f"{row['throughput_vs_bare']:>8.2f}x"
                )
    print()
    compared = side_by_side(table, shapes, steps, [n for n in levels if n <= peers_up_to])
    for line in compared:
        print(line)
    print("what each loop does (all Temporal loops: one dev server, one worker each, in turn):")
    for line in notes:
        print(f"  {line}")
    report = {
        "steps": steps,
        "rounds": rounds,
        "table": table,
        "history_per_step": {
            name: {k: v / steps for k, v in asdict(shape).items()} for name, shape in shapes.items()
        },
        "differences": notes,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(report, indent=2))
    table["history_per_step"] = report["history_per_step"]
    table["differences"] = notes
    table["side_by_side"] = compared
    return table


def summarize(results: dict[str, dict[int, list[Figures]]], levels: list[int]) -> dict[str, Any]:
    """Medians over rounds, and each round's ratio to the bare loop of that round (median)."""
    table: dict[str, Any] = {}
    for name, by_level in results.items():
        for level, rounds in by_level.items():
            bare = results[BARE][level]
            table.setdefault(name, {})[level] = {
                "ms_per_step": statistics.median(f.latency_ms for f in rounds),
                "steps_per_s": statistics.median(f.steps_per_s for f in rounds),
                "latency_vs_bare": statistics.median(
                    f.latency_ms / b.latency_ms for f, b in zip(rounds, bare, strict=True)
                ),
                "throughput_vs_bare": statistics.median(
                    f.steps_per_s / b.steps_per_s for f, b in zip(rounds, bare, strict=True)
                ),
            }
    for level in levels:
        if "AgentWorkflow" in table and level in table["AgentWorkflow"]:
            row = table["AgentWorkflow"][level]
            table.setdefault("AgentWorkflow vs bare", {})[level] = {
                "latency_ratio": row["latency_vs_bare"],
                "throughput_ratio": row["throughput_vs_bare"],
            }
    return table


def side_by_side(
    table: dict[str, Any], shapes: dict[str, HistoryShape], steps: int, levels: list[int]
) -> list[str]:
    """The peers table: ms/step at the first level (1 run), steps/s at the next two (50 and
    200 runs at once), each with its ratio to the bare loop."""
    latency_level, *rate_levels = levels
    rate_levels = rate_levels[:2]

    def cell(name: str, level: int, field: str, ratio: str) -> str:
        row = table.get(name, {}).get(level)
        if row is None:
            return f"{'-':>19}"
        return f"{row[field]:>10.1f}{row[ratio]:>8.2f}x"

    def shape(name: str) -> str:
        found = shapes.get(name)
        if found is None:
            return ""
        return (
            f"{found.activities / steps:>6.1f}{found.local_activities / steps:>6.1f}"
            f"{found.workflow_tasks / steps:>6.1f}{found.events / steps:>7.1f}"
        )

    lines = [
        "side by side (ratio: the loop / bare Temporal in the same round; history per step: "
        "activities, markers (local activities), workflow tasks, events)",
        f"{'loop':<24}{f'ms/step x{latency_level}':>19}"
        + "".join(f"{f'steps/s x{level}':>19}" for level in rate_levels)
        + f"{'act':>6}{'local':>6}{'wft':>6}{'events':>7}",
    ]
    for name in (BARE, *PEER_ROWS):
        if name in table:
            lines.append(
                f"{name:<24}{cell(name, latency_level, 'ms_per_step', 'latency_vs_bare')}"
                + "".join(
                    cell(name, level, "steps_per_s", "throughput_vs_bare") for level in rate_levels
                )
                + shape(name)
            )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrency", default="1,50,200,1000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peers-up-to", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(
        main(
            options.steps,
            [int(c) for c in options.concurrency.split(",")],
            options.rounds,
            options.peers_up_to,
        )
    )
