"""Long runs on the dev server: continue-as-new, context management, payloads off history.

The ``soak`` agent calls a cheap tool every step (``steps=N bytes=M`` in its task). Clients and
workers here use the project's own converter setup with a local payload store in ``tmp_path``,
as ``worker.py`` and ``starter.py`` do by default.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.context import ContextPolicy
from tests.conftest import running_worker

pytestmark = pytest.mark.timeout(900)


async def start_soak(
    client: Client, task_queue: str, task: str, **options: object
) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput.model_validate({"agent": "soak", "task": task, **options}),
        id=f"soak-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """History events of each run in the chain, oldest first."""
    lengths: list[int] = []
    async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(
            workflow_id, run_id=execution.run_id
        ).fetch_history()
        lengths.append(len(history.events))
    return lengths[::-1]


async def test_soak_2000_steps_continues_as_new_and_counts_across_runs(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """2,000 tool steps complete: the run continues as new when Temporal suggests it, every
    history stays under the suggestion limit, and the result counts steps, tool calls and
    tokens over all runs while keeping only a bounded list of records."""
    async with running_worker(stored_client, task_queue, registry):
        handle = await start_soak(stored_client, task_queue, "steps=2000 bytes=1000")
        result = await handle.result()

    assert result.status == "completed", result.error
    assert result.steps == 2001 and result.tool_calls_total == 2000
    assert result.output == "soak done: 2000 tool steps of 1000 bytes"
    assert result.runs >= 2
    assert len(result.tool_calls) == 200
    assert result.tool_calls[-1].step == 2000
    lengths = await run_lengths(stored_client, handle.id)
    assert len(lengths) == result.runs
    assert max(lengths) < 10_000  # suggested at ~4,096 events; the hard limit is 51,200
    print(f"\nsoak 2000 steps: {result.runs} runs, events per run {lengths}")


async def test_continue_as_new_keeps_the_run_whole(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Forced every 5 steps: status keeps counting across runs, idempotency keys stay unique
    and name the first run, usage adds up, and cancelling the latest run cancels the whole."""
    async with running_worker(stored_client, task_queue, registry):
        short = await start_soak(
            stored_client, task_queue, "steps=12 bytes=50", continue_as_new_after_steps=5
        )
        result = await short.result()

        long = await start_soak(
            stored_client, task_queue, "steps=100000 bytes=10", continue_as_new_after_steps=5
        )
        latest = stored_client.get_workflow_handle(long.id, result_type=AgentResult)
        while True:
            view: AgentStatusView = await latest.query("status", result_type=AgentStatusView)
            if view.runs >= 3:
                break
            await asyncio.sleep(0.05)
        assert view.steps >= 10
        await latest.cancel()
        cancelled = await latest.result()

    assert (result.status, result.steps, result.runs, result.tool_calls_total) == (
        "completed",
        13,
        3,
        12,
    )
    keys = [c.idempotency_key for c in result.tool_calls]
    assert len(set(keys)) == 12
    first_run = short.first_execution_run_id or short.result_run_id
    assert all(key and key.startswith(f"{short.id}/{first_run}/tool/") for key in keys)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert cancelled.status == "cancelled" and cancelled.runs >= 3 and cancelled.steps >= 10


async def test_thousand_turns_past_200k_tokens_with_rolling_summary(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A 1,000-turn conversation of about 250k tokens completes under a rolling summary: the
    summary calls are ordinary model activities, and no model request grows with the
    conversation (the largest stays within the context budget)."""
    policy = ContextPolicy(
        strategy="rolling_summary",
        max_context_tokens=12_000,
        keep_recent_turns=6,
        fold_every_turns=50,
        summary_max_tokens=1_000,
    )
    async with running_worker(stored_client, task_queue, registry):
        handle = await start_soak(
            stored_client, task_queue, "steps=999 bytes=1000", context=policy.model_dump()
        )
        result = await handle.result()

    assert result.status == "completed", result.error
    assert result.steps == 1000
    conversation_tokens = result.tool_calls_total * 1000 // 4  # scripted: 4 chars a token
    assert conversation_tokens > 200_000
    summaries = 0
    async for execution in stored_client.list_workflows(f"WorkflowId = '{handle.id}'"):
        run = stored_client.get_workflow_handle(handle.id, run_id=execution.run_id)
        async for event in run.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activity_id = event.activity_task_scheduled_event_attributes.activity_id
                summaries += activity_id.startswith("summary-")
    assert summaries >= 15  # a fold every 50 turns
    # Every call sent at most the budget: the average input per model call stays below it.
    assert result.usage.input_tokens / (result.steps + summaries) < policy.max_context_tokens


async def test_oversized_tool_result_is_an_error_the_model_reads(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A tool that returns 3 MB (over the 2 MB payload limit) does not wedge the run: the model
    is told the result was too big, and the run goes on to its next step."""
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-bloater", task="fetch"),
            id=f"bloat-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert result.status == "completed" and result.output == "done"
    big, small = result.tool_calls
    assert big.is_error and "3,000,000 bytes" in big.result_preview
    assert "Ask for less" in big.result_preview
    assert not small.is_error


async def test_conversation_too_big_for_history_fails_clearly_or_offloads(
    client: Client, stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """keep_all with a 2.7 MB conversation: without payload offload the run fails with a clear
    ConversationTooLarge error before a model request could exceed the payload limit (no
    workflow task left retrying); with offload (the default) the same run completes."""
    task = "steps=3 bytes=900000"
    options = {"context": {"strategy": "keep_all"}}
    async with running_worker(client, task_queue, registry):
        handle = await start_soak(client, task_queue, task, **options)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ConversationTooLarge"
    assert "PAYLOAD_STORE" in cause.message

    stored_queue = f"{task_queue}-stored"
    async with running_worker(stored_client, stored_queue, registry):
        stored = await start_soak(stored_client, stored_queue, task, **options)
        result = await stored.result()
    assert result.status == "completed" and result.steps == 4
