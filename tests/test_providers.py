"""The Anthropic and OpenAI adapters, with the real SDKs talking to a loopback fake of both APIs.

Three layers: what each adapter sends and parses; how ``to_activity_error`` classifies what the
SDKs raise; and, on a real Temporal dev server, that those classifications make Temporal retry
(or not) as intended, with one ``Idempotency-Key`` across every attempt.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal

from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The test workflow below is loaded into Temporal's sandbox, which re-imports this module; these
# are passed through so the sandbox does not load its own copies of the SDKs and of pytest.
with workflow.unsafe.imports_passed_through():
    import anthropic
    import openai
    import pytest
    from pydantic import BaseModel, ConfigDict

    from activities.model import ModelActivities
    from activities.providers.anthropic_provider import OUTPUT_TOOL_DESCRIPTION, AnthropicProvider
    from activities.providers.base import ModelProvider
    from activities.providers.errors import retry_after, to_activity_error
    from activities.providers.openai_provider import OpenAIProvider
    from activities.providers.pricing import cost_usd, price_for
    from activities.providers.structured import is_strict_compatible
    from durable_agents.contracts.messages import (
        AssistantMessage,
        Message,
        ToolCall,
        ToolResultMessage,
        Usage,
        UserMessage,
    )
    from durable_agents.contracts.model import ModelRequest, ModelResponse
    from durable_agents.contracts.tools import ToolSchema
    from tests.fakes.llm_server import (
        Delay,
        DropConnection,
        FakeLLMServer,
        FakeToolCall,
        HttpError,
        Reply,
    )

Api = Literal["anthropic", "openai"]
APIS: tuple[Api, ...] = ("anthropic", "openai")
# claude-haiku-4-5 rather than claude-sonnet-4-5, for which the SDK warns of its end of life.
MODELS: dict[Api, str] = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1"}

TOOLS = [
    ToolSchema(
        name="get_weather",
        description="Current weather for a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    ),
    ToolSchema(
        name="get_time",
        description="Current time in a timezone.",
        parameters={"type": "object", "properties": {"tz": {"type": "string"}}},
    ),
]

# A conversation after one turn with two tool calls, one of them with malformed arguments.
CONVERSATION: list[Message] = [
    UserMessage(text="Weather and time in Paris?"),
    AssistantMessage(
        text="Let me check.",
        tool_calls=[
            ToolCall(id="call_w", name="get_weather", arguments='{"city": "Paris"}'),
            ToolCall(id="call_t", name="get_time", arguments='{"tz": "Europe/Paris"'),
        ],
    ),
    ToolResultMessage(tool_call_id="call_w", name="get_weather", content="18C, sunny"),
    ToolResultMessage(
        tool_call_id="call_t",
        name="get_time",
        content="arguments are not valid JSON",
        is_error=True,
    ),
]


def model_request(api: Api, *, key: str = "run-1:step-1", **overrides: object) -> ModelRequest:
    fields: dict[str, object] = {
        "agent": "tester",
        "model": f"{api}:{MODELS[api]}",
        "system": "You are terse.",
        "messages": [UserMessage(text="Hello")],
        "tools": [],
        "max_tokens": 256,
        "idempotency_key": key,
        "step": 1,
    }
    fields.update(overrides)
    return ModelRequest.model_validate(fields)


def make_provider(api: Api, server: FakeLLMServer, timeout: float = 5.0) -> ModelProvider:
    if api == "anthropic":
        return AnthropicProvider(
            anthropic.AsyncAnthropic(
                api_key="test-key", base_url=server.base_url, max_retries=0, timeout=timeout
            )
        )
    return OpenAIProvider(
        openai.AsyncOpenAI(
            api_key="test-key", base_url=server.openai_base_url, max_retries=0, timeout=timeout
        )
    )


async def complete(api: Api, server: FakeLLMServer, request: ModelRequest) -> ModelResponse:
    return await make_provider(api, server).complete(request, MODELS[api])


async def raised_by(
    api: Api, server: FakeLLMServer, *, client_timeout: float = 5.0
) -> BaseException:
    provider = make_provider(api, server, timeout=client_timeout)
    try:
        await provider.complete(model_request(api), MODELS[api])
    except Exception as err:
        return err
    raise AssertionError("the call succeeded")


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


# -- Anthropic adapter ---------------------------------------------------------------------------


async def test_anthropic_text_reply(llm_server: FakeLLMServer) -> None:
    """A text reply comes back as text, end_turn, and the model the API reported."""
    llm_server.enqueue(Reply(text="Hi there.", model="claude-haiku-4-5-20251001"))
    response = await complete("anthropic", llm_server, model_request("anthropic"))
    assert response.text == "Hi there."
    assert response.tool_calls == []
    assert response.stop_reason == "end_turn"
    assert response.model == "claude-haiku-4-5-20251001"


async def test_anthropic_tool_calls(llm_server: FakeLLMServer) -> None:
    """Several tool_use blocks in one reply become ToolCalls with JSON text arguments."""
    llm_server.enqueue(
        Reply(
            text="Checking both.",
            tool_calls=(
                FakeToolCall("get_weather", {"city": "Paris"}, id="toolu_01A"),
                FakeToolCall("get_time", {"tz": "Europe/Paris"}, id="toolu_01B"),
            ),
        )
    )
    response = await complete("anthropic", llm_server, model_request("anthropic", tools=TOOLS))
    assert response.stop_reason == "tool_use"
    assert response.text == "Checking both."
    assert [(c.id, c.name) for c in response.tool_calls] == [
        ("toolu_01A", "get_weather"),
        ("toolu_01B", "get_time"),
    ]
    assert [json.loads(c.arguments) for c in response.tool_calls] == [
        {"city": "Paris"},
        {"tz": "Europe/Paris"},
    ]


async def test_anthropic_usage_and_cost(llm_server: FakeLLMServer) -> None:
    """Input, output, cache read and cache write tokens are reported and priced."""
    llm_server.enqueue(
        Reply(input_tokens=1000, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=500)
    )
    response = await complete("anthropic", llm_server, model_request("anthropic"))
    assert response.usage == Usage(
        input_tokens=1000, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=500
    )
    # claude-haiku-4-5: $1 in, $5 out, $0.10 cache read, $1.25 cache write per million.
    expected = (1000 * 1 + 200 * 5 + 3000 * 0.10 + 500 * 1.25) / 1_000_000
    assert response.cost_usd == pytest.approx(expected)


async def test_anthropic_request_translation(llm_server: FakeLLMServer) -> None:
    """The SDK sends our conversation as Messages API turns, with caching and the idempotency key.

    Both tool results go back in one user turn of tool_result blocks (the failed one flagged
    is_error); a malformed earlier tool call is replayed with ``{}`` as input; the system
    prompt, the last tool, the conversation's last block and the last block before the last
    assistant turn (where the previous call ended) carry cache_control; the request has our
    Idempotency-Key.
    """
    request = model_request(
        "anthropic", key="wf-42:step-2", messages=CONVERSATION, tools=TOOLS, max_tokens=300
    )
    await complete("anthropic", llm_server, request)

    [sent] = llm_server.requests
    assert sent.path == "/v1/messages"
    assert sent.header("Idempotency-Key") == "wf-42:step-2"
    body = sent.body
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 300
    assert body["system"] == [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}
    ]
    assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tools"][0]["input_schema"] == TOOLS[0].parameters
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Weather and time in Paris?",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "call_w",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_w",
                    "content": "18C, sunny",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_t",
                    "content": "arguments are not valid JSON",
                    "is_error": True,
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
    ]


async def test_anthropic_stop_reasons(llm_server: FakeLLMServer) -> None:
    """max_tokens maps to max_tokens, and stop reasons we have no name for to other."""
    llm_server.enqueue(Reply(stop_reason="max_tokens"), Reply(stop_reason="refusal"))
    first = await complete("anthropic", llm_server, model_request("anthropic"))
    second = await complete("anthropic", llm_server, model_request("anthropic"))
    assert (first.stop_reason, second.stop_reason) == ("max_tokens", "other")


async def test_anthropic_from_env(
    llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key, no provider. With a key, calls go to ANTHROPIC_BASE_URL and the SDK never retries."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert AnthropicProvider.from_env() is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llm_server.base_url)
    provider = AnthropicProvider.from_env()
    assert provider is not None
    llm_server.enqueue(HttpError.server_error(503))
    with pytest.raises(anthropic.InternalServerError):
        await provider.complete(model_request("anthropic"), MODELS["anthropic"])
    [sent] = llm_server.requests
    assert sent.header("authorization") == "Bearer sk-ant-test"


# -- OpenAI adapter ------------------------------------------------------------------------------


async def test_openai_text_reply(llm_server: FakeLLMServer) -> None:
    """A text reply comes back as text, end_turn, and the model the API reported."""
    llm_server.enqueue(Reply(text="Hi there.", model="gpt-4.1-2025-04-14"))
    response = await complete("openai", llm_server, model_request("openai"))
    assert response.text == "Hi there."
    assert response.tool_calls == []
    assert response.stop_reason == "end_turn"
    assert response.model == "gpt-4.1-2025-04-14"


async def test_openai_tool_calls_keep_arguments_verbatim(llm_server: FakeLLMServer) -> None:
    """Several tool calls in one reply are parsed; arguments stay the exact text, even malformed."""
    llm_server.enqueue(
        Reply(
            text="",
            tool_calls=(
                FakeToolCall("get_weather", '{"city":"Paris"}', id="call_1"),
                FakeToolCall("get_time", '{"tz": "Europe/Par', id="call_2"),
            ),
        )
    )
    response = await complete("openai", llm_server, model_request("openai", tools=TOOLS))
    assert response.stop_reason == "tool_use"
    assert response.text == ""
    assert response.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="call_2", name="get_time", arguments='{"tz": "Europe/Par'),
    ]


async def test_openai_usage_and_cost(llm_server: FakeLLMServer) -> None:
    """Cached prompt tokens are split out of prompt_tokens, so input tokens count uncached only."""
    llm_server.enqueue(Reply(input_tokens=1000, output_tokens=200, cache_read_tokens=3000))
    response = await complete("openai", llm_server, model_request("openai"))
    [sent] = llm_server.requests
    assert sent.body["model"] == "gpt-4.1"
    assert response.usage == Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=3000)
    # gpt-4.1: $2 in, $8 out, $0.50 cached input per million.
    expected = (1000 * 2 + 200 * 8 + 3000 * 0.50) / 1_000_000
    assert response.cost_usd == pytest.approx(expected)


async def test_openai_request_translation(llm_server: FakeLLMServer) -> None:
    """The SDK sends our conversation as Chat Completions messages, with the idempotency key.

    System prompt first; the assistant turn carries its tool calls with the raw argument text
    (malformed included); each tool result is a role "tool" message; tools are functions;
    the limit is max_completion_tokens.
    """
    request = model_request(
        "openai", key="wf-42:step-2", messages=CONVERSATION, tools=TOOLS, max_tokens=300
    )
    await complete("openai", llm_server, request)

    [sent] = llm_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.header("Idempotency-Key") == "wf-42:step-2"
    body = sent.body
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in TOOLS
    ]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_t",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_w", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_t", "content": "arguments are not valid JSON"},
    ]


async def test_compatible_provider_uses_max_tokens(llm_server: FakeLLMServer) -> None:
    """The compatible provider sends max_tokens (what local servers know) and no empty tools."""
    client = openai.AsyncOpenAI(api_key="x", base_url=llm_server.openai_base_url, max_retries=0)
    provider = OpenAIProvider(client, name="compatible")
    response = await provider.complete(model_request("openai"), "llama3.2")
    [sent] = llm_server.requests
    assert sent.body["max_tokens"] == 256
    assert "max_completion_tokens" not in sent.body
    assert "tools" not in sent.body
    assert response.model == "llama3.2"
    assert response.cost_usd == 0.0 and not response.priced  # unknown model: cost unknown


async def test_openai_from_env(llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each flavour needs its variable; both honour their base URL and never retry in the SDK.

    The compatible provider works without a key (it sends a placeholder).
    """
    for name in ("OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL", "OPENAI_COMPATIBLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert OpenAIProvider.from_env() is None
    assert OpenAIProvider.compatible_from_env() is None

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.openai_base_url)
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", llm_server.openai_base_url)
    hosted, local = OpenAIProvider.from_env(), OpenAIProvider.compatible_from_env()
    assert hosted is not None and local is not None
    assert (hosted.name, local.name) == ("openai", "compatible")
    for provider in (hosted, local):
        llm_server.enqueue(HttpError.server_error(503))
        with pytest.raises(openai.InternalServerError):
            await provider.complete(model_request("openai"), "gpt-4.1")
    assert [r.header("authorization") for r in llm_server.requests] == [
        "Bearer sk-test",
        "Bearer not-needed",
    ]


# -- pricing -------------------------------------------------------------------------------------


def test_pricing_matches_longest_prefix() -> None:
    """Dated snapshots take their family's price, and the longest family name wins."""
    assert price_for("claude-sonnet-4-5-20250929") == price_for("claude-sonnet-4-5")
    assert price_for("claude-sonnet-4-20250514") == price_for("claude-sonnet-4")
    assert price_for("claude-sonnet-4-5") != price_for("claude-opus-4-1")
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("gpt-4o-mini") != price_for("gpt-4o")
    assert price_for("llama3.2") is None
    assert cost_usd("llama3.2", Usage(input_tokens=10**6)) is None


# -- error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_rate_limit_is_retryable_after_retry_after(
    api: Api, llm_server: FakeLLMServer
) -> None:
    """429 with Retry-After: 7 is retryable, and Temporal is told to wait 7 seconds."""
    llm_server.enqueue(HttpError.rate_limited(retry_after="7"))
    error = to_activity_error(await raised_by(api, llm_server))
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderRateLimited"
    assert not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=7)


@pytest.mark.parametrize("api", APIS)
async def test_server_error_is_retryable(api: Api, llm_server: FakeLLMServer) -> None:
    """500 is retryable, with no delay of its own (the retry policy decides)."""
    llm_server.enqueue(HttpError.server_error(500))
    error = to_activity_error(await raised_by(api, llm_server))
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderServerError"
    assert not error.non_retryable
    assert error.next_retry_delay is None


@pytest.mark.parametrize("api", APIS)
async def test_bad_request_is_not_retryable(api: Api, llm_server: FakeLLMServer) -> None:
    """400 is non-retryable and carries the provider's own message, not the SDK's body dump."""
    llm_server.enqueue(HttpError.bad_request("max_tokens: must be at most 64000"))
    error = to_activity_error(await raised_by(api, llm_server))
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderBadRequest"
    assert error.non_retryable
    assert error.message == f"{api} returned 400: max_tokens: must be at most 64000"


@pytest.mark.parametrize("api", APIS)
async def test_auth_error_is_not_retryable(api: Api, llm_server: FakeLLMServer) -> None:
    """401 is non-retryable: a wrong key does not fix itself."""
    llm_server.enqueue(HttpError(401, "invalid x-api-key"))
    error = to_activity_error(await raised_by(api, llm_server))
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderAuthError" and error.non_retryable
    assert "invalid x-api-key" in error.message


@pytest.mark.parametrize("api", APIS)
async def test_dropped_connection_is_retryable(api: Api, llm_server: FakeLLMServer) -> None:
    """A connection closed without a response is a retryable connection error."""
    llm_server.enqueue(DropConnection())
    raw = await raised_by(api, llm_server)
    assert isinstance(raw, anthropic.APIConnectionError | openai.APIConnectionError)
    error = to_activity_error(raw)
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderConnectionError"
    assert not error.non_retryable


@pytest.mark.parametrize("api", APIS)
async def test_client_timeout_is_retryable(api: Api, llm_server: FakeLLMServer) -> None:
    """A reply slower than the client's timeout is a retryable timeout."""
    llm_server.enqueue(Delay(3.0))
    raw = await raised_by(api, llm_server, client_timeout=0.3)
    assert isinstance(raw, anthropic.APITimeoutError | openai.APITimeoutError)
    error = to_activity_error(raw)
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderTimeout"
    assert not error.non_retryable


def test_retry_after_header_forms() -> None:
    """retry-after-ms wins over Retry-After; Retry-After may be seconds or an HTTP date."""
    now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    in_30s = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == timedelta(seconds=1.5)
    assert retry_after({"retry-after": "2.5"}) == timedelta(seconds=2.5)
    assert retry_after({"retry-after": in_30s}, now=now) == timedelta(seconds=30)
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_unknown_errors_are_retryable() -> None:
    """Anything the SDKs did not classify is retried; the repr says what it was."""
    error = to_activity_error(RuntimeError("boom"))
    assert isinstance(error, ApplicationError)
    assert error.type == "ProviderError" and not error.non_retryable
    assert "RuntimeError('boom')" in error.message


# -- the fake server itself ----------------------------------------------------------------------


async def test_fake_server_streams_anthropic_events(llm_server: FakeLLMServer) -> None:
    """With "stream": true the fake speaks Anthropic SSE, which the SDK assembles into a message."""
    llm_server.enqueue(Reply(text="Hi.", tool_calls=(FakeToolCall("get_time", {"tz": "UTC"}),)))
    client = anthropic.AsyncAnthropic(api_key="k", base_url=llm_server.base_url, max_retries=0)
    async with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[1].type == "tool_use" and message.content[1].input == {"tz": "UTC"}
    assert message.usage.output_tokens == 10


async def test_fake_server_streams_openai_chunks(llm_server: FakeLLMServer) -> None:
    """With "stream": true the fake speaks OpenAI SSE chunks, ending with usage and [DONE]."""
    llm_server.enqueue(Reply(text="Hi.", tool_calls=(FakeToolCall("get_time", '{"tz":"UTC"}'),)))
    client = openai.AsyncOpenAI(api_key="k", base_url=llm_server.openai_base_url, max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, arguments, finish, total = "", "", None, None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                arguments += (call.function.arguments if call.function else None) or ""
            finish = choice.finish_reason or finish
        total = chunk.usage.total_tokens if chunk.usage else total
    assert (text, arguments, finish, total) == ("Hi.", '{"tz":"UTC"}', "tool_calls", 35)


# -- structured output ---------------------------------------------------------------------------

# Strict-compatible: every object closed and fully required, through $defs/$ref, items, anyOf.
STRICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "array", "items": {"$ref": "#/$defs/Day"}},
        "alert": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["city", "days", "alert"],
    "additionalProperties": False,
    "$defs": {
        "Day": {
            "type": "object",
            "properties": {"date": {"type": "string"}, "high_c": {"type": "number"}},
            "required": ["date", "high_c"],
            "additionalProperties": False,
        }
    },
}
ANSWER: dict[str, Any] = {
    "city": "Paris",
    "days": [{"date": "2025-06-01", "high_c": 24.5}],
    "alert": None,
}


class Day(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: str
    high_c: float


class Forecast(BaseModel):
    """Every field required and extra fields forbidden: strict-compatible as pydantic emits it."""

    model_config = ConfigDict(extra="forbid")
    city: str
    days: list[Day]
    alert: str | None


class LooseForecast(BaseModel):
    """Pydantic's usual shape: open objects, and a defaulted field that is not required."""

    city: str
    alert: str | None = None


def _with(schema: dict[str, Any], path: tuple[str, ...], **changes: Any) -> dict[str, Any]:
    """A copy of ``schema`` with ``changes`` applied to the subschema at ``path``
    (a value of ``None`` removes the keyword)."""
    copied = copy.deepcopy(schema)
    target = copied
    for key in path:
        target = target[key]
    for keyword, value in changes.items():
        if value is None:
            target.pop(keyword, None)
        else:
            target[keyword] = value
    return copied


def test_strict_compatibility_accepts_closed_schemas() -> None:
    """Closed, fully required objects, reached through $defs/$ref, items and anyOf, are
    strict-compatible; so is a pydantic model with extra="forbid" and no defaults. The
    check only reads the schema."""
    before = copy.deepcopy(STRICT_SCHEMA)
    assert is_strict_compatible(STRICT_SCHEMA)
    assert STRICT_SCHEMA == before
    assert is_strict_compatible(Forecast.model_json_schema())
    assert is_strict_compatible({"type": "object", "properties": {}, "additionalProperties": False})


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(LooseForecast.model_json_schema(), id="pydantic-defaults"),
        pytest.param(_with(STRICT_SCHEMA, (), additionalProperties=None), id="root-open"),
        pytest.param(_with(STRICT_SCHEMA, (), additionalProperties=True), id="root-extra-true"),
        pytest.param(
            _with(STRICT_SCHEMA, (), additionalProperties={"type": "string"}), id="root-extra-map"
        ),
        pytest.param(_with(STRICT_SCHEMA, (), required=["city", "days"]), id="not-all-required"),
        pytest.param(
            _with(STRICT_SCHEMA, ("$defs", "Day"), additionalProperties=None), id="defs-open"
        ),
        pytest.param(
            _with(
                STRICT_SCHEMA,
                ("properties", "days"),
                items={"type": "object", "properties": {"d": {"type": "string"}}},
            ),
            id="items-open",
        ),
        pytest.param(
            _with(
                STRICT_SCHEMA,
                ("properties", "alert"),
                anyOf=[{"type": "object", "properties": {"x": {"type": "string"}}}],
            ),
            id="anyof-open",
        ),
        pytest.param(_with(STRICT_SCHEMA, ("properties", "city"), default="Paris"), id="default"),
        pytest.param(_with(STRICT_SCHEMA, ("properties", "city"), minLength=1), id="minLength"),
        pytest.param(
            _with(STRICT_SCHEMA, ("properties", "alert"), anyOf=None, allOf=[{"type": "string"}]),
            id="allOf",
        ),
        pytest.param(
            _with(STRICT_SCHEMA, ("properties", "days", "items"), description="A day."),
            id="ref-with-siblings",
        ),
        pytest.param(_with(STRICT_SCHEMA, ("properties",), city=True), id="boolean-subschema"),
        pytest.param({"type": "array", "items": {"type": "string"}}, id="root-array"),
        pytest.param({"anyOf": [STRICT_SCHEMA, {"type": "null"}]}, id="root-anyof"),
    ],
)
def test_strict_compatibility_rejects(schema: dict[str, Any]) -> None:
    """Schemas OpenAI's strict mode would reject with a 400 are not strict-compatible: an open
    object or a property left out of required anywhere (root, $defs, items, anyOf), keywords
    outside the strict subset, a $ref with siblings, a boolean subschema, a non-object root."""
    assert not is_strict_compatible(schema)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("purpose", ["turn", "summary"])
async def test_no_output_schema_sends_nothing_extra(
    api: Api, purpose: str, llm_server: FakeLLMServer
) -> None:
    """Without an output schema (always the case for summaries) requests are as before: no
    response_format, no tool_choice, no output tool, and the reply's text is passed on."""
    request = model_request(api, tools=TOOLS, purpose=purpose)
    response = await complete(api, llm_server, request)
    [sent] = llm_server.requests
    assert "response_format" not in sent.body
    assert "tool_choice" not in sent.body
    names = [t["name"] if api == "anthropic" else t["function"]["name"] for t in sent.body["tools"]]
    assert names == ["get_weather", "get_time"]
    assert response.text == "Hello from the fake model."


async def test_openai_structured_output_strict(llm_server: FakeLLMServer) -> None:
    """A strict-compatible output schema goes out as response_format json_schema with strict
    true, named after output_name, next to the tools; the reply's content (the JSON text)
    is the response's text, with no tool calls and end_turn."""
    llm_server.enqueue(Reply(answer=ANSWER))
    request = model_request(
        "openai", tools=TOOLS, output_schema=STRICT_SCHEMA, output_name="Forecast"
    )
    response = await complete("openai", llm_server, request)

    [sent] = llm_server.requests
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Forecast", "schema": STRICT_SCHEMA, "strict": True},
    }
    assert [t["function"]["name"] for t in sent.body["tools"]] == ["get_weather", "get_time"]
    assert "tool_choice" not in sent.body
    assert response.text == json.dumps(ANSWER)  # the content, verbatim
    assert response.tool_calls == []
    assert response.stop_reason == "end_turn"


async def test_openai_structured_output_not_strict(llm_server: FakeLLMServer) -> None:
    """A schema outside the strict subset (pydantic's usual shape) is sent verbatim with strict
    false; the compatible provider sends response_format the same way."""
    schema = LooseForecast.model_json_schema()
    client = openai.AsyncOpenAI(api_key="x", base_url=llm_server.openai_base_url, max_retries=0)
    provider = OpenAIProvider(client, name="compatible")
    llm_server.enqueue(Reply(answer={"city": "Paris"}))
    request = model_request("openai", output_schema=schema, output_name="LooseForecast")
    response = await provider.complete(request, "llama3.2")

    [sent] = llm_server.requests
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "LooseForecast", "schema": schema, "strict": False},
    }
    assert json.loads(response.text) == {"city": "Paris"}


async def test_openai_structured_output_keeps_tool_calls(llm_server: FakeLLMServer) -> None:
    """Tool calls next to structured content come through as usual."""
    llm_server.enqueue(
        Reply(answer=ANSWER, tool_calls=(FakeToolCall("get_time", '{"tz":"UTC"}', id="call_1"),))
    )
    request = model_request("openai", tools=TOOLS, output_schema=STRICT_SCHEMA)
    response = await complete("openai", llm_server, request)
    assert json.loads(response.text) == ANSWER
    assert response.tool_calls == [ToolCall(id="call_1", name="get_time", arguments='{"tz":"UTC"}')]
    assert response.stop_reason == "tool_use"


async def test_openai_refusal_is_the_text(llm_server: FakeLLMServer) -> None:
    """A refusal (content null, message.refusal set) becomes the text, so the run shows it
    (and, with an output schema, the workflow's schema check reports it is not JSON)."""
    llm_server.enqueue(Reply(refusal="I can't help with that."))
    request = model_request("openai", output_schema=STRICT_SCHEMA)
    response = await complete("openai", llm_server, request)
    assert response.text == "I can't help with that."
    assert response.tool_calls == []


async def test_anthropic_structured_output_request(llm_server: FakeLLMServer) -> None:
    """An output schema adds one last tool named output_name, with the schema as input_schema
    and the output tool description, and tool_choice any; the cache breakpoint moves to that
    last tool, and the system prompt keeps its own."""
    request = model_request(
        "anthropic", tools=TOOLS, output_schema=STRICT_SCHEMA, output_name="Forecast"
    )
    await complete("anthropic", llm_server, request)

    [sent] = llm_server.requests
    body = sent.body
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["get_weather", "get_time", "Forecast"]
    assert body["tools"][-1] == {
        "name": "Forecast",
        "description": OUTPUT_TOOL_DESCRIPTION,
        "input_schema": STRICT_SCHEMA,
        "cache_control": {"type": "ephemeral"},
    }
    assert [("cache_control" in t) for t in body["tools"]] == [False, False, True]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "response_format" not in body


async def test_anthropic_structured_answer(llm_server: FakeLLMServer) -> None:
    """A reply calling only the output tool is the final answer: text is exactly the JSON of
    the call's input (any text block dropped), no tool calls, end_turn. Without agent tools,
    the output tool is the only (and cached) tool."""
    llm_server.enqueue(Reply(text="Here is the forecast.", answer=ANSWER))
    request = model_request("anthropic", output_schema=STRICT_SCHEMA)
    response = await complete("anthropic", llm_server, request)

    [sent] = llm_server.requests
    assert [(t["name"], t["cache_control"]) for t in sent.body["tools"]] == [
        ("final_answer", {"type": "ephemeral"})
    ]
    assert response.text == json.dumps(ANSWER)
    assert response.tool_calls == []
    assert response.stop_reason == "end_turn"


async def test_anthropic_output_call_next_to_other_tools(llm_server: FakeLLMServer) -> None:
    """Output tool called together with another tool: the other call is kept (with the text),
    the output call is dropped, and the turn stays tool_use, so the model answers again."""
    llm_server.enqueue(
        Reply(
            text="Checking first.",
            tool_calls=(FakeToolCall("get_weather", {"city": "Paris"}, id="toolu_01W"),),
            answer=ANSWER,
        )
    )
    request = model_request("anthropic", tools=TOOLS, output_schema=STRICT_SCHEMA)
    response = await complete("anthropic", llm_server, request)
    assert response.tool_calls == [
        ToolCall(id="toolu_01W", name="get_weather", arguments='{"city": "Paris"}')
    ]
    assert response.text == "Checking first."
    assert response.stop_reason == "tool_use"


async def test_anthropic_cut_off_answer_keeps_max_tokens(llm_server: FakeLLMServer) -> None:
    """An output call in a reply cut off by max_tokens still becomes the text, but the stop
    reason stays max_tokens: its input may be incomplete."""
    llm_server.enqueue(Reply(answer={"city": "Par"}, stop_reason="max_tokens"))
    request = model_request("anthropic", output_schema=STRICT_SCHEMA)
    response = await complete("anthropic", llm_server, request)
    assert response.text == '{"city": "Par"}'
    assert response.tool_calls == []
    assert response.stop_reason == "max_tokens"


async def test_anthropic_output_name_taken(llm_server: FakeLLMServer) -> None:
    """An output_name that is also one of the agent's tools is refused before any request:
    a non-retryable OutputNameTaken naming the clash, which to_activity_error leaves as is."""
    request = model_request(
        "anthropic", tools=TOOLS, output_schema=STRICT_SCHEMA, output_name="get_time"
    )
    with pytest.raises(ApplicationError) as info:
        await complete("anthropic", llm_server, request)
    assert info.value.type == "OutputNameTaken"
    assert info.value.non_retryable
    assert "'get_time'" in info.value.message
    assert to_activity_error(info.value) is info.value
    assert llm_server.requests == []


# -- through real Temporal retries ---------------------------------------------------------------

RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=5
)
CALL_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name="ProviderTestCallModel")
class CallModelWorkflow:
    """Test-only: one ``call_model`` activity with a fast retry policy."""

    @workflow.run
    async def run(self, request: ModelRequest) -> ModelResponse:
        response: ModelResponse = await workflow.execute_activity(
            "call_model",
            request,
            result_type=ModelResponse,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=RETRY_POLICY,
        )
        return response


async def call_model_through_temporal(
    client: Client, api: Api, server: FakeLLMServer, request: ModelRequest
) -> ModelResponse:
    task_queue = f"providers-{uuid.uuid4()}"
    activities = ModelActivities({api: make_provider(api, server)})
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CallModelWorkflow],
        activities=[activities.call_model],
    ):
        return await client.execute_workflow(
            CallModelWorkflow.run, request, id=f"providers-{uuid.uuid4()}", task_queue=task_queue
        )


@pytest.mark.parametrize("api", APIS)
async def test_temporal_waits_out_retry_after(
    api: Api, llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """A 429 with Retry-After: 1 is retried by Temporal no sooner than a second later."""
    llm_server.enqueue(HttpError.rate_limited(retry_after="1"), Reply(text="finally"))
    response = await call_model_through_temporal(
        temporal_env.client, api, llm_server, model_request(api)
    )
    assert response.text == "finally"
    first, second = llm_server.requests
    assert second.received_at - first.received_at >= 1.0


@pytest.mark.parametrize("api", APIS)
async def test_temporal_retries_server_error(
    api: Api, llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """A 500 is retried and the second attempt's reply is the result."""
    llm_server.enqueue(HttpError.server_error(500), Reply(text="recovered"))
    response = await call_model_through_temporal(
        temporal_env.client, api, llm_server, model_request(api)
    )
    assert response.text == "recovered"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("api", APIS)
async def test_temporal_fails_fast_on_bad_request(
    api: Api, llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """A 400 fails the call after exactly one request, with the provider's message."""
    llm_server.enqueue(HttpError.bad_request("messages.0.content: must not be empty"))
    started = time.monotonic()
    with pytest.raises(WorkflowFailureError) as info:
        await call_model_through_temporal(temporal_env.client, api, llm_server, model_request(api))
    assert time.monotonic() - started < CALL_TIMEOUT.total_seconds()
    assert len(llm_server.requests) == 1
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError)
    failure = activity_error.cause
    assert isinstance(failure, ApplicationError)
    assert failure.type == "ProviderBadRequest" and failure.non_retryable
    assert "messages.0.content: must not be empty" in failure.message


@pytest.mark.parametrize("api", APIS)
async def test_temporal_retries_dropped_connection(
    api: Api, llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """A connection dropped without a response is retried and the call succeeds."""
    llm_server.enqueue(DropConnection(), Reply(text="reconnected"))
    response = await call_model_through_temporal(
        temporal_env.client, api, llm_server, model_request(api)
    )
    assert response.text == "reconnected"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("api", APIS)
async def test_idempotency_key_is_stable_across_attempts(
    api: Api, llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """Every attempt Temporal makes sends the same Idempotency-Key: the request's own."""
    key = f"wf-{uuid.uuid4()}:step-3"
    llm_server.enqueue(
        HttpError.server_error(503), DropConnection(), HttpError.rate_limited(), Reply(text="ok")
    )
    response = await call_model_through_temporal(
        temporal_env.client, api, llm_server, model_request(api, key=key)
    )
    assert response.text == "ok"
    assert [r.header("Idempotency-Key") for r in llm_server.requests] == [key] * 4


async def test_temporal_fails_fast_on_output_name_taken(
    llm_server: FakeLLMServer, temporal_env: WorkflowEnvironment
) -> None:
    """OutputNameTaken fails the call_model activity on its first attempt, without any request."""
    request = model_request(
        "anthropic", tools=TOOLS, output_schema=STRICT_SCHEMA, output_name="get_weather"
    )
    with pytest.raises(WorkflowFailureError) as info:
        await call_model_through_temporal(temporal_env.client, "anthropic", llm_server, request)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError)
    failure = activity_error.cause
    assert isinstance(failure, ApplicationError)
    assert failure.type == "OutputNameTaken" and failure.non_retryable
    assert llm_server.requests == []
