"""Peers for ``bench.throughput``: the same agent loop on other frameworks' Temporal integrations.

- ``pydantic-ai-temporal``: pydantic-ai's durable execution (``bench/peer_pydantic_ai.py``).
- ``openai-agents-temporal``: the OpenAI Agents SDK on Temporal (``bench/peer_openai_agents.py``).

Each does what a ``soak`` run of ``steps=N`` does: a fake model (the framework's own test model)
asks for one no-op tool call a step, each model call and each tool call an activity, and answers
after N tool results (N+1 model calls, N tool calls). Each peer gets its own client (its plugin
sets its data converter) and its own worker on its own task queue, on the dev server and in the
process the other loops use, with the same activity slots as ours; ``bench.throughput`` measures
them one at a time in the same rounds as the others. The versions are pinned in the bench
dependency group; without it the peers are skipped.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from importlib.metadata import version

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker

from worker import MAX_CONCURRENT_ACTIVITIES

RunOnce = Callable[[int], Awaitable[None]]
"""Run one loop of ``steps`` steps to completion."""

PYDANTIC_AI = "pydantic-ai-temporal"
OPENAI_AGENTS = "openai-agents-temporal"

DIFFERENCES = {
    PYDANTIC_AI: (
        "pydantic-ai-slim {pydantic-ai-slim}: Agent + TemporalDurability, FunctionModel, async "
        "no-op tool; PydanticAIPayloadConverter; N+1 model and N tool activities a run"
    ),
    OPENAI_AGENTS: (
        "openai-agents {openai-agents} + temporalio-openai-agents {temporalio-openai-agents}: "
        "Runner.run, the plugin's TestModel scripted from its input, async no-op tool by "
        "activity_as_tool; OpenAIPayloadConverter, SDK tracing off (no exporter); "
        "N+1 model and N tool activities a run"
    ),
}
"""What differs from ours, printed with the table (versions filled in from the installed ones)."""


@dataclass
class LastRun:
    """The id of the latest workflow a loop started, read afterwards for its history's shape."""

    workflow_id: str = ""


def _peer_client(client: Client, plugin: SimplePlugin) -> Client:
    """``client``'s connection with the peer's plugin, which sets its own data converter."""
    config = client.config()
    config["data_converter"] = DataConverter.default
    config["plugins"] = [plugin]
    return Client(**config)


async def start_peers(
    client: Client, stack: AsyncExitStack, last: dict[str, LastRun]
) -> dict[str, RunOnce]:
    """Start a worker for each installed peer (stopped with ``stack``); return their loops.

    A peer whose packages are missing is reported and skipped.
    """
    loops: dict[str, RunOnce] = {}
    try:
        from bench.peer_pydantic_ai import PydanticAIPeer, PydanticAIPlugin

        loops[PYDANTIC_AI] = await _serve(
            _peer_client(client, PydanticAIPlugin()),
            PydanticAIPeer,
            [],
            stack,
            last.setdefault(PYDANTIC_AI, LastRun()),
        )
    except ImportError as err:
        print(f"{PYDANTIC_AI} skipped ({err}; uv sync --group bench)")
    try:
        from bench.peer_openai_agents import OpenAIAgentsPeer, noop, plugin

        loops[OPENAI_AGENTS] = await _serve(
            _peer_client(client, plugin()),
            OpenAIAgentsPeer,
            [noop],
            stack,
            last.setdefault(OPENAI_AGENTS, LastRun()),
        )
    except ImportError as err:
        print(f"{OPENAI_AGENTS} skipped ({err}; uv sync --group bench)")
    return loops


async def _serve(
    client: Client,
    workflow_class: type,
    activities: list[Callable[..., object]],
    stack: AsyncExitStack,
    last: LastRun,
) -> RunOnce:
    queue = f"peer-{uuid.uuid4()}"
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[workflow_class],
        activities=activities,
        max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
    )
    await stack.enter_async_context(worker)
    name: str = getattr(workflow_class, "__temporal_workflow_definition").name

    async def run(steps: int) -> None:
        workflow_id = f"{name}-{uuid.uuid4()}"
        last.workflow_id = workflow_id
        output = await client.execute_workflow(
            name, steps, id=workflow_id, task_queue=queue, result_type=str
        )
        assert output == f"done: {steps} tool steps", output

    return run


def differences(names: list[str]) -> list[str]:
    """The notes of ``names`` that are peers, with the installed versions."""
    versions = {}
    for package in ("pydantic-ai-slim", "openai-agents", "temporalio-openai-agents"):
        try:
            versions[package] = version(package)
        except Exception:
            versions[package] = "?"
    return [
        f"{name}: {DIFFERENCES[name].format_map(versions)}" for name in names if name in DIFFERENCES
    ]


@dataclass(frozen=True)
class HistoryShape:
    activities: int
    local_activities: int
    """Markers recorded: one per local activity (and per ``workflow.patched`` id)."""
    workflow_tasks: int
    events: int


async def history_shape(client: Client, workflow_id: str) -> HistoryShape:
    """How many activities, local activities, workflow tasks and events one run's history holds."""
    counts: Counter[int] = Counter()
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        counts[event.event_type] += 1
    return HistoryShape(
        activities=counts[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        local_activities=counts[EventType.EVENT_TYPE_MARKER_RECORDED],
        workflow_tasks=counts[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        events=sum(counts.values()),
    )
