"""Whole AgentWorkflow runs on real provider SDKs (pointed at the loopback fake API)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import anthropic
import openai
import pytest
from temporalio.client import Client

from activities.providers.anthropic_provider import AnthropicProvider
from activities.providers.base import ModelProvider
from activities.providers.openai_provider import OpenAIProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, FakeToolCall, HttpError, Reply


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def providers(server: FakeLLMServer) -> dict[str, ModelProvider]:
    return {
        "anthropic": AnthropicProvider(
            anthropic.AsyncAnthropic(api_key="test", base_url=server.base_url, max_retries=0)
        ),
        "openai": OpenAIProvider(
            openai.AsyncOpenAI(api_key="test", base_url=server.openai_base_url, max_retries=0)
        ),
    }


@pytest.mark.parametrize("model", ["anthropic:claude-haiku-4-5", "openai:gpt-4.1-mini"])
async def test_agent_run_on_a_real_sdk(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer, model: str
) -> None:
    """Tool calls from a real provider reply are executed, their results go back in the next
    request, a 429 on the way is retried, and usage and cost add up across steps."""
    llm.enqueue(
        Reply(
            text="Adding.",
            tool_calls=(FakeToolCall("add", {"a": 2, "b": 3}), FakeToolCall("add", {"a": 1})),
            input_tokens=1000,
            output_tokens=100,
        ),
        HttpError.rate_limited(retry_after="1"),
        Reply(text="2 + 3 = 5.", input_tokens=1500, output_tokens=20),
    )
    async with running_worker(client, task_queue, registry, providers(llm)):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add 2 and 3", model=model),
            id=f"provider-run-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert result.status == "completed"
    assert result.output == "2 + 3 = 5."
    assert result.steps == 2
    assert result.usage.input_tokens == 2500 and result.usage.output_tokens == 120
    assert result.cost_usd > 0
    assert [c.is_error for c in result.tool_calls] == [False, True]  # {"a": 1} misses "b"
    requests = llm.requests
    assert len(requests) == 3  # step 1, the 429, step 2 again
    assert requests[1].header("idempotency-key") == requests[2].header("idempotency-key")
    assert requests[0].header("idempotency-key") != requests[1].header("idempotency-key")
    second = json.dumps(requests[2].body)
    assert '{\\"sum\\": 5}' in second or '{"sum": 5}' in second  # the tool result went back
    assert "b: Field required" in second  # and so did the validation error
