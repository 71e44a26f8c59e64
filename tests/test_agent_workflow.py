"""AgentWorkflow end to end on a real Temporal dev server with the offline scripted model."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from tests.conftest import running_worker


async def start(
    client: Client, task_queue: str, agent_input: AgentInput | dict[str, object]
) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        agent_input,
        id=f"test-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


async def event_types(handle: WorkflowHandle[object, AgentResult]) -> list[EventType.ValueType]:
    return [event.event_type async for event in handle.fetch_history_events()]


async def test_run_completes_with_tool_calls(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A run calls the model, runs the tools it asks for, feeds results back, and finishes."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="test-adder", task="add"))
        result = await handle.result()
        view = await handle.query("status", result_type=AgentStatusView)
    assert result.status == "completed"
    assert result.output == "The sums are 3 and 42."
    assert result.steps == 2
    assert [c.name for c in result.tool_calls] == ["add", "add"]
    assert not any(c.is_error for c in result.tool_calls)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.model == "scripted"
    assert view.status == "completed" and view.pending_approvals == []


async def test_search_attributes_are_upserted_only_when_they_change(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Every upsert changes a value (an upsert is a command and a visibility write): the first
    sets ``AgentStatus``, ``AgentName`` and ``AgentModel`` together, each model call's spend
    updates ``AgentTokens``, and ``AgentStatus`` is written twice in all: ``running`` and the
    final status (it used to be written again on every step)."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="soak", task="steps=6 bytes=10"))
        result = await handle.result()
    assert result.status == "completed" and result.steps == 7
    state: dict[str, object] = {}
    upserts: list[dict[str, object]] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            upserts.append({name: json.loads(p.data) for name, p in fields.indexed_fields.items()})
    for upsert in upserts:
        assert any(state.get(name) != value for name, value in upsert.items()), upsert
        state.update(upsert)
    assert set(upserts[0]) == {"AgentStatus", "AgentName", "AgentModel"}
    assert [u["AgentStatus"] for u in upserts if "AgentStatus" in u] == ["running", "completed"]
    assert sum("AgentTokens" in u for u in upserts) == result.steps
    assert len(upserts) == 2 + result.steps


async def test_tool_calls_of_one_turn_run_concurrently(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Both tool activities of one model turn are scheduled before either completes."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="test-adder", task="add"))
        await handle.result()
    events = [e async for e in handle.fetch_history_events()]
    tool_scheduled = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "run_tool"
    ]
    scheduled_ids = {events[i].event_id for i in tool_scheduled}
    tool_completed = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in scheduled_ids
    ]
    assert len(tool_scheduled) == 2 and len(tool_completed) == 2
    assert max(tool_scheduled) < min(tool_completed)


async def test_max_steps_stops_the_run(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A model that never gives a final answer is stopped at max_steps with that status."""
    async with running_worker(client, task_queue, registry):
        handle = await start(
            client, task_queue, AgentInput(agent="test-looper", task="loop", max_steps=4)
        )
        result = await handle.result()
    assert result.status == "max_steps"
    assert result.steps == 4
    assert result.output == "again"
    assert len(result.tool_calls) == 4


async def test_cancellation_keeps_partial_output(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancelling a run mid-tool ends it with status 'cancelled' and the output so far."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="test-sleeper", task="rest"))
        for _ in range(100):
            view = await handle.query("status", result_type=AgentStatusView)
            if view.phase == "running_tools":
                break
            await asyncio.sleep(0.1)
        assert view.running_tools == ["nap"]
        await handle.cancel()
        result = await handle.result()
    assert result.status == "cancelled"
    assert result.output == "working on it"
    assert result.steps == 1


async def test_cancellation_during_a_model_call_ends_cancelled(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancelling a run while its model call is out ends it ``cancelled`` (the call's
    cancellation is not a model failure)."""
    from activities.providers.scripted import ScriptedProvider

    slow = ScriptedProvider(registry.scripts, latency_seconds=30)
    async with running_worker(client, task_queue, registry, providers={"scripted": slow}):
        handle = await start(client, task_queue, AgentInput(agent="test-sleeper", task="rest"))
        for _ in range(100):
            view = await handle.query("status", result_type=AgentStatusView)
            if view.phase == "calling_model":
                break
            await asyncio.sleep(0.1)
        assert view.phase == "calling_model"
        await handle.cancel()
        result = await handle.result()
    assert result.status == "cancelled"
    assert result.steps == 1 and result.output == ""


async def test_unknown_agent_fails_the_workflow_not_the_task(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """An unknown agent fails the run with a clear error; no workflow task is left retrying."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="no-such-agent", task="x"))
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert "unknown agent 'no-such-agent'" in cause.message
    assert "test-adder" in cause.message  # the error lists what is available
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in await event_types(handle)


async def test_invalid_input_fails_the_workflow_not_the_task(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Input that does not match AgentInput (here: no task) fails the run with the reason."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, {"agent": "test-adder", "max_steps": 0})
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    message = str(caught.value.cause)
    assert "task" in message and "max_steps" in message
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in await event_types(handle)


async def test_bad_tool_calls_become_errors_the_model_sees(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Malformed JSON, schema violations and unknown tools go back to the model as tool errors."""
    async with running_worker(client, task_queue, registry):
        handle = await start(client, task_queue, AgentInput(agent="test-clumsy", task="go"))
        result = await handle.result()
    assert result.status == "completed"
    assert "arguments for 'add' are not valid JSON" in result.output
    assert "invalid arguments for 'add': a: Input should be a valid integer" in result.output
    assert "unknown tool 'delete_everything'; available tools: add" in result.output
    assert [c.is_error for c in result.tool_calls] == [True, True, True]
    # The unknown tool never reached a worker; the other two did, with idempotency keys.
    assert [c.idempotency_key is not None for c in result.tool_calls] == [True, True, False]
