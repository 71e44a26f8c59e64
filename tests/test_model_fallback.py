"""Model routing and fallback on real provider SDKs (pointed at the loopback fake API).

An agent's model fails for good on transient errors (Anthropic's 529 ``overloaded_error``) after
``model_attempts`` attempts; the step is then made on the next model of its fallback chain
(OpenAI), visibly in history, and the result says which model answered and what each cost. A
request the provider refuses as invalid (400) is not retried on another model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from durable_agents.agents import Agent, AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from tests.agents_for_tests import add
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, HttpError, Reply
from tests.test_provider_runs import providers


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


PRIMARY = "anthropic:claude-haiku-4-5"
FALLBACK = "openai:gpt-4.1-mini"

falling_back = Agent(
    name="test-falling-back",
    description="Haiku first, GPT-4.1 mini when Anthropic is overloaded.",
    system_prompt="Add.",
    tools=[add],
    model=PRIMARY,
    fallback_models=[FALLBACK],
    model_attempts=2,
    step_models={"summary": FALLBACK},
)


async def run(
    client: Client, task_queue: str, registry: AgentRegistry, server: FakeLLMServer
) -> tuple[AgentResult | WorkflowFailureError, WorkflowHandle[Any, AgentResult]]:
    registry.register(falling_back)
    handle_id = f"fallback-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, providers(server)):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent=falling_back.name, task="add 2 and 3"),
            id=handle_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
        try:
            return await handle.result(), handle
        except WorkflowFailureError as err:
            return err, handle


async def test_an_overloaded_model_falls_back_to_the_next(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer
) -> None:
    """Two 529s use up the primary's attempts; the step is made on the fallback (its own
    activity and idempotency key), and the result names the model that answered and the cost
    by model."""
    llm.enqueue(HttpError(529, "Overloaded"), HttpError(529, "Overloaded"), Reply(text="5."))
    result, handle = await run(client, task_queue, registry, llm)
    assert isinstance(result, AgentResult), result
    assert result.status == "completed" and result.output == "5."
    assert list(result.cost_by_model) == [FALLBACK] and result.cost_by_model[FALLBACK] > 0
    assert any("falling back to " + FALLBACK in w for w in result.warnings)
    paths = [r.path for r in llm.requests]
    assert paths == ["/v1/messages", "/v1/messages", "/v1/chat/completions"]
    assert llm.requests[0].header("idempotency-key") == llm.requests[1].header("idempotency-key")
    assert llm.requests[2].header("idempotency-key") != llm.requests[0].header("idempotency-key")
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_id
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "call_model"
    ]
    assert scheduled == ["model-1", "model-1-fallback-1"]


async def test_a_bad_request_is_not_retried_on_another_model(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer
) -> None:
    """A 400 fails the call at once: no second attempt, no fallback; the run fails naming
    the provider's message."""
    llm.enqueue(HttpError.bad_request("messages: roles must alternate"))
    failed, _ = await run(client, task_queue, registry, llm)
    assert isinstance(failed, WorkflowFailureError)
    assert "roles must alternate" in str(failed.cause)
    assert len(llm.requests) == 1


async def test_models_the_worker_cannot_serve_are_left_out_at_load() -> None:
    """``step_models`` and fallbacks whose provider the worker lacks are left out when the
    agent is loaded; those it has are kept, with their prices recorded next to the run's."""
    from temporalio.testing import ActivityEnvironment

    from activities.agent_catalog import AgentCatalogActivities, LoadAgentInput

    registry = AgentRegistry([falling_back])
    load = LoadAgentInput(agent=falling_back.name)
    narrow = await ActivityEnvironment().run(
        AgentCatalogActivities(registry, ["anthropic", "scripted"]).load_agent, load
    )
    wide = await ActivityEnvironment().run(
        AgentCatalogActivities(registry, ["anthropic", "openai", "scripted"]).load_agent, load
    )
    assert narrow.spec.fallback_models == [] and narrow.spec.step_models == {}
    assert wide.spec.fallback_models == [FALLBACK] and wide.spec.step_models == {
        "summary": FALLBACK
    }
    assert wide.spec.model_attempts == 2
    price = wide.prices[FALLBACK]
    assert price is not None and price.model == "gpt-4.1-mini"
