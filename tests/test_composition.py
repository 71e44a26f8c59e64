"""Typed output, sub-agents, input warnings and per-tool settings, on a real dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.providers.anthropic_provider import AnthropicProvider
from activities.providers.openai_provider import OpenAIProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.agent_io import CarriedRun, LoadedAgent, WorkerSettings
from durable_agents.runner.policies import TOOL_CALL_RETRY, tool_call_options
from durable_agents.tools import ToolContext, tool
from tests.composition_agents import VALID, Verdict
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, Reply


async def run(
    client: Client, task_queue: str, registry: AgentRegistry, input: AgentInput | dict[str, Any],
    providers: dict[str, Any] | None = None,
) -> tuple[AgentResult, WorkflowHandle[Any, AgentResult]]:  # fmt: skip
    workflow_id = f"composition-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, providers):
        handle = await client.start_workflow(
            "AgentWorkflow", input, id=workflow_id, task_queue=task_queue, result_type=AgentResult
        )
        return await handle.result(), handle


def model_activities(events: Any) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "call_model"
    ]


# -- typed output ----------------------------------------------------------------------------


async def test_typed_output_valid_first_time(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """An agent with an ``output_type`` answers with a valid object: ``output_json`` holds it,
    ``output_as`` gives the model back, no repairs."""
    result, _ = await run(
        client, task_queue, registry, AgentInput(agent="typed-first-time", task="x")
    )
    assert result.status == "completed" and result.output_repairs == 0
    assert result.output_json == VALID
    assert result.output_as(Verdict) == Verdict(**VALID)


async def test_typed_output_is_repaired(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Prose, then a wrongly typed field, then a valid object: two repairs, each a separate
    recorded model call with its own idempotency key; the model read what was wrong."""
    result, handle = await run(
        client, task_queue, registry, AgentInput(agent="typed-repaired", task="x")
    )
    assert result.status == "completed" and result.output_repairs == 2
    assert result.steps == 3 and result.output_json == VALID
    history = await handle.fetch_history()
    assert model_activities(history.events) == ["model-1", "model-2", "model-3"]
    requests = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert len(requests) == 3  # no tool calls: three model calls


async def test_typed_output_repairs_run_out(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """An answer that never validates ends the run ``invalid_output`` after its two repairs,
    with the last raw reply as ``output`` and no ``output_json``: no crash, no retrying task."""
    result, _ = await run(
        client, task_queue, registry, AgentInput(agent="typed-stubborn", task="x")
    )
    assert result.status == "invalid_output"
    assert result.steps == 3 and result.output_repairs == 2
    assert result.output == json.dumps({"score": 13}) and result.output_json is None


async def test_ad_hoc_output_schema_from_the_input(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A run's input may carry an ``output_schema`` (what the Temporal CLI can send): the
    adder's prose answer is not JSON, so it is repaired until its repairs run out. A schema
    that is not a JSON object schema fails the run with ``InvalidOutputSchema``."""
    schema = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
    result, _ = await run(
        client, task_queue, registry,
        {"agent": "test-adder", "task": "add", "output_schema": schema},
    )  # fmt: skip
    assert result.status == "invalid_output" and result.output_repairs == 2
    with pytest.raises(WorkflowFailureError) as failed:
        await run(
            client, task_queue, registry,
            {"agent": "test-adder", "task": "add", "output_schema": {"type": "array"}},
        )  # fmt: skip
    assert "InvalidOutputSchema" in repr(failed.value.cause) or "JSON object" in str(
        failed.value.cause
    )


@pytest.mark.parametrize("model", ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"])
async def test_typed_output_on_real_sdks(
    client: Client, task_queue: str, registry: AgentRegistry, model: str
) -> None:
    """On both real SDKs (loopback API): the request asks for the schema natively, an invalid
    structured answer is repaired, and the valid one is the result."""
    with FakeLLMServer() as llm:
        llm.enqueue(
            Reply(answer={"score": "high", "accept": True, "feedback": "?"}, answer_tool="Verdict"),
            Reply(answer=VALID, answer_tool="Verdict"),
        )
        providers = {
            "anthropic": AnthropicProvider(
                anthropic.AsyncAnthropic(api_key="t", base_url=llm.base_url, max_retries=0)
            ),
            "openai": OpenAIProvider(
                openai.AsyncOpenAI(api_key="t", base_url=llm.openai_base_url, max_retries=0)
            ),
        }
        result, _ = await run(
            client, task_queue, registry,
            AgentInput(agent="typed-first-time", task="judge", model=model), providers,
        )  # fmt: skip
        bodies = [r.body for r in llm.requests]
    assert result.status == "completed" and result.output_repairs == 1
    assert result.output_json == VALID
    first = bodies[0]
    if model.startswith("openai"):
        assert first["response_format"]["json_schema"]["name"] == "Verdict"
    else:
        assert first["tool_choice"] == {"type": "any"}
        assert first["tools"][-1]["name"] == "Verdict"
    assert "does not match the required Verdict schema" in json.dumps(bodies[1])


# -- sub-agents --------------------------------------------------------------------------------


async def test_subagent_runs_as_a_child_and_its_output_is_the_tool_result(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``delegate_to_test-adder`` starts test-adder as a child workflow (parent link, own
    history) and its answer comes back as the tool result."""
    result, handle = await run(
        client, task_queue, registry, AgentInput(agent="delegator", task="x")
    )
    assert result.status == "completed"
    assert result.output == "Delegated: The sums are 3 and 42."
    assert result.subagent_calls == 1
    child_id = f"{handle.id}/test-adder-1-call_1_0"
    child = client.get_workflow_handle(child_id, result_type=AgentResult)
    assert (await child.describe()).parent_id == handle.id
    assert (await child.result()).output == "The sums are 3 and 42."


async def test_depth_limit_is_enforced_across_child_workflows(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``recursive`` delegates to itself with ``max_depth=2``: depth 0 and 1 start children,
    the run at depth 2 is refused by the runtime and told so (a tool error)."""
    result, handle = await run(
        client, task_queue, registry, AgentInput(agent="recursive", task="x")
    )
    assert result.status == "completed"
    assert "delegation may go 2 levels deep" in result.output
    grandchild = client.get_workflow_handle(
        f"{handle.id}/recursive-1-call_1_0/recursive-1-call_1_0", result_type=AgentResult
    )
    assert (await grandchild.result()).subagent_calls == 0
    assert result.subagent_calls == 2  # the child and the grandchild


async def test_call_limit_is_enforced_on_parallel_delegations(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Five parallel delegations against ``max_subagent_calls=3``: three children start, the
    other two calls get a tool error naming the limit."""
    result, _ = await run(client, task_queue, registry, AgentInput(agent="fan-out", task="x"))
    assert result.subagent_calls == 3
    errors = [c for c in result.tool_calls if c.is_error]
    assert len(errors) == 2
    assert all("may make 3 sub-agent calls" in c.result_preview for c in errors)


async def wait_for(handle: WorkflowHandle[Any, Any], predicate: Any) -> AgentStatusView:
    for _ in range(300):
        view = await handle.query("status", result_type=AgentStatusView)
        if predicate(view):
            return view
        await asyncio.sleep(0.1)
    raise AssertionError("condition never held")


async def test_subagent_approval_is_shown_and_decided_through_the_parent(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A sub-agent's gated call shows in the parent's ``status`` (which child, which approval)
    and approving it by the *parent's* workflow id reaches the child."""
    workflow_id = f"gated-parent-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="gated-delegator", task="x"),
            id=workflow_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
        view = await wait_for(handle, lambda v: v.pending_approvals)
        [approval] = view.pending_approvals
        assert approval.id == "test-gatekeeper-1-call_1_0/apr-1-0"
        assert approval.workflow_id == f"{workflow_id}/test-gatekeeper-1-call_1_0"
        assert approval.tool == "transfer"
        await handle.signal("approve", {"approver": "alice", "approval_id": approval.id})
        result = await handle.result()
    assert result.output.startswith("Delegated: Outcome: transfer: sent 10 to acct-1")
    child = client.get_workflow_handle(approval.workflow_id, result_type=AgentResult)
    assert [a.approver for a in (await child.result()).approvals] == ["alice"]


async def test_cancelling_the_parent_cancels_its_subagents(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Cancel a parent whose sub-agent waits for a human: both end with status ``cancelled``."""
    workflow_id = f"cancel-parent-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="gated-delegator", task="x"),
            id=workflow_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
        [approval] = (await wait_for(handle, lambda v: v.pending_approvals)).pending_approvals
        await handle.cancel()
        result = await handle.result()
        assert approval.workflow_id is not None
        child = client.get_workflow_handle(approval.workflow_id, result_type=AgentResult)
        child_result = await child.result()
    assert result.status == "cancelled"
    assert child_result.status == "cancelled"


# -- input and tool settings ------------------------------------------------------------------


async def test_unknown_input_fields_are_ignored_with_a_warning(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A typo (``max_step``) does not fail the run (a newer starter may send fields an older
    worker does not know); the result and ``status`` say what was ignored and suggest the
    field it probably meant."""
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            {"agent": "test-adder", "task": "add", "max_step": 3},
            id=f"typo-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert result.status == "completed" and result.steps == 2
    [warning] = result.warnings
    assert "'max_step'" in warning and "did you mean 'max_steps'?" in warning


class NoArgs(BaseModel):
    pass


def test_tool_activity_settings_come_from_the_tool() -> None:
    """``@tool(timeout=..., heartbeat_timeout=..., max_attempts=...)`` travels in the tool's
    schema and sets its activity options; a tool without them gets the defaults."""

    @tool(timeout=timedelta(seconds=5), heartbeat_timeout=timedelta(seconds=2), max_attempts=2)
    def quick(args: NoArgs, ctx: ToolContext) -> str:
        """A quick tool."""
        return "ok"

    @tool()
    def plain(args: NoArgs, ctx: ToolContext) -> str:
        """A plain tool."""
        return "ok"

    timeout, heartbeat, retry = tool_call_options(quick.schema())
    assert (timeout, heartbeat, retry.maximum_attempts) == (
        timedelta(seconds=5),
        timedelta(seconds=2),
        2,
    )
    assert tool_call_options(plain.schema())[2] is TOOL_CALL_RETRY


def test_worker_settings_are_read_from_specs_recorded_before_the_split() -> None:
    """Worker settings left the agent spec (``LoadedAgent.worker``); a history or a
    continue-as-new input written before that still yields them, so runs in flight keep
    their ``AgentStatus`` upkeep and their size guard."""
    spec = {
        "name": "a", "description": "d", "system_prompt": "s", "model": "scripted",
        "max_steps": 3, "tools": [], "max_request_bytes": 5, "status_search_attribute": True,
    }  # fmt: skip
    loaded = LoadedAgent.model_validate(spec)
    assert loaded.worker == WorkerSettings(max_request_bytes=5, status_search_attribute=True)
    assert loaded.spec.name == "a"
    carried = CarriedRun.model_validate(
        {"spec": spec, "messages": [], "steps": 1, "usage": {}, "cost_usd": 0.0}
    )
    assert carried.worker == loaded.worker
    assert LoadedAgent.model_validate(loaded.model_dump()) == loaded  # the new shape as is
