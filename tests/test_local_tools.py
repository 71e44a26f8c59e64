"""Local tools (``Tool.local``): short read-only tools run as local activities, inside the
workflow task that asked for them; everything else stays a regular activity.

What is checked: which tools default to local; a local call's result reaches the model and the
history records it as a marker, not an activity; a gated call stays a regular activity; a
kill -9 of the worker while a local tool runs re-runs that tool on the next worker and repeats
no side effect; cancelling the run during a local call ends it ``cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from durable_agents.agents import AgentRegistry
from durable_agents.cli.history import read_run
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runner import policies
from durable_agents.tools import ToolContext, tool
from tests.conftest import running_worker
from tests.local_tool_agents import (
    LOCAL_TOOL_AGENTS,
    LOCAL_TOOL_SCRIPTS,
    LONG_LOOKUP_CANCELLED,
    LONG_LOOKUP_STARTED,
    journal_lines,
)
from tests.worker_processes import (
    WorkerProcess,
    assert_model_calls_not_repeated,
    completed_model_calls_in,
    wait_for_poller,
)


class NoArgs(BaseModel):
    pass


def test_short_read_only_tools_default_to_local_and_others_stay_regular() -> None:
    """Local by default: read-only with a declared timeout of at most
    ``LOCAL_TOOL_MAX_TIMEOUT`` and no heartbeat timeout. Regular: side effects, idempotent
    tools, tools with no timeout (they may be long), a longer timeout, a heartbeat timeout, or
    ``local=False``. ``local=True`` where a tool cannot be local is refused at definition."""
    short = timedelta(seconds=5)

    def make(**settings: object) -> bool:
        def fn(args: NoArgs, ctx: ToolContext) -> str:
            """A tool."""
            return "ok"

        made = tool(**settings)(fn)  # type: ignore[arg-type]
        assert made.schema().local == made.runs_locally
        return made.runs_locally

    assert make(timeout=short)
    assert make(timeout=policies.LOCAL_TOOL_MAX_TIMEOUT)
    assert not make()
    assert not make(timeout=policies.LOCAL_TOOL_MAX_TIMEOUT + timedelta(seconds=1))
    assert not make(timeout=short, heartbeat_timeout=short)
    assert not make(timeout=short, local=False)
    assert not make(timeout=short, effect="idempotent")
    assert make(timeout=short, effect="idempotent", local=True)
    assert make(local=True)
    assert not make(timeout=short, effect="side_effect")
    for refused, why in [
        ({"effect": "side_effect"}, "acts on the world"),
        ({"heartbeat_timeout": short}, "heartbeat"),
        ({"timeout": timedelta(minutes=1)}, "longer than a local activity may take"),
    ]:
        with pytest.raises(TypeError, match=why):
            make(local=True, **refused)


def test_a_local_tool_without_a_timeout_gets_the_local_limit() -> None:
    """``local=True`` with no timeout: each attempt may take ``LOCAL_TOOL_MAX_TIMEOUT``."""

    @tool(local=True, max_attempts=2)
    def quick(args: NoArgs, ctx: ToolContext) -> str:
        """A quick tool."""
        return "ok"

    timeout, retry = policies.local_tool_call_options(quick.schema())
    assert timeout == policies.LOCAL_TOOL_MAX_TIMEOUT
    assert retry.maximum_attempts == 2


@pytest.fixture
def local_registry(registry: AgentRegistry) -> AgentRegistry:
    for agent in LOCAL_TOOL_AGENTS:
        registry.register(agent)
    registry.scripts.update(LOCAL_TOOL_SCRIPTS)
    return registry


async def tool_runs(handle: WorkflowHandle[object, AgentResult]) -> tuple[list[str], list[str]]:
    """Activity ids of the run's tool calls: (regular activities scheduled, local calls that
    completed: their markers with a result)."""
    regular, local = [], []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "run_tool":
                regular.append(attributes.activity_id)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            details = event.marker_recorded_event_attributes.details
            data = json.loads(details["data"].payloads[0].data)
            if data["activity_type"] == "run_tool" and details["result"].payloads:
                local.append(data["activity_id"])
    return regular, local


async def test_local_tool_result_reaches_the_model_and_a_gated_call_stays_regular(
    client: Client, task_queue: str, local_registry: AgentRegistry
) -> None:
    """The model asks for a local lookup and a gated one: the local call is recorded as a
    local-activity marker and its result is in the model's next request (the final answer
    quotes it); the gated call, once approved, is a regular ``run_tool`` activity.
    ``starter.py steps`` reads both results back from history."""
    async with running_worker(client, task_queue, local_registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="local-lookup", task="look a and b up"),
            id=f"local-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        for _ in range(600):
            view = await handle.query("status", result_type=AgentStatusView)
            if view.pending_approvals:
                break
            await asyncio.sleep(0.05)
        await handle.signal("approve", ApprovalSignal(approver="test"))
        result = await handle.result()
        steps = (await read_run(client, handle.id)).steps()
    assert result.status == "completed", result
    assert result.output == "found gated-value-of-b, value-of-a"
    regular, local = await tool_runs(handle)
    [lookup_call, gated_call] = [c.call_id for c in result.tool_calls]
    assert local == [f"tool-1-{lookup_call}"]
    assert regular == [f"tool-1-{gated_call}"]
    previews = {c.name: c.result_preview for c in steps[0].tool_calls}
    assert previews == {"lookup": "value-of-a", "gated_lookup": "gated-value-of-b"}


@pytest.mark.slow
async def test_kill9_during_a_local_tool_reruns_only_that_tool_and_no_side_effect(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """One step asks for a slow local lookup and a side effect side by side. The worker is
    killed -9 while the lookup runs: its result was never recorded (a local activity's result
    is recorded when its workflow task completes), so the next worker runs the lookup again.
    The side effect happens once, and the model call made before the kill is not made again."""
    client = stored_client
    journal = tmp_path / "local-tools.journal"
    env = {
        **worker_env,
        "DURABLE_AGENTS_MODULES": "tests.local_tool_agents",
        "LOCAL_TOOLS_JOURNAL": str(journal),
        "SCRIPTED_MODEL_LATENCY_MS": "100",
    }
    workers.append(WorkerProcess(env, tmp_path / "worker-1.log"))
    await wait_for_poller(client, task_queue)
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="local-crash", task="look c up and note it"),
        id=f"local-crash-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
        task_timeout=policies.WORKFLOW_TASK_TIMEOUT,
    )
    for _ in range(600):
        if any(line[0] == "lookup-started" for line in journal_lines(journal)):
            break
        await asyncio.sleep(0.05)
    workers[0].kill9()
    done_before_kill = await completed_model_calls_in(client, [handle.id])
    assert done_before_kill[handle.id] == ["model-1"]

    workers.append(WorkerProcess(env, tmp_path / "worker-2.log"))
    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.status == "completed", result
    lines = journal_lines(journal)
    events = Counter(line[0] for line in lines)
    assert events["effect"] == 1, lines
    lookups = [line for line in lines if line[0] == "lookup-started"]
    assert len(lookups) == 2, lines
    assert lookups[0][2] == str(workers[0].process.pid)
    assert lookups[1][2] == str(workers[1].process.pid)
    assert {c.name: c.is_error for c in result.tool_calls} == {
        "slow_lookup": False,
        "record_note": False,
    }
    assert_model_calls_not_repeated(Path(env["SCRIPTED_MODEL_JOURNAL"]), done_before_kill)
    regular, local = await tool_runs(handle)
    assert [a.split("-", 2)[2] for a in local] == [result.tool_calls[0].call_id]
    assert [a.split("-", 2)[2] for a in regular] == [result.tool_calls[1].call_id]


async def test_cancelling_the_run_during_a_local_tool_ends_it_cancelled(
    client: Client, task_queue: str, local_registry: AgentRegistry
) -> None:
    """A cancel request that arrives while a local tool runs reaches the run when the worker
    extends its workflow task; the tool is cancelled and the run ends ``cancelled`` with its
    output so far."""
    LONG_LOOKUP_STARTED.clear()
    LONG_LOOKUP_CANCELLED.clear()
    async with running_worker(client, task_queue, local_registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="local-long", task="look d up"),
            id=f"local-long-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
            task_timeout=policies.WORKFLOW_TASK_TIMEOUT,
        )
        for _ in range(600):
            if LONG_LOOKUP_STARTED.is_set():
                break
            await asyncio.sleep(0.05)
        assert LONG_LOOKUP_STARTED.is_set()
        await handle.cancel()
        result = await handle.result()
    assert result.status == "cancelled", result
    assert result.output == "looking"
    assert LONG_LOOKUP_CANCELLED.is_set()
    _, local = await tool_runs(handle)
    assert local == []  # cancelled before it finished: no result recorded
