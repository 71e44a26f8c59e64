"""History bytes per step against conversation length, with and without payload offload.

    python -m bench.history_growth [--steps 20]

For each target conversation size (1k to 200k tokens) a ``soak`` run with the ``keep_all``
context policy (every model call sends the whole conversation) grows its conversation to that
size in ``--steps`` steps; the figure is the mean serialized size of the history events of its
last five steps. Once with the project's converter and a local payload store (the default), once
with plain pydantic (no offload), side by side in one run. Absolute bytes; the ratio column is
last-step bytes over those of the smallest conversation in the same column.

The conversation grows by one tool result a step, so bigger targets mean bigger tool results
(tokens x 4 / steps bytes each). With offload, the conversation each model request carries
leaves history from 2 KiB on, but a tool result is an ordinary payload: it stays in history,
readable by the stock tools, up to 32 KiB. So the "offload" column follows the size of one tool
result (which does not grow as the conversation does), and "minus result" subtracts it: what a
step costs history apart from its own tool output, flat however long the conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.contracts.context import ContextPolicy
from durable_agents.payload_storage import DEFAULT_INLINE_LIMIT_BYTES
from durable_agents.runtime.converter import data_converter_from_env
from examples.soak import SOAK_SCRIPTS, soak

TARGET_TOKENS = (1_000, 10_000, 50_000, 100_000, 200_000)
CHARS_PER_TOKEN = 4  # the scripted model's estimate
LAST_STEPS = 5


async def step_sizes(client: Client, workflow_id: str) -> list[int]:
    """Serialized bytes of each step's events (a step starts at its call_model scheduling)."""
    runs = [e.run_id async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    sizes: list[int] = []
    for run_id in reversed(runs):
        async for event in client.get_workflow_handle(
            workflow_id, run_id=run_id
        ).fetch_history_events():
            attributes = event.activity_task_scheduled_event_attributes
            if (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and attributes.activity_type.name == "call_model"
            ):
                sizes.append(0)
            if sizes:
                sizes[-1] += event.ByteSize()
    return sizes


async def measure(client: Client, queue: str, tokens: int, steps: int) -> float:
    size = tokens * CHARS_PER_TOKEN // steps
    workflow_id = f"growth-{tokens}-{uuid.uuid4()}"
    result = await client.execute_workflow(
        "AgentWorkflow",
        AgentInput(
            agent=soak.name,
            task=f"steps={steps} bytes={size}",
            context=ContextPolicy(strategy="keep_all"),
        ),
        id=workflow_id,
        task_queue=queue,
        result_type=AgentResult,
    )
    assert result.status == "completed", result
    sizes = await step_sizes(client, workflow_id)
    tool_steps = sizes[:-1]  # the last step is the final answer, without a tool call
    return sum(tool_steps[-LAST_STEPS:]) / LAST_STEPS


async def main(steps: int) -> dict[str, dict[int, float]]:
    registry = AgentRegistry([soak], scripts=SOAK_SCRIPTS)
    env = await dev_server()
    figures: dict[str, dict[int, float]] = {"offload": {}, "no offload": {}}
    with tempfile.TemporaryDirectory() as scratch:
        converters: dict[str, DataConverter] = {
            "offload": data_converter_from_env(
                {"PAYLOAD_STORE": "local", "PAYLOAD_STORE_DIR": f"{scratch}/payloads"}
            ),
            "no offload": pydantic_data_converter,
        }
        async with env:
            target = env.client.service_client.config.target_host
            for name, converter in converters.items():
                client = await Client.connect(target, data_converter=converter)
                queue = f"growth-{uuid.uuid4()}"
                worker = agent_worker(client, queue, registry, scratch)
                async with worker:
                    for tokens in TARGET_TOKENS:
                        figures[name][tokens] = await measure(client, queue, tokens, steps)
    print(f"\nhistory bytes per step (mean of the last {LAST_STEPS}), keep_all, absolute bytes")
    print(
        f"{'conversation':>14}{'tool result':>13}{'offload':>10}{'ratio':>8}{'minus result':>14}"
        f"{'no offload':>13}{'ratio':>8}"
    )
    first = TARGET_TOKENS[0]
    for tokens in TARGET_TOKENS:
        on, off = figures["offload"][tokens], figures["no offload"][tokens]
        chunk = tokens * CHARS_PER_TOKEN // steps
        inline = chunk if chunk < DEFAULT_INLINE_LIMIT_BYTES else 0
        print(
            f"{tokens:>8} tokens{chunk:>13}{on:>10.0f}{on / figures['offload'][first]:>7.2f}x"
            f"{on - inline:>14.0f}{off:>13.0f}{off / figures['no offload'][first]:>7.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "history_growth.json").write_text(
        json.dumps({"steps": steps, "bytes_per_step": figures}, indent=2)
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.steps))
