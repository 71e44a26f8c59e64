"""Provider rate limits across workers: Temporal's queue-wide activity limit, not a limiter of
our own. Many runs at once on the real ``anthropic`` SDK against a loopback provider that answers
429 above ``PROVIDER_RATE`` requests a second."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator

import anthropic
import pytest
from temporalio.client import Client, WorkflowHandle

from activities.providers.anthropic_provider import AnthropicProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.runtime.rate_limits import (
    ProviderRateLimit,
    model_task_queue,
    rate_limits_from_env,
)
from tests.conftest import running_worker
from tests.fakes.llm_server import (
    FakeLLMServer,
    FakeToolCall,
    Outcome,
    RateLimit,
    RecordedRequest,
    Reply,
)

PROVIDER_RATE = 5
"""Requests a second the fake provider accepts (a bucket of one second's worth): low enough
that ``RUNS`` starting together overrun it even on a slow, busy machine."""
QUEUE_RATE_PER_MINUTE = PROVIDER_RATE * 60 * 0.9
"""The limit the workers set: just under the provider's."""
RUNS = 12
CALLS_PER_RUN = 3
MODEL = "anthropic:claude-haiku-4-5"


def two_adds_then_answer(request: RecordedRequest) -> Outcome:
    """Each run's reply by its own conversation: a tool call for each of the first two model
    calls, then the answer, whichever order the runs' requests arrive in."""
    turns = sum(1 for m in request.body["messages"] if m["role"] == "assistant")
    if turns < CALLS_PER_RUN - 1:
        return Reply(text="Adding.", tool_calls=(FakeToolCall("add", {"a": turns, "b": 1}),))
    return Reply(text="Done.")


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    limit = RateLimit(requests_per_second=PROVIDER_RATE)
    with FakeLLMServer(rate_limit=limit, responder=two_adds_then_answer) as server:
        yield server


async def run_many(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer
) -> list[WorkflowHandle[object, AgentResult]]:
    """``RUNS`` runs of ``test-adder`` at once, on a warmed-up worker (the first run's workflow
    tasks are slow); each must complete. The provider's journal covers the ``RUNS`` only."""
    provider = AnthropicProvider(
        anthropic.AsyncAnthropic(api_key="test", base_url=llm.base_url, max_retries=0)
    )
    async with running_worker(client, task_queue, registry, {"anthropic": provider}):
        await (await start_run(client, task_queue, "warm-up")).result()
        llm.reset()  # a full bucket and an empty journal
        handles = [await start_run(client, task_queue, f"{i}") for i in range(RUNS)]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 50)
    assert [r.status for r in results] == ["completed"] * RUNS
    assert all(r.steps == CALLS_PER_RUN for r in results)
    return handles


async def start_run(
    client: Client, task_queue: str, name: str
) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="test-adder", task="add some numbers", model=MODEL),
        id=f"rate-limited-{name}-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


def traffic(llm: FakeLLMServer) -> str:
    """The figures for docs/rate-limits.md: 429s, requests and how long they took."""
    requests = llm.requests
    seconds = requests[-1].received_at - requests[0].received_at
    return f"{llm.rate_limited} x 429 in {len(requests)} requests over {seconds:.1f} s"


async def model_call_queues(handle: WorkflowHandle[object, AgentResult]) -> set[str]:
    history = await handle.fetch_history()
    return {
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "call_model"
    }


async def test_without_a_limit_429s_are_retried_after_retry_after(
    client: Client,
    task_queue: str,
    registry: AgentRegistry,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no limit set, runs overrun the provider; every 429 is retried by Temporal, no
    sooner than its ``Retry-After`` (whole seconds), and all runs still complete."""
    monkeypatch.delenv("ANTHROPIC_REQUESTS_PER_MINUTE", raising=False)
    handles = await run_many(client, task_queue, registry, llm)
    print(f"\nno queue limit: {traffic(llm)}")
    assert llm.rate_limited > 0
    assert len(llm.requests) == RUNS * CALLS_PER_RUN + llm.rate_limited
    attempts: dict[str, list[float]] = defaultdict(list)  # every attempt but the last was a 429
    for request in llm.requests:
        attempts[str(request.header("idempotency-key"))].append(request.received_at)
    gaps = [b - a for times in attempts.values() for a, b in itertools.pairwise(times)]
    assert len(gaps) == llm.rate_limited and min(gaps) >= 0.95
    assert await model_call_queues(handles[0]) == {task_queue}


async def test_a_queue_limit_keeps_runs_under_the_provider_rate(
    client: Client,
    task_queue: str,
    registry: AgentRegistry,
    llm: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``ANTHROPIC_REQUESTS_PER_MINUTE`` just under the provider's rate, the model calls go
    to the provider's own queue, which the server dispatches no faster than that: (nearly) no
    429s, and all runs complete."""
    monkeypatch.setenv("ANTHROPIC_REQUESTS_PER_MINUTE", str(QUEUE_RATE_PER_MINUTE))
    handles = await run_many(client, task_queue, registry, llm)
    print(f"\nqueue limit {QUEUE_RATE_PER_MINUTE:g}/min: {traffic(llm)}")
    assert llm.rate_limited <= 2
    for handle in handles:
        assert await model_call_queues(handle) == {model_task_queue(task_queue, "anthropic")}


def test_limits_come_from_the_environment() -> None:
    """Only providers the worker has and that have a limit get a queue; bad values say which
    variable is wrong."""
    env = {"ANTHROPIC_REQUESTS_PER_MINUTE": "120", "COMPATIBLE_REQUESTS_PER_MINUTE": " "}
    limits = rate_limits_from_env("agents", ["scripted", "anthropic", "openai", "compatible"], env)
    assert limits == [ProviderRateLimit("anthropic", 120.0, "agents-model-anthropic")]
    assert limits[0].activities_per_second == 2.0
    for bad in ("0", "-5", "fast", "nan", "inf"):
        with pytest.raises(ValueError, match="OPENAI_REQUESTS_PER_MINUTE"):
            rate_limits_from_env("agents", ["openai"], {"OPENAI_REQUESTS_PER_MINUTE": bad})
