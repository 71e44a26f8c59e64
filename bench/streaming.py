"""What streaming costs a run's history: events and bytes per step, streaming off and on.

    python -m bench.streaming [--steps 10] [--words 60] [--chunk-ms 50] [--batch-ms 200]

Three runs of the same agent on the offline scripted model, side by side in one run: streaming
off; on with nobody watching; on with a subscriber following the stream (``follow_stream``, as
``starter.py run --stream`` does). Each step the model says ``--words`` words, streamed a few
words at a time ``--chunk-ms`` apart (so a streamed call lasts about words / 3 x chunk-ms; the
run without streaming waits as long in one piece), then calls a cheap tool. The activity sends
buffered text every ``--batch-ms`` (``DURABLE_AGENTS_STREAM_BATCH_MS``): one signal each, and
each signal a workflow task. A subscriber's long polls are updates, in history too.

Figures are whole-history totals divided by the steps (model calls), so they include the
run's fixed start and end; the "extra" columns are the difference from streaming off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.providers.scripted import STREAM_WORDS_PER_CHUNK, ScriptedProvider
from bench import RESULTS
from bench._harness import dev_server
from durable_agents.agents import AgentRegistry, default_registry
from durable_agents.agents._definition import Agent
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.effects import SqliteEffectLedger
from durable_agents.streaming.consumer import StreamConsumer, follow_stream
from durable_agents.testing import Script, ScriptedCall, ScriptedReply, ScriptView
from examples import AGENT_MODULES
from examples.soak import soak_chunk
from worker import build_worker

WORDS = "the model explains what it found and what it will do next in plain words".split()


@dataclass
class Figures:
    mode: str
    steps: int
    events_per_step: float
    bytes_per_step: float
    stream_signals_per_step: float
    stream_polls_per_step: float
    seconds_per_step: float
    chunks_seen: int = 0


def streamer(steps: int, words: int) -> tuple[Agent, Script]:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(words)) + "."

    def script(view: ScriptView) -> ScriptedReply:
        if view.step <= steps - 1:
            return ScriptedReply(
                text=text, calls=[ScriptedCall("soak_chunk", {"step": view.step, "size": 10})]
            )
        return ScriptedReply(text=text)

    agent = Agent(
        name="bench-streamer",
        description="Says some words and calls a cheap tool, every step.",
        system_prompt="Talk, then call soak_chunk.",
        tools=[soak_chunk],
        max_steps=steps,
    )
    return agent, script


async def history_of(client: Client, workflow_id: str) -> tuple[int, int, int, int]:
    """(events, bytes, stream publish signals, stream poll updates)."""
    events = size = signals = polls = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        events += 1
        size += event.ByteSize()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attributes = event.workflow_execution_signaled_event_attributes
            signals += attributes.signal_name == "__temporal_workflow_stream_publish"
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request
            polls += name.input.name == "__temporal_workflow_stream_poll"
    return events, size, signals, polls


async def one_run(client: Client, queue: str, agent: Agent, mode: str) -> Figures:
    workflow_id = f"bench-stream-{mode}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent=agent.name, task="talk", stream=mode != "off"),
        id=workflow_id,
        task_queue=queue,
        result_type=AgentResult,
    )
    consumer = StreamConsumer()
    if mode == "watched":
        await follow_stream(client, workflow_id, consumer)
    result = await handle.result()
    elapsed = time.perf_counter() - started
    if mode == "watched" and consumer.transcript()[-1] != result.output:
        raise AssertionError("the subscriber's text is not the run's output")
    events, size, signals, polls = await history_of(client, workflow_id)
    steps = result.steps
    return Figures(
        mode=mode,
        steps=steps,
        events_per_step=events / steps,
        bytes_per_step=size / steps,
        stream_signals_per_step=signals / steps,
        stream_polls_per_step=polls / steps,
        seconds_per_step=elapsed / steps,
        chunks_seen=consumer.text_events,
    )


async def main(steps: int, words: int, chunk_ms: float, batch_ms: float) -> list[Figures]:
    os.environ["DURABLE_AGENTS_STREAM_BATCH_MS"] = str(batch_ms)
    agent, script = streamer(steps, words)
    registry: AgentRegistry = default_registry(AGENT_MODULES).copy()
    registry.register(agent)
    registry.scripts.add(agent, script)
    pieces = -(-words // STREAM_WORDS_PER_CHUNK)
    streamed_call = (pieces - 1) * chunk_ms / 1000
    env = await dev_server()
    figures: list[Figures] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for mode in ("off", "unwatched", "watched"):
                queue = f"bench-stream-{uuid.uuid4().hex[:8]}"
                # Without streaming the call waits as long as a streamed one, in one piece.
                provider = ScriptedProvider(
                    registry.scripts,
                    latency_seconds=streamed_call if mode == "off" else 0.0,
                    stream_chunk_seconds=chunk_ms / 1000,
                )
                async with build_worker(
                    env.client, queue, registry=registry, providers={"scripted": provider},
                    ledger=SqliteEffectLedger(Path(scratch) / f"{mode}.db"), mcp_servers={},
                ):  # fmt: skip
                    figures.append(await one_run(env.client, queue, agent, mode))
    finally:
        await env.shutdown()
    print_table(figures, steps, words, streamed_call, batch_ms)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "streaming.json").write_text(json.dumps([asdict(f) for f in figures], indent=2))
    return figures


def print_table(
    figures: list[Figures], steps: int, words: int, call_seconds: float, batch_ms: float
) -> None:
    base = figures[0]
    print(
        f"\nstreaming: {steps} steps, {words} words a step, a streamed call ~{call_seconds:.2f} s,"
        f" batches every {batch_ms:.0f} ms (per step; extra = minus streaming off)"
    )
    header = (
        f"{'mode':<10} {'events':>7} {'extra':>6} {'bytes':>8} {'extra':>7} "
        f"{'signals':>8} {'polls':>6} {'s/step':>7} {'chunks':>7}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        extra_events = f.events_per_step - base.events_per_step
        extra_bytes = f.bytes_per_step - base.bytes_per_step
        print(
            f"{f.mode:<10} {f.events_per_step:7.1f} {extra_events:+6.1f}"
            f" {f.bytes_per_step:8.0f} {extra_bytes:+7.0f}"
            f" {f.stream_signals_per_step:8.1f} {f.stream_polls_per_step:6.1f}"
            f" {f.seconds_per_step:7.2f} {f.chunks_seen:7d}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--chunk-ms", type=float, default=50.0)
    parser.add_argument("--batch-ms", type=float, default=200.0)
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.words, args.chunk_ms, args.batch_ms))
