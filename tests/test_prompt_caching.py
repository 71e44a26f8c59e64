"""Prompt caching that pays: where the Anthropic adapter puts cache breakpoints, and what both
adapters report and charge, with the real SDKs against the loopback server's cache accounting
(``tests/fakes/prompt_cache.py``), which caches and bills the way the two APIs do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import anthropic
import openai
import pytest

from activities.providers.anthropic_provider import (
    MAX_CACHE_BREAKPOINTS,
    AnthropicProvider,
    PromptCaching,
)
from activities.providers.openai_provider import OpenAIProvider
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest, ModelResponse
from durable_agents.contracts.pricing import ModelPrice
from durable_agents.contracts.tools import ToolSchema
from tests.fakes.llm_server import FakeLLMServer, FakeToolCall, Reply
from tests.fakes.prompt_cache import (
    OPENAI_INCREMENT_TOKENS,
    OPENAI_MIN_TOKENS,
    PromptCache,
)

SONNET = "claude-sonnet-4-5"  # caches prefixes from 1,024 tokens
pytestmark = pytest.mark.filterwarnings(f"ignore:The model '{SONNET}' is deprecated")
HAIKU = "claude-haiku-4-5"  # from 4,096
SONNET_PRICE = ModelPrice(model=SONNET, input=3.0, output=15.0, cache_read=0.30, cache_write=3.75)
GPT = "gpt-4.1"
GPT_PRICE = ModelPrice(model=GPT, input=2.0, output=8.0, cache_read=0.50, cache_write=2.0)

# About 1,500 tokens of system prompt: over Sonnet's minimum on its own.
SYSTEM = "You are a careful research assistant. " * 160
TOOLS = [
    ToolSchema(
        name="search",
        description="Search the archive.",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}},
    )
]
SEARCH = Reply(text="Searching.", tool_calls=(FakeToolCall("search", {"query": "more"}),))


class Conversation:
    """An agent's growing conversation: each step sends it all, and the model's tool call and
    its result (``result_chars`` long) join it."""

    def __init__(
        self, provider: Any, model: str, *, system: str = SYSTEM, first: str = "Go."
    ) -> None:
        self.provider = provider
        self.model = model
        self.system = system
        self.messages: list[Message] = [UserMessage(text=first)]
        self.responses: list[ModelResponse] = []

    async def step(self, result_chars: int = 2_000, results: int = 1) -> Usage:
        step = len(self.responses) + 1
        request = ModelRequest(
            agent="tester",
            model=self.model,
            system=self.system,
            messages=self.messages,
            tools=TOOLS,
            idempotency_key=f"run:{step}",
            step=step,
        )
        response = await self.provider.complete(request, self.model)
        self.responses.append(response)
        calls = [
            response.tool_calls[0].model_copy(update={"id": f"t{step}-{n}"}) for n in range(results)
        ]
        self.messages.append(AssistantMessage(text=response.text, tool_calls=calls))
        for call in calls:
            content = f"step {step} {call.id}: " + "r" * result_chars
            self.messages.append(
                ToolResultMessage(tool_call_id=call.id, name=call.name, content=content)
            )
        return response.usage


def anthropic_provider(
    server: FakeLLMServer, caching: PromptCaching = "conversation"
) -> AnthropicProvider:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    return AnthropicProvider(client, prompt_caching=caching)


def openai_provider(server: FakeLLMServer) -> OpenAIProvider:
    return OpenAIProvider(
        openai.AsyncOpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
    )


def breakpoints(body: Any) -> int:
    """The ``cache_control`` markers anywhere in a request body."""
    return json.dumps(body).count('"cache_control"')


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=SEARCH, prompt_cache=PromptCache()) as server:
        yield server


# -- Anthropic: breakpoints on the conversation ------------------------------------------------


async def test_conversation_writes_then_reads(server: FakeLLMServer) -> None:
    """Step 1 writes its whole prompt to the cache; every later step reads all of the previous
    step's prompt and writes only what was added since, so nothing is billed as plain input."""
    conversation = Conversation(anthropic_provider(server), SONNET)
    usages = [await conversation.step() for _ in range(4)]

    assert usages[0].cache_read_tokens == 0
    assert usages[0].cache_write_tokens > 1_500  # the system prompt and more
    for before, after in pairwise(usages):
        assert after.cache_read_tokens == before.cache_read_tokens + before.cache_write_tokens
        assert 500 < after.cache_write_tokens < 600  # one reply and one 2,000-character result
    assert all(usage.input_tokens == 0 for usage in usages)  # the last block is a breakpoint


async def test_changing_an_early_message_breaks_the_hit(server: FakeLLMServer) -> None:
    """A prefix is read only while it is identical: after the first user message changes, the
    next call reads just the tools and system prompt, and writes the conversation again."""
    conversation = Conversation(anthropic_provider(server), SONNET, first="Find the 2019 report.")
    first = await conversation.step()
    second = await conversation.step()
    conversation.messages[0] = UserMessage(text="Find the 2020 report.")
    third = await conversation.step()

    whole_second = second.cache_read_tokens + second.cache_write_tokens
    assert first.cache_write_tokens > 0 and second.cache_read_tokens > 0
    # Tools and system prompt only: about 1,500 tokens of the 2,000-odd step 1 wrote.
    assert 1_500 < third.cache_read_tokens < first.cache_write_tokens
    assert third.cache_read_tokens + third.cache_write_tokens > whole_second


async def test_below_the_minimum_nothing_is_cached(server: FakeLLMServer) -> None:
    """Prefixes shorter than the model's minimum are neither written nor read: a short prompt
    is all plain input, every time; and what Sonnet caches (1,024 tokens on) Haiku 4.5 does not
    (4,096)."""
    short = Conversation(anthropic_provider(server), SONNET, system="Be brief.")
    usages = [await short.step(result_chars=400) for _ in range(2)]
    assert [(u.cache_read_tokens, u.cache_write_tokens) for u in usages] == [(0, 0), (0, 0)]
    assert usages[1].input_tokens > usages[0].input_tokens > 0

    haiku = Conversation(anthropic_provider(server), HAIKU)
    usages = [await haiku.step() for _ in range(2)]
    assert [(u.cache_read_tokens, u.cache_write_tokens) for u in usages] == [(0, 0), (0, 0)]
    assert usages[1].input_tokens > 2_000  # cached on Sonnet (see the first test)


async def test_breakpoints_never_exceed_the_limit(server: FakeLLMServer) -> None:
    """Whatever the request (with or without tools, system prompt, structured output; short or
    long conversations), at most four cache_control blocks; and the server refuses a fifth,
    as the API does."""
    provider = anthropic_provider(server)
    for system in ("", SYSTEM):
        for tools in ([], TOOLS):
            for schema in (None, {"type": "object", "properties": {}}):
                conversation = Conversation(provider, SONNET, system=system)
                for _ in range(3):
                    conversation.messages.append(UserMessage(text="and?"))
                    request = ModelRequest(
                        agent="t",
                        model=SONNET,
                        system=system,
                        messages=conversation.messages,
                        tools=tools,
                        output_schema=schema,
                        idempotency_key="k",
                        step=1,
                    )
                    await provider.complete(request, SONNET)
                    await conversation.step(result_chars=10)
    counts = [breakpoints(request.body) for request in server.requests]
    assert max(counts) == MAX_CACHE_BREAKPOINTS and min(counts) >= 1

    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    marked: Any = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks"):
        await client.messages.create(
            model=SONNET,
            max_tokens=10,
            system=[marked, marked],
            messages=[{"role": "user", "content": [marked, marked, marked]}],
        )


async def test_previous_breakpoint_bridges_a_wide_step(server: FakeLLMServer) -> None:
    """A step that adds more blocks than the API looks back (30 parallel tool results) still
    reads everything the previous call wrote: the previous call's last block keeps its
    breakpoint. With the last block's breakpoint alone, the fake (like the API) misses."""
    conversation = Conversation(anthropic_provider(server), SONNET)
    first = await conversation.step(result_chars=50, results=30)
    second = await conversation.step(result_chars=50)
    assert second.cache_read_tokens == first.cache_read_tokens + first.cache_write_tokens

    body = server.requests[-1].body
    marked = [
        (turn, index)
        for turn, message in enumerate(body["messages"])
        for index, block in enumerate(message["content"])
        if "cache_control" in block
    ]
    assert marked == [(0, 0), (2, 29)]  # where the first request ended; where this one ends

    # Replayed on an empty cache, without the breakpoint where the first request ended.
    first_body, second_body = (request.body for request in server.requests)
    del second_body["messages"][0]["content"][0]["cache_control"]
    server.prompt_cache = PromptCache()
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    await client.messages.create(**first_body)
    alone = await client.messages.create(**second_body)
    assert alone.usage.cache_read_input_tokens < second.cache_read_tokens  # tools, system only


async def test_lookback_reaches_twenty_blocks(server: FakeLLMServer) -> None:
    """The fake finds an earlier entry up to 20 blocks before a breakpoint, not 21."""
    client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
    ephemeral: Any = {"type": "ephemeral"}

    def body(extra: int) -> Any:
        blocks: list[Any] = [{"type": "text", "text": "p" * 8_000}]
        blocks += [{"type": "text", "text": f"block {n}"} for n in range(extra)]
        blocks[-1] = {**blocks[-1], "cache_control": ephemeral}
        return {
            "model": SONNET,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": blocks}],
        }

    written = await client.messages.create(**body(0))
    assert 2_000 < (written.usage.cache_creation_input_tokens or 0) < 2_050  # 8,000 characters
    within = await client.messages.create(**body(20))
    assert within.usage.cache_read_input_tokens == written.usage.cache_creation_input_tokens
    server.prompt_cache = PromptCache()
    await client.messages.create(**body(0))
    beyond = await client.messages.create(**body(21))
    assert beyond.usage.cache_read_input_tokens == 0


async def test_cache_entries_expire() -> None:
    """An entry lives five minutes from its last use (an hour with ttl 1h)."""
    now = [0.0]
    with FakeLLMServer(default=SEARCH, prompt_cache=PromptCache(clock=lambda: now[0])) as server:
        conversation = Conversation(anthropic_provider(server), SONNET)
        await conversation.step()
        now[0] += 299
        assert (await conversation.step()).cache_read_tokens > 0
        now[0] += 301
        late = await conversation.step()
        assert late.cache_read_tokens == 0 and late.cache_write_tokens > 0


@pytest.mark.parametrize("caching", ["system", "off"])
async def test_caching_settings(caching: PromptCaching, server: FakeLLMServer) -> None:
    """``system`` marks only the last tool and the system prompt (reads stop there); ``off``
    marks nothing, so everything is plain input."""
    conversation = Conversation(anthropic_provider(server, caching), SONNET)
    usages = [await conversation.step() for _ in range(3)]
    assert [breakpoints(r.body) for r in server.requests] == [2 if caching == "system" else 0] * 3
    if caching == "off":
        assert all(u.cache_read_tokens == u.cache_write_tokens == 0 for u in usages)
    else:
        assert usages[0].cache_write_tokens == usages[2].cache_read_tokens > 1_500
        assert usages[2].input_tokens > usages[0].input_tokens


def test_prompt_caching_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """ANTHROPIC_PROMPT_CACHING picks the setting; a value it does not know fails the worker's
    start with the value named."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.delenv("ANTHROPIC_PROMPT_CACHING", raising=False)
    assert AnthropicProvider.from_env()._prompt_caching == "conversation"  # type: ignore[union-attr]
    monkeypatch.setenv("ANTHROPIC_PROMPT_CACHING", "OFF")
    assert AnthropicProvider.from_env()._prompt_caching == "off"  # type: ignore[union-attr]
    monkeypatch.setenv("ANTHROPIC_PROMPT_CACHING", "sometimes")
    with pytest.raises(ValueError, match="'sometimes'"):
        AnthropicProvider.from_env()


async def test_anthropic_cost_uses_cache_prices(server: FakeLLMServer) -> None:
    """Each call's cost prices plain input, cache reads and cache writes at their own prices,
    and caching makes a four-step run cheaper than the same run uncached."""
    cached = Conversation(anthropic_provider(server), SONNET)
    for _ in range(4):
        await cached.step()
    server.prompt_cache = PromptCache()
    uncached = Conversation(anthropic_provider(server, "off"), SONNET)
    for _ in range(4):
        await uncached.step()

    for response in cached.responses + uncached.responses:
        assert response.cost_usd == pytest.approx(SONNET_PRICE.cost(response.usage))
    usage = cached.responses[1].usage
    assert usage.cache_read_tokens > 0 and usage.cache_write_tokens > 0
    per_million = (
        usage.input_tokens * 3.0
        + usage.output_tokens * 15.0
        + usage.cache_read_tokens * 0.30
        + usage.cache_write_tokens * 3.75
    )
    assert cached.responses[1].cost_usd == pytest.approx(per_million / 1_000_000)
    cost = sum(r.cost_usd for r in cached.responses)
    assert cost < 0.6 * sum(r.cost_usd for r in uncached.responses)


# -- OpenAI: automatic caching, read from cached_tokens ----------------------------------------


async def test_openai_cached_tokens_are_read(server: FakeLLMServer) -> None:
    """Prompts of 1,024 tokens and more are cached in 128-token steps: the next call's
    cached_tokens is the longest such prefix of the last prompt, split out of input tokens and
    priced at the cached-input price. Shorter prompts are not cached."""
    short = Conversation(openai_provider(server), GPT, system="Be brief.")
    assert [(await short.step(result_chars=100)).cache_read_tokens for _ in range(2)] == [0, 0]

    conversation = Conversation(openai_provider(server), GPT)
    usages = [await conversation.step() for _ in range(3)]
    prompts = [u.input_tokens + u.cache_read_tokens for u in usages]
    assert usages[0].cache_read_tokens == 0
    for prompt, usage in zip(prompts, usages[1:], strict=False):
        cached = usage.cache_read_tokens
        assert (cached - OPENAI_MIN_TOKENS) % OPENAI_INCREMENT_TOKENS == 0
        assert prompt - OPENAI_INCREMENT_TOKENS < cached <= prompt
    assert all(u.cache_write_tokens == 0 for u in usages)
    for response in conversation.responses:
        assert response.cost_usd == pytest.approx(GPT_PRICE.cost(response.usage))
