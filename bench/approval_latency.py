"""Approval latency: from a human's decision reaching Temporal to the approved tool starting.

    python -m bench.approval_latency [--runs 20]

Each run of the ``bench-gated`` agent stops at one pending approval; the benchmark approves it,
alternately by the ``approve`` signal and by the ``decide`` update, and reads the run's history:
for a signal, latency is the server's timestamp of the tool activity's ``ActivityTaskStarted``
event minus that of the ``WorkflowExecutionSignaled`` event (one server clock). An update has no
arrival event (``WorkflowExecutionUpdateAccepted`` is stamped when the worker accepts it, after
the wait this benchmark measures), so both paths are also timed from the moment the client sent
the decision, which includes the RPC. Absolute milliseconds, labelled as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench import RESULTS
from bench._harness import agent_worker, dev_server
from bench.baselines import BENCH_SCRIPTS, gated_bench_agent
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal, DecideRequest, DecideResult

Channel = Literal["signal", "update"]


async def wait_pending(handle: WorkflowHandle[object, AgentResult]) -> str:
    while True:
        view: AgentStatusView = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            return view.pending_approvals[0].id
        await asyncio.sleep(0.01)


async def one_run(client: Client, queue: str, channel: Channel) -> tuple[float | None, float]:
    """(server-clock ms for a signal, ms from client send) from decision to tool start."""
    handle: WorkflowHandle[object, AgentResult] = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent=gated_bench_agent.name, task="bench"),
        id=f"approval-{uuid.uuid4()}",
        task_queue=queue,
        result_type=AgentResult,
    )
    approval_id = await wait_pending(handle)
    sent_at = time.time()
    if channel == "signal":
        await handle.signal("approve", ApprovalSignal(approval_id=approval_id, approver="bench"))
    else:
        await handle.execute_update(
            "decide",
            DecideRequest(approval_id=approval_id, approver="bench", decision="approve"),
            result_type=DecideResult,
        )
    result = await handle.result()
    assert result.status == "completed", result
    signaled: datetime | None = None
    started: datetime | None = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signaled = event.event_time.ToDatetime(tzinfo=UTC)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # The first activity after the load is call_model; the tool starts after approval.
            attempt_started = event.event_time.ToDatetime(tzinfo=UTC)
            if attempt_started.timestamp() >= sent_at - 0.001:
                started = attempt_started
                break
    assert started is not None
    server_ms = (started - signaled).total_seconds() * 1000 if signaled else None
    return server_ms, (started.timestamp() - sent_at) * 1000


async def main(runs: int) -> dict[str, dict[str, float]]:
    registry = AgentRegistry([gated_bench_agent], scripts=BENCH_SCRIPTS)
    env = await dev_server()
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        async with env:
            queue = f"approval-{uuid.uuid4()}"
            worker = agent_worker(env.client, queue, registry, scratch)
            async with worker:
                await one_run(env.client, queue, "signal")  # warm up
                for i in range(runs):
                    channel: Channel = "signal" if i % 2 == 0 else "update"
                    server_ms, client_ms = await one_run(env.client, queue, channel)
                    if server_ms is not None:
                        samples.setdefault(f"{channel} (server clock)", []).append(server_ms)
                    samples.setdefault(f"{channel} (from client send)", []).append(client_ms)
    summary = {
        name: {
            "median_ms": statistics.median(values),
            "p95_ms": sorted(values)[max(0, round(0.95 * len(values)) - 1)],
            "max_ms": max(values),
        }
        for name, values in samples.items()
    }
    print(f"\napproval latency, decision -> approved tool started, {runs} runs, absolute ms")
    print(f"{'decision path':<28}{'median':>9}{'p95':>9}{'max':>9}")
    for name, figures in summary.items():
        print(
            f"{name:<28}{figures['median_ms']:>9.1f}{figures['p95_ms']:>9.1f}"
            f"{figures['max_ms']:>9.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "approval_latency.json").write_text(
        json.dumps({"runs": runs, "summary": summary, "samples_ms": samples}, indent=2)
    )
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    asyncio.run(main(options.runs))
