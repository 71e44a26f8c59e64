"""``python -m bench.fanout --workers 1,2,4``: the fan-out batch on real worker processes.

For each worker count: that many ``python worker.py`` processes on a fresh task queue of one
in-memory dev server (started here), ``agents`` runs of the ``soak`` agent started together and
stopped by ``max_steps`` after ``steps`` steps (a model call of ``latency`` seconds and a no-op
tool call each), waited for; then every run's history is read for signs of a starved worker. The
workers stop before the next count starts. See ``bench/fanout.py`` for the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench import RESULTS
from bench._harness import dev_server, worker_process_env
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.settings import PROJECT_ROOT

POLLING_LOG_LINE = "worker polling task queue"
"""What ``worker.py`` logs once it is connected and polling."""
WORKER_READY_TIMEOUT = 300.0
"""Seconds for every worker of a count to start polling (imports take seconds of CPU each)."""
WORKER_STOP_TIMEOUT = 20.0
"""Seconds a worker gets to stop after SIGTERM before SIGKILL."""
HISTORY_READS_AT_ONCE = 20
MODEL_ACTIVITY = "call_model"
SOAK_TASK = "steps=1000000 bytes=10"
"""More tool steps than any run takes: ``max_steps`` ends it after ``steps`` model calls."""


@dataclass(frozen=True)
class CountFigures:
    workers: int
    wall_s: float
    agents_per_s: float
    wall_over_ideal: float
    worker_cpu_s: float
    """User + system CPU time of the worker processes over the batch."""
    server_cpu_s: float
    """Of the dev server over the batch."""
    driver_cpu_s: float
    """Of this process (starting the runs, waiting for results) over the batch."""
    all_started_s: float
    """When the last of the runs had been started (the start calls go out together)."""
    heartbeat_timeouts: int
    """Model or tool activity attempts that timed out for a missed heartbeat."""
    activity_retries: int
    """Activity attempts after the first, whatever the reason."""
    workflow_task_timeouts: int
    """Workflow tasks a worker took longer than their start-to-close timeout (10 s) to finish."""
    sticky_timeouts: int
    """Workflow tasks left waiting on a worker's sticky queue past 5 s (moved to the shared one)."""
    workflow_task_failures: int
    events_per_run: float
    search_attribute_upserts_per_run: float
    """``worker.py`` keeps ``AgentStatus`` current when the server has it (the dev server does)."""
    model_call_p50_s: float
    model_call_p99_s: float
    """A model call from scheduled to completed (its latency plus queueing and retries)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening_pid(address: str) -> int:
    """The pid of the process listening on ``address``'s TCP port (Linux ``/proc``; 0 if not
    found): the dev server, started by the SDK without telling its pid."""
    port = int(address.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                if os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes:
                    return int(fd_dir.parent.name)
    return 0


class WorkerProcesses:
    """``count`` real ``python worker.py`` processes, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, env: dict[str, str], log_dir: Path, count: int) -> None:
        self.env = env
        self.logs = [log_dir / f"worker-{count}x-{i}.log" for i in range(count)]
        self.processes: list[subprocess.Popen[bytes]] = []

    async def __aenter__(self) -> WorkerProcesses:
        self.start()
        try:
            await self._polling()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> None:
        for log_path in self.logs:
            with log_path.open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "worker.py"],
                        cwd=PROJECT_ROOT,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def _polling(self) -> None:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while not all(POLLING_LOG_LINE in p.read_text(errors="replace") for p in self.logs):
            for process, log_path in zip(self.processes, self.logs, strict=True):
                if process.poll() is not None:
                    raise RuntimeError(f"worker exited before polling; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not polling after {WORKER_READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.2)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Starvation:
    """What the histories of a batch say about its workers keeping up."""

    counts: Counter[str]
    model_call_seconds: list[float]

    def read(self, events: list[HistoryEvent]) -> None:
        scheduled: dict[int, tuple[str, float]] = {}
        self.counts["runs"] += 1
        self.counts["events"] += len(events)
        for event in events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                self.counts["search_attribute_upserts"] += 1
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = (
                    attributes.activity_type.name,
                    event.event_time.ToDatetime().timestamp(),
                )
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                self.counts["activity_retries"] += max(0, started.attempt - 1)
                if started.HasField("last_failure") and _heartbeat_timeout(started.last_failure):
                    self.counts["heartbeat_timeouts"] += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                failure = event.activity_task_timed_out_event_attributes.failure
                if _heartbeat_timeout(failure):
                    self.counts["heartbeat_timeouts"] += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                completed = event.activity_task_completed_event_attributes
                name, at = scheduled.get(completed.scheduled_event_id, ("", 0.0))
                if name == MODEL_ACTIVITY:
                    self.model_call_seconds.append(event.event_time.ToDatetime().timestamp() - at)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timeout = event.workflow_task_timed_out_event_attributes.timeout_type
                if timeout == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START:
                    self.counts["sticky_timeouts"] += 1
                else:
                    self.counts["workflow_task_timeouts"] += 1
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                self.counts["workflow_task_failures"] += 1


def _heartbeat_timeout(failure: Failure | None) -> bool:
    """Whether a failure (or its cause) is a heartbeat timeout."""
    while failure is not None:
        info = failure.timeout_failure_info
        if failure.HasField("timeout_failure_info") and (
            info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
        ):
            return True
        failure = failure.cause if failure.HasField("cause") else None
    return False


async def read_histories(client: Client, workflow_ids: list[str]) -> Starvation:
    found = Starvation(Counter(), [])
    gate = asyncio.Semaphore(HISTORY_READS_AT_ONCE)

    async def one(workflow_id: str) -> None:
        async with gate:
            events = [
                e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()
            ]
        found.read(events)

    await asyncio.gather(*(one(w) for w in workflow_ids))
    return found


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def one_count(
    address: str,
    server_pid: int,
    scratch: Path,
    workers: int,
    agents: int,
    steps: int,
    latency: float,
) -> CountFigures:
    queue = f"fanout-{workers}x-{uuid.uuid4().hex[:8]}"
    env = worker_process_env(address, scratch, queue, round(latency * 1000))
    client = await Client.connect(address, data_converter=data_converter_from_env(env))
    ids = [f"fanout-{workers}x-{i}-{uuid.uuid4().hex[:8]}" for i in range(agents)]
    async with WorkerProcesses(env, scratch, workers) as processes:
        cpu_before = processes.cpu_seconds(), cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    "AgentWorkflow",
                    AgentInput(agent="soak", task=SOAK_TASK, max_steps=steps),
                    id=workflow_id,
                    task_queue=queue,
                    result_type=AgentResult,
                )
                for workflow_id in ids
            )
        )
        all_started = time.perf_counter() - started
        results = await asyncio.gather(*(handle.result() for handle in handles))
        wall = time.perf_counter() - started
        cpu_after = processes.cpu_seconds(), cpu_seconds(server_pid), time.process_time()
    bad = [r for r in results if r.steps != steps or r.status != "max_steps"]
    if bad:
        raise RuntimeError(f"{len(bad)} runs did not take {steps} steps: {bad[0]}")
    starvation = await read_histories(client, ids)
    ideal = steps * latency
    return CountFigures(
        workers=workers,
        wall_s=wall,
        agents_per_s=agents / wall,
        wall_over_ideal=wall / ideal,
        worker_cpu_s=cpu_after[0] - cpu_before[0],
        server_cpu_s=cpu_after[1] - cpu_before[1],
        driver_cpu_s=cpu_after[2] - cpu_before[2],
        all_started_s=all_started,
        heartbeat_timeouts=starvation.counts["heartbeat_timeouts"],
        activity_retries=starvation.counts["activity_retries"],
        workflow_task_timeouts=starvation.counts["workflow_task_timeouts"],
        sticky_timeouts=starvation.counts["sticky_timeouts"],
        workflow_task_failures=starvation.counts["workflow_task_failures"],
        events_per_run=starvation.counts["events"] / agents,
        search_attribute_upserts_per_run=starvation.counts["search_attribute_upserts"] / agents,
        model_call_p50_s=statistics.median(starvation.model_call_seconds),
        model_call_p99_s=percentile(starvation.model_call_seconds, 0.99),
    )


async def main(agents: int, steps: int, latency: float, counts: list[int]) -> dict[str, object]:
    env = await dev_server()
    figures: list[CountFigures] = []
    with tempfile.TemporaryDirectory(prefix="fanout-") as scratch:
        async with env:
            address = env.client.service_client.config.target_host
            server_pid = listening_pid(address)
            for workers in counts:
                found = await one_count(
                    address, server_pid, Path(scratch), workers, agents, steps, latency
                )
                figures.append(found)
                print(
                    f"  {workers} worker process(es): wall {found.wall_s:.1f} s, "
                    f"{found.heartbeat_timeouts} heartbeat timeouts",
                    flush=True,
                )
    ideal = steps * latency
    print(
        f"\n{agents} agents x {steps} model calls of {latency:.1f} s (ideal {ideal:.1f} s) on "
        f"worker processes, one dev server, {os.cpu_count()} CPUs"
    )
    print(
        f"{'workers':>8}{'wall s':>8}{'started':>8}{'agents/s':>9}{'x ideal':>8}"
        f"{'CPU s: workers':>15}{'server':>7}{'driver':>7}{'hb t/o':>7}{'retries':>8}"
        f"{'wft t/o':>8}{'sticky':>7}{'model p50':>10}{'p99 s':>6}{'events':>7}{'upserts':>8}"
    )
    for f in figures:
        print(
            f"{f.workers:>8}{f.wall_s:>8.1f}{f.all_started_s:>8.1f}{f.agents_per_s:>9.1f}"
            f"{f.wall_over_ideal:>7.2f}x{f.worker_cpu_s:>15.1f}{f.server_cpu_s:>7.1f}"
            f"{f.driver_cpu_s:>7.1f}{f.heartbeat_timeouts:>7}{f.activity_retries:>8}"
            f"{f.workflow_task_timeouts:>8}{f.sticky_timeouts:>7}{f.model_call_p50_s:>10.2f}"
            f"{f.model_call_p99_s:>6.2f}{f.events_per_run:>7.1f}"
            f"{f.search_attribute_upserts_per_run:>8.1f}"
        )
    print(
        "  started: s until every run was started; hb t/o: activity attempts timed out for a "
        "missed heartbeat; wft t/o: workflow tasks past their start-to-close timeout; sticky: "
        "workflow tasks that timed out on a worker's sticky queue; model p50/p99: a model "
        "call from scheduled to completed; events, upserts: history events and search attribute "
        "upserts a run"
    )
    report: dict[str, object] = {
        "agents": agents,
        "steps": steps,
        "model_latency_s": latency,
        "ideal_s": ideal,
        "cpus": os.cpu_count(),
        "by_workers": [asdict(f) for f in figures],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fanout_workers.json").write_text(json.dumps(report, indent=2))
    return report
