"""Streamed runs: model text reaches a consumer while the call is still open, and each reply
exactly once, however often its call was retried (a stream cut halfway, a worker killed -9).

Real components throughout: the embedded dev server, the real anthropic and openai SDKs against
the loopback API (``tests/fakes/llm_server.py``) and Temporal's workflow streams.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from activities.providers.anthropic_provider import AnthropicProvider
from activities.providers.base import ModelProvider
from activities.providers.openai_provider import OpenAIProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.streaming.consumer import StreamConsumer, follow_stream
from durable_agents.streaming.events import (
    AttemptStarted,
    CallFailed,
    ReplyDone,
    StepStarted,
    TextDelta,
)
from durable_agents.streaming.terminal import MODEL_PREFIX, TerminalView
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.test_cli import address, run_cli
from tests.worker_processes import WorkerProcess, wait_for_poller

MODELS = ["anthropic:claude-haiku-4-5", "openai:gpt-4.1-mini"]
STREAM_SIGNAL = "__temporal_workflow_stream_publish"
STREAM_POLL = "__temporal_workflow_stream_poll"


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


async def wait_until(condition: object, what: str, seconds: float = 60) -> None:
    """Poll ``condition()`` until true (a wait, not a timing assertion)."""
    for _ in range(int(seconds / 0.05)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def stream_events(handle: WorkflowHandle[object, AgentResult]) -> tuple[int, int]:
    """(stream publish signals, stream poll updates) in the run's history."""
    signals = polls = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals += event.workflow_execution_signaled_event_attributes.signal_name == (
                STREAM_SIGNAL
            )
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            polls += (
                event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                == STREAM_POLL
            )
    return signals, polls


@pytest.mark.parametrize("model", MODELS)
async def test_text_arrives_while_the_call_is_open(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer, model: str
) -> None:
    """The consumer has the first pieces of the reply while the provider is still holding the
    stream open (the call cannot have ended), and the text it assembles is the result's."""
    resume = threading.Event()
    text = "The sums are 3 and 42, and this reply reaches the consumer in six pieces"
    assert len(text) % 6 == 0  # six equal pieces: the first three are the first half
    llm.enqueue(Reply(text=text, text_chunks=6, pause_after=3, resume=resume))
    consumer = StreamConsumer()
    async with running_worker(client, task_queue, registry, providers(llm)):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add", model=model, stream=True),
            id=f"stream-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        following = asyncio.create_task(follow_stream(client, handle.id, consumer))
        sent = text[: len(text) // 2]  # the first 3 of 6 pieces, before the server holds
        try:
            await wait_until(
                lambda: "model-1" in consumer.calls and consumer.calls["model-1"].text == sent,
                "the first half of the text",
            )
            assert not consumer.calls["model-1"].done
        finally:
            resume.set()
        result = await handle.result()
        ended = await asyncio.wait_for(following, 60)
    assert ended is not None and ended.status == "completed"
    assert consumer.text_events >= 2  # at least one before the hold and one after
    assert consumer.transcript() == [result.output] == [text]
    assert consumer.corrections == 0 and consumer.discarded == []
    assert llm.requests[0].body["stream"] is True


@pytest.mark.parametrize("model", MODELS)
async def test_a_stream_cut_halfway_is_shown_once(
    client: Client, task_queue: str, registry: AgentRegistry, llm: FakeLLMServer, model: str
) -> None:
    """Attempt 1's stream drops after half its text; attempt 2 (same idempotency key) succeeds.
    The consumer ends with the reply exactly once, assembled live from attempt 2, and attempt
    1's partial text only in what it discarded."""
    first = "FIRST attempt: this text is cut off halfway and must not be kept."
    final = "Second attempt: the sums are 3 and 42."
    llm.enqueue(
        Reply(text=first, text_chunks=6, cut_after=3),
        Reply(text=final, text_chunks=5),
    )
    consumer = StreamConsumer()
    async with running_worker(client, task_queue, registry, providers(llm)):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add", model=model, stream=True),
            id=f"stream-cut-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        following = asyncio.create_task(follow_stream(client, handle.id, consumer))
        result = await handle.result()
        await asyncio.wait_for(following, 60)
    assert result.output == final
    assert consumer.transcript() == [final]
    assert consumer.corrections == 0  # attempt 2's live text was the reply, nothing patched
    assert [(d.call, d.attempt) for d in consumer.discarded] == [("model-1", 1)]
    partial = consumer.discarded[0].text
    assert partial and first.startswith(partial) and partial != first
    assert "FIRST" not in "".join(consumer.transcript())
    keys = [r.header("idempotency-key") for r in llm.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


async def test_a_run_that_does_not_stream_has_no_stream_in_its_history(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Streaming is opt-in: without ``stream`` a run's input and model requests carry no stream
    fields and its history no stream signals or polls; with it, both appear."""
    async with running_worker(client, task_queue, registry):
        plain = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add"),
            id=f"plain-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        await plain.result()
        streamed = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add", stream=True),
            id=f"streamed-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        consumer = StreamConsumer()
        await asyncio.wait_for(follow_stream(client, streamed.id, consumer), 60)
        await streamed.result()
    assert await stream_events(plain) == (0, 0)
    history = (await plain.fetch_history()).to_json()
    assert "stream" not in history  # no input field, no request field, no handler names
    signals, polls = await stream_events(streamed)
    assert signals > 0 and polls > 0
    assert len(consumer.transcript()) == 2  # two steps, each reply once


async def test_starter_run_stream_prints_text_and_steps(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``starter.py run --stream`` (a subprocess, on the scripted model) prints each step as it
    starts and each reply's text once, then the result."""
    env = {
        "TEMPORAL_ADDRESS": address(client),
        "AGENTS_TASK_QUEUE": task_queue,
    }
    workflow_id = f"cli-stream-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        done = await run_cli(
            sys.executable, "starter.py", "run", "finops", "check the bill", "--stream",
            "--id", workflow_id, "--approve-as", "cli-test", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        handle = client.get_workflow_handle(workflow_id, result_type=AgentResult)
        result = await handle.result()
        status = await handle.query("status", result_type=AgentStatusView)
    live, _, summary = done.stdout.partition("-" * 72)
    live = live.replace("\n" + " " * len(MODEL_PREFIX), "\n")  # text lines are indented
    assert result.status == "completed" and result.output in summary
    for step in range(1, result.steps + 1):
        assert f"step {step}/" in live
    for step in result.model_dump()["tool_calls"]:
        assert f"-> {step['name']}(" in live
    # Each reply's text exactly once in the live part (the final one again in the summary).
    replies = [s.text.strip() for s in status.recent_steps if s.text]
    assert replies and all(live.count(text) == 1 for text in replies), live
    assert "void" not in live and "discarded" not in live  # no attempt was taken back


async def test_a_streamed_run_is_followed_across_continue_as_new(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A streamed run that continues as new after each step keeps its stream: the subscriber
    (following the workflow id) is told of the hand-over and gets both replies, once each."""
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add", stream=True, continue_as_new_after_steps=1),
            id=f"stream-can-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        consumer = StreamConsumer()
        ended = await asyncio.wait_for(follow_stream(client, handle.id, consumer), 60)
        result = await handle.result()
    assert result.runs == 2 and ended is not None and ended.status == "completed"
    assert [(c.runs, c.steps) for c in consumer.continued] == [(2, 1)]
    assert consumer.transcript()[-1] == result.output
    assert len(consumer.transcript()) == 2 and consumer.discarded == []
    assert list(consumer.calls) == ["model-1", "model-2"]


@pytest.mark.slow
async def test_a_worker_killed_mid_stream_leaves_the_reply_once(
    stored_client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """kill -9 of the worker while it streams step 1: the dead attempt cannot say it failed,
    but attempt 2 (on a new worker, after the heartbeat timeout) announces itself, the consumer
    drops attempt 1's text, and ends with step 1's reply exactly once."""
    client = stored_client
    env = {**worker_env, "SCRIPTED_STREAM_CHUNK_MS": "250"}
    workers.append(WorkerProcess(env, tmp_path / "worker-1.log"))
    for _ in range(4):  # a worker takes a while to start on a busy 2-core machine
        try:
            await wait_for_poller(client, task_queue)
            break
        except AssertionError:
            continue
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="finops", task="Why did the bill spike?", stream=True),
        id=f"stream-kill-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )
    consumer = StreamConsumer()
    following = asyncio.create_task(follow_stream(client, handle.id, consumer))
    try:
        await wait_until(
            lambda: "model-1" in consumer.calls and consumer.calls["model-1"].seq >= 2,
            "step 1's text streaming",
        )
        workers[0].kill9()
        shown = consumer.calls["model-1"].text
        assert not consumer.calls["model-1"].done
        workers.append(WorkerProcess(env, tmp_path / "worker-2.log"))
        await wait_until(lambda: consumer.calls["model-1"].done, "step 1's reply", seconds=120)
        await handle.cancel()
        ended = await asyncio.wait_for(following, 120)
    finally:
        following.cancel()
    status = await handle.query("status", result_type=AgentStatusView)
    reply = next(s.text for s in status.recent_steps if s.step == 1)
    assert ended is not None  # the stream closed with the run
    assert consumer.transcript()[0] == reply
    assert consumer.calls["model-1"].attempt == 2
    dropped = [d for d in consumer.discarded if d.call == "model-1"]
    assert [d.attempt for d in dropped] == [1] and dropped[0].text.startswith(shown)
    assert consumer.corrections == 0  # attempt 2's live text was the reply


def test_the_consumer_keeps_only_the_latest_attempt_and_the_recorded_reply() -> None:
    """The consumer's rules on their own: a newer attempt voids the older one's text, the older
    attempt's late text (a zombie past its timeout) and text after the reply are ignored, a
    duplicate piece is taken once, and a reply that differs from the live text replaces it."""
    consumer = StreamConsumer()
    feed = consumer.feed
    feed(StepStarted(call="model-1", step=1))
    feed(AttemptStarted(call="model-1", step=1, attempt=1))
    feed(TextDelta(call="model-1", step=1, attempt=1, seq=1, text="Partial "))
    feed(TextDelta(call="model-1", step=1, attempt=2, seq=1, text="Fresh "))  # no AttemptStarted
    feed(TextDelta(call="model-1", step=1, attempt=1, seq=2, text="zombie "))
    feed(TextDelta(call="model-1", step=1, attempt=2, seq=1, text="Fresh "))  # a duplicate
    feed(TextDelta(call="model-1", step=1, attempt=2, seq=2, text="answer."))
    feed(ReplyDone(call="model-1", step=1, text="Fresh answer."))
    feed(TextDelta(call="model-1", step=1, attempt=3, seq=1, text="late"))
    feed(StepStarted(call="model-2", step=2))
    feed(TextDelta(call="model-2", step=2, attempt=1, seq=1, text="Thinking"))
    feed(ReplyDone(call="model-2", step=2, text='{"answer": 42}'))  # structured: a tool call
    feed(StepStarted(call="model-3", step=3))
    feed(TextDelta(call="model-3", step=3, attempt=1, seq=1, text="Doomed"))
    feed(CallFailed(call="model-3", step=3, error="overloaded"))
    assert consumer.transcript() == ["Fresh answer.", '{"answer": 42}']
    assert [(d.call, d.attempt, d.text) for d in consumer.discarded] == [
        ("model-1", 1, "Partial "),
        ("model-3", 1, "Doomed"),
    ]
    assert consumer.corrections == 1


@pytest.mark.parametrize("tty", [True, False])
def test_the_terminal_takes_back_a_discarded_attempt(tty: bool) -> None:
    """On a terminal a discarded attempt's text is erased (cursor up over its lines, clear to
    the end of the screen); on a pipe a note says the text above is void. Either way the retry's
    text follows on a line of its own."""
    out = io.StringIO()
    consumer = StreamConsumer(TerminalView(out, tty=tty))
    consumer.feed(StepStarted(call="model-1", step=1, max_steps=5))
    consumer.feed(TextDelta(call="model-1", step=1, attempt=1, seq=1, text="Half a\nreply"))
    consumer.feed(TextDelta(call="model-1", step=1, attempt=2, seq=1, text="Whole reply."))
    consumer.feed(ReplyDone(call="model-1", step=1, text="Whole reply."))
    shown = out.getvalue()
    assert shown.startswith("step 1/5\n" + MODEL_PREFIX + "Half a\n")
    assert shown.endswith(MODEL_PREFIX + "Whole reply.\n")
    if tty:
        assert "\r\x1b[1A\x1b[J" in shown and "attempt 2 started" in shown
    else:
        assert "\x1b" not in shown and "the text of attempt 1 above is void" in shown
