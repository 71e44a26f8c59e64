"""Time to resume after kill -9 of the worker, against the steps the run had already done.

    python -m bench.resume [--after 10,100,1000] [--repeat 3]

For each N, ``--repeat`` times in each of two set-ups: a real ``python worker.py`` process runs a
``soak`` run (started with ``policies.WORKFLOW_TASK_TIMEOUT``, as ``starter.py`` starts runs);
once the run has done N steps the worker is killed with SIGKILL. *standby*: a second worker was
polling all along (any deployment with two workers); *restart*: a new worker is started at the
kill, so the figure includes its start-up (about a second, imports of byte-compiled
dependencies). The figure is the time from the kill until the run starts its next step on the
other worker, as its ``status`` query tells. Absolute seconds; the median and the slowest of
the repeats.

What bounds it is how Temporal notices the dead worker, which depends on what the run was doing
at the kill (shown per sample, read from history): a workflow task in progress waits for
``WORKFLOW_TASK_TIMEOUT``; a workflow task queued on the dead worker's sticky queue waits for
``STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT``; a model or tool activity in progress waits for its
heartbeat timeout, its retry interval, and then the sticky timeout for the workflow task that
follows. Then the new worker replays the history so far (at most one continue-as-new's worth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench import RESULTS
from bench._harness import dev_server
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.runner.policies import WORKFLOW_TASK_TIMEOUT
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.settings import PROJECT_ROOT


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def steps_done(handle: WorkflowHandle[Any, AgentResult]) -> int | None:
    try:
        view: AgentStatusView = await handle.query("status", result_type=AgentStatusView)
    except Exception:  # no live worker to answer
        return None
    return view.steps


async def in_flight_at(client: Client, workflow_id: str, killed_at: float) -> str:
    """What the run was doing when its worker was killed (wall time ``killed_at``), from its
    history: a workflow task (queued or in progress), or an activity in progress."""
    handle = client.get_workflow_handle(workflow_id)
    task = ""
    activities: dict[int, str] = {}
    names: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_time.ToDatetime().timestamp() > killed_at:
            break
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task = "workflow task queued"
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task = "workflow task running"
        elif kind in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        ):
            task = ""
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
            activities[event.event_id] = names[event.event_id]
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            activities.pop(event.activity_task_completed_event_attributes.scheduled_event_id, None)
    doing = [task] if task else []
    doing += [f"{name} running" for name in activities.values()]
    return ", ".join(doing) or "between tasks"


async def pollers(client: Client, queue: str) -> set[str]:
    """Identities (``pid@host``) of the workers polling ``queue`` for workflow tasks (none
    known when the server does not answer)."""
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError:
        return set()
    return {poller.identity for poller in response.pollers}


async def holder(client: Client, workflow_id: str) -> int:
    """The pid of the worker that took the run's latest workflow task."""
    pid = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            pid = int(event.workflow_task_started_event_attributes.identity.split("@")[0])
    return pid


async def one(
    client: Client, env: dict[str, str], scratch: Path, after: int, sample: str, standby: bool
) -> tuple[float, str]:
    """Kill the worker running a ``soak`` run after ``after`` steps; seconds until the run's
    next step is done, and what the run was doing at the kill. ``standby``: a second worker is
    already polling (production with more than one worker); else a new one starts at the kill
    (and the figure includes its start-up, about a second here)."""
    queue = f"resume-{uuid.uuid4()}"
    env = {**env, "AGENTS_TASK_QUEUE": queue}
    processes = [start_worker(env, scratch / f"worker-{after}-{sample}-a.log")]
    if standby:
        processes.append(start_worker(env, scratch / f"worker-{after}-{sample}-b.log"))
    while len(await pollers(client, queue)) < len(processes):  # noqa: ASYNC110 (remote state)
        await asyncio.sleep(0.1)
    handle: WorkflowHandle[Any, AgentResult] = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="soak", task=f"steps={after + 20} bytes=100"),
        id=f"resume-{after}-{uuid.uuid4()}",
        task_queue=queue,
        result_type=AgentResult,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
    while (await steps_done(latest) or 0) < after:  # noqa: ASYNC110 (polling a remote run)
        await asyncio.sleep(0.05)
    pid = await holder(client, latest.id)
    victim = next(p for p in processes if p.pid == pid)
    killed_at, killed_wall = time.perf_counter(), time.time()
    kill9(victim)
    processes.remove(victim)
    if not standby:
        processes.append(start_worker(env, scratch / f"worker-{after}-{sample}-b.log"))
    try:
        # The step the run was at when killed, from its history (a query would wait for a
        # worker); the run has resumed once it starts the step after it.
        baseline = await steps_in_history(latest)
        while True:
            done = await steps_done(latest)
            if done is not None and done > baseline:
                seconds = time.perf_counter() - killed_at
                break
            await asyncio.sleep(0.05)
    finally:
        await latest.cancel()
        for process in processes:
            kill9(process)
    return seconds, await in_flight_at(client, latest.id, killed_wall)


async def steps_in_history(handle: WorkflowHandle[Any, AgentResult]) -> int:
    """The latest step whose model call the latest run's history has scheduled: what its
    ``status`` query says once a worker has replayed it."""
    steps = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_id = event.activity_task_scheduled_event_attributes.activity_id
            if activity_id.startswith("model-"):
                steps = max(steps, int(activity_id.removeprefix("model-")))
    return steps


MODES = {"standby": True, "restart": False}
"""``standby``: a second worker already polls; ``restart``: a new worker starts at the kill."""


async def main(afters: list[int], repeat: int = 1) -> dict[int, float]:
    """Median seconds to resume with a standby worker, by steps done at the kill (every sample
    of both modes in the JSON)."""
    env_server = await dev_server()
    figures: dict[str, dict[int, list[float]]] = {mode: {} for mode in MODES}
    with tempfile.TemporaryDirectory() as scratch:
        async with env_server:
            env = {
                **os.environ,
                "TEMPORAL_ADDRESS": env_server.client.service_client.config.target_host,
                "PAYLOAD_STORE_DIR": f"{scratch}/payloads",
                "EFFECTS_DB": f"{scratch}/effects.db",
            }
            env.pop("ANTHROPIC_API_KEY", None)
            env.pop("OPENAI_API_KEY", None)
            client = await Client.connect(
                env["TEMPORAL_ADDRESS"],
                data_converter=data_converter_from_env(
                    {"PAYLOAD_STORE": "local", "PAYLOAD_STORE_DIR": f"{scratch}/payloads"}
                ),
            )
            for after in afters:
                for sample in range(repeat):
                    for mode, standby in MODES.items():  # taking turns
                        seconds, doing = await one(
                            client, env, Path(scratch), after, f"{mode}-{sample}", standby
                        )
                        figures[mode].setdefault(after, []).append(seconds)
                        print(
                            f"  {mode:<8} killed after {after} steps ({doing}): "
                            f"resumed in {seconds:.1f} s",
                            flush=True,
                        )
    print(
        "\ntime to resume after kill -9 (kill -> next step done on another worker), seconds, "
        f"median and slowest of {repeat}"
    )
    print(f"{'steps done':>10}{'standby':>9}{'slowest':>9}{'restart':>9}{'slowest':>9}")
    for after in afters:
        cells = "".join(
            f"{statistics.median(figures[mode][after]):>9.1f}{max(figures[mode][after]):>9.1f}"
            for mode in MODES
        )
        print(f"{after:>10}{cells}")
    RESULTS.mkdir(exist_ok=True)
    medians = {after: statistics.median(samples) for after, samples in figures["standby"].items()}
    (RESULTS / "resume.json").write_text(
        json.dumps({"seconds": medians, "samples": figures}, indent=2)
    )
    return medians


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--after", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(main([int(a) for a in options.after.split(",")], options.repeat))
