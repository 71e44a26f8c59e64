"""Chaos: many agent runs at once while workers are killed -9 and the Temporal server restarts.

    python -m bench.chaos [--flagship 8] [--soak 8] [--soak-steps 40] [--workers 3]
                          [--kill-every 4] [--server-restarts 2] [--seed N]

The runs: ``finops-chaos-once`` (the flagship, whose side effects ``notify_owner`` and the
approval-gated ``stop_cluster`` are held open for 3 s after they commit; ``tests/chaos_agents.py``),
every other one also continuing-as-new every 2 steps so an approval can wait across runs of a
chain; and ``soak`` runs that continue-as-new every ``--soak-continue-as-new`` steps. All start
at once on ``--workers`` real ``python worker.py`` processes, against a dev server of its own
whose SQLite file keeps every run across restarts.

The chaos: every ``--kill-every`` seconds a polling worker picked by a seeded RNG is killed with
SIGKILL and replaced at once (a kill waits until at least two workers poll: a fresh worker spends
seconds importing, and killing those would only starve the runs); about half of the side effects
also get their worker killed while they are committed and not yet reported. The dev server is
killed with SIGKILL and started again on the same database file ``--server-restarts`` times:
once right after the approvals went in (accepted by the server, not yet applied by the
workflows), the others as overall progress passes 1/R, 2/R ... of the expected steps. Clients
and workers are not restarted for it: they reconnect by themselves. Approvals go in by signal,
as a person would send them, once every flagship run is waiting for its own: so every run has
seen the idle cluster running before any run stops it, and the expected effects do not depend
on timing.

The checks, each against the system that keeps the record:

- every run completed (its result says ``completed``);
- effects, counted in the inventory database that performed them: per flagship run exactly one
  notification and one action row (their idempotency keys start with the workflow id), and one
  ``stop`` overall;
- approvals: each one sent is in its run's result, approved by ``chaos``; none ended by timeout;
- workflow tasks: in the history of every run of every chain, the last workflow-task event is not
  ``WorkflowTaskFailed`` (failures and timeouts during the chaos are allowed, and counted).

Prints a count table, writes ``bench/results/chaos.json`` and exits 1 if a check failed.
``run_chaos`` is the same thing for tests (``tests/test_chaos.py`` runs a reduced version).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowFailureError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench import RESULTS
from bench._harness import worker_process_env
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runner import policies
from durable_agents.runtime.client import SEARCH_ATTRIBUTES
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.devserver import DevServer, port_open
from durable_agents.runtime.settings import PROJECT_ROOT
from examples.finops import inventory
from examples.finops.agent import STANDARD_TASK

FLAGSHIP_AGENT = "finops-chaos-once"
"""``finops-chaos`` holds every attempt open, even a retry the ledger answers; kills landing in
those artificial holds can use up a call's 5 attempts, which in production return in
milliseconds. This variant holds only the attempt that performed the effect."""
FLAGSHIP_STEPS = 5
"""Model calls of a flagship run: breakdown, investigation, notify, stop, report."""
FLAGSHIP_CONTINUE_AS_NEW_AFTER = 2
"""Every other flagship run continues-as-new this often, so its approval waits across runs."""
SOAK_AGENT = "soak"
APPROVER = "chaos"
STOP_ACTION = "stop"

TICK_SECONDS = 0.5
"""How often the driver polls runs, revives workers and checks whether to kill or restart."""
RPC_TIMEOUT = timedelta(seconds=3)
"""Per query or signal: while the server or the workers are down, give up and retry next tick."""
AIM_AT_EFFECTS = 0.5
"""Chance that a kill goes to a worker holding a committed, unreported effect, when one does."""
MIN_CONNECTED_TO_KILL = 2
"""A kill waits until this many workers are polling, so it always hits a worker doing work
and leaves one working: a new worker spends seconds importing before it polls (about 4 s of
CPU here, far more on a loaded machine), and killing those would only starve the runs."""
RESTART_GAP_SECONDS = 3.0
"""Least time between the server being back and the next restart."""
PORT_CLOSE_TIMEOUT = 10.0
POLLING_LOG_LINE = "worker polling task queue"
"""What ``worker.py`` logs once it is connected and polling."""
WORKER_STOP_TIMEOUT = 15.0
"""At the end, how long a worker gets to stop after SIGTERM before SIGKILL."""

_WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}

RunKind = Literal["flagship", "soak"]


class ChaosError(RuntimeError):
    """The harness itself could not do its job (a server that would not start, say)."""


@dataclass
class ChaosOptions:
    """What to run and how hard to shake it."""

    flagship: int = 8
    """``finops-chaos`` runs."""
    soak: int = 8
    """``soak`` runs."""
    soak_steps: int = 40
    """Tool steps per soak run (each run makes one more model call to finish)."""
    soak_bytes: int = 200
    """Bytes each soak tool call returns."""
    soak_continue_as_new: int = 15
    """A soak run continues-as-new every this many steps."""
    workers: int = 3
    """Worker processes alive at any time (a killed one is replaced at once)."""
    kill_every: float = 4.0
    """Seconds between kills of a random worker."""
    server_restarts: int = 2
    """Times the dev server is killed and started again on the same database file."""
    server_down_seconds: float = 3.0
    """How long the server stays down at each restart."""
    seed: int | None = None
    """Seeds the choice of worker to kill; None picks one (printed, so a run can be repeated)."""
    model_latency_ms: int = 50
    """``SCRIPTED_MODEL_LATENCY_MS`` of the workers."""
    timeout: float = 900.0
    """Seconds after which runs still going are reported as not completed."""
    work_dir: Path | None = None
    """Server state, inventory, ledger, payloads and logs; None: a temporary directory."""


@dataclass
class RestartRecord:
    """One server restart: what was in flight and how fast everything came back."""

    at_seconds: float
    progress: float
    """Fraction of expected steps done when the server was killed."""
    approvals_waiting: int
    """Approvals pending and not yet sent when the server was killed."""
    approvals_in_flight: int
    """Approvals sent but still listed as pending by the last status answer: accepted by the
    server, not yet applied by the workflow."""
    client_back_seconds: float
    """From the server answering again to the driver's existing client answering a call."""
    workers_back_seconds: float | None
    """From the server answering again to the next status query answered (by a worker)."""
    workers_connected: int
    """Worker processes connected and polling when the server was killed."""
    workers_survived: int
    """Of those, the ones still running when a worker answered again (not restarted: they
    reconnected by themselves)."""


@dataclass
class ChaosReport:
    """Counts of one chaos run and every problem the checks found (``problems`` empty: passed)."""

    seed: int
    options: dict[str, Any]
    wall_seconds: float = 0.0
    runs: int = 0
    flagship_runs: int = 0
    soak_runs: int = 0
    runs_completed: int = 0
    runs_not_completed: dict[str, str] = field(default_factory=dict)
    """Workflow id -> what it ended as (or its last known status) instead of completed."""
    chain_runs: int = 0
    """Runs over all chains (continue-as-new starts a new run)."""
    steps: int = 0
    tool_calls_failed: int = 0
    """Tool calls whose result the model got as an error (say, retries exhausted by kills)."""
    worker_kills: int = 0
    worker_kills_holding_effect: int = 0
    """Kills aimed at a worker holding an effect committed and not yet reported."""
    worker_starts: int = 0
    worker_exits_before_connecting: int = 0
    """Workers started while the server was down: ``worker.py`` exits if it cannot connect."""
    worker_exits_after_connecting: list[str] = field(default_factory=list)
    """Logs of workers that had been polling and exited on their own (e.g. lost the server)."""
    server_restarts: int = 0
    restarts: list[RestartRecord] = field(default_factory=list)
    approvals_sent: int = 0
    approvals_recorded: int = 0
    """Sent approvals found in their run's result, approved by ``chaos``."""
    approvals_lost: list[str] = field(default_factory=list)
    approvals_timed_out: int = 0
    signal_retries: int = 0
    query_failures: int = 0
    notifications_expected: int = 0
    notifications_performed: int = 0
    actions_expected: int = 0
    actions_performed: int = 0
    stops_expected: int = 0
    stops_performed: int = 0
    duplicate_effects: int = 0
    missing_effects: int = 0
    effect_attempts_answered_by_ledger: int = 0
    """Attempts of a side effect that found it already done (the retry after a kill)."""
    workflow_task_failures_seen: int = 0
    workflow_task_timeouts_seen: int = 0
    workflow_task_failure_causes: dict[str, int] = field(default_factory=dict)
    workflow_tasks_left_failing: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    """Kills and restarts, with seconds since the runs started."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        """The counts as an aligned table."""
        rows = [
            ("runs (flagship + soak)", f"{self.runs} ({self.flagship_runs} + {self.soak_runs})"),
            ("runs completed", f"{self.runs_completed} / {self.runs}"),
            ("runs in all chains (continue-as-new)", str(self.chain_runs)),
            ("model steps / tool calls that failed", f"{self.steps} / {self.tool_calls_failed}"),
            ("worker kills (kill -9) / holding an effect",
             f"{self.worker_kills} / {self.worker_kills_holding_effect}"),
            ("worker processes started", str(self.worker_starts)),
            ("worker exits, unkilled: before / after connecting",
             f"{self.worker_exits_before_connecting} / {len(self.worker_exits_after_connecting)}"),
            ("server restarts (kill -9, same db)", str(self.server_restarts)),
            ("approvals sent / recorded", f"{self.approvals_sent} / {self.approvals_recorded}"),
            ("approvals lost / timed out", f"{len(self.approvals_lost)} / "
             f"{self.approvals_timed_out}"),
            ("notifications expected / performed",
             f"{self.notifications_expected} / {self.notifications_performed}"),
            ("actions expected / performed",
             f"{self.actions_expected} / {self.actions_performed}"),
            ("clusters stopped expected / performed",
             f"{self.stops_expected} / {self.stops_performed}"),
            ("duplicate effects / missing effects",
             f"{self.duplicate_effects} / {self.missing_effects}"),
            ("effect retries answered by the ledger", str(self.effect_attempts_answered_by_ledger)),
            ("workflow task failures seen / left",
             f"{self.workflow_task_failures_seen} / {len(self.workflow_tasks_left_failing)}"),
            ("workflow task timeouts seen", str(self.workflow_task_timeouts_seen)),
            ("status queries failed / signals retried",
             f"{self.query_failures} / {self.signal_retries}"),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]  # fmt: skip
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        for i, r in enumerate(self.restarts, 1):
            back = "-" if r.workers_back_seconds is None else f"{r.workers_back_seconds:.1f} s"
            lines.append(
                f"  restart {i} at {r.at_seconds:.0f} s ({r.progress:.0%} done, approvals "
                f"{r.approvals_in_flight} in flight / {r.approvals_waiting} waiting): client in "
                f"{r.client_back_seconds:.1f} s, workers answering in {back}, "
                f"{r.workers_survived} of {r.workers_connected} connected workers rode it out"
            )
        for cause, count in sorted(self.workflow_task_failure_causes.items()):
            lines.append(f"  workflow task failed x{count}: {cause}")
        lines.append("result: " + ("PASS" if self.ok else "FAIL"))
        lines.extend(f"  problem: {p}" for p in self.problems)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the pieces: a dev server we can kill, worker processes we can kill -------------------------


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChaosServer:
    """A ``DevServer`` on free ports with a database file, killed and restarted for real.

    ``DevServer.stop`` is a clean stop (SIGTERM) meant for a server started by an earlier
    command; here the server is our own child and must die the hard way, then be reaped.
    """

    def __init__(self, state_dir: Path) -> None:
        self.dev = DevServer(
            state_dir=state_dir,
            port=free_port(),
            ui_port=free_port(),
            search_attributes=SEARCH_ATTRIBUTES,
        )

    @property
    def address(self) -> str:
        return self.dev.address

    async def start(self) -> None:
        if not await self.dev.ensure_running():
            raise ChaosError(f"something else already listens on {self.address}")

    async def kill(self) -> None:
        """SIGKILL the server's process group, reap it, and wait for its port to close."""
        pid = self.dev.running_pid()
        if pid is None:
            raise ChaosError(f"no dev server process to kill (pid file {self.dev.pid_file})")
        _kill_and_reap(pid)
        self.dev.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + PORT_CLOSE_TIMEOUT
        while port_open(self.dev.host, self.dev.port):
            if time.monotonic() > deadline:
                raise ChaosError(f"port {self.dev.port} still open after killing the server")
            await asyncio.sleep(0.1)


def _kill_and_reap(pid: int) -> None:
    """SIGKILL a process group we started, then reap its leader: an unreaped child is a zombie,
    which still "exists" for ``kill(pid, 0)`` (so ``DevServer.running_pid`` would see it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):  # already reaped by subprocess's cleanup
        os.waitpid(pid, 0)


class WorkerPool:
    """``size`` real ``python worker.py`` processes; a dead one is replaced by a new one."""

    def __init__(self, env: dict[str, str], log_dir: Path, size: int) -> None:
        self.env = env
        self.log_dir = log_dir
        self.slots: list[tuple[subprocess.Popen[bytes], Path] | None] = [None] * size
        self.killed: set[int] = set()
        self.starts = 0
        self.kills = 0
        self.exits_before_connecting = 0
        """Workers that never reached the server (started while it was down): worker.py does
        not retry its first connection, it exits, and the driver starts another."""
        self.exits_after_connecting: list[str] = []
        """Logs of workers that had been polling and then exited without being killed."""
        self.polling: set[int] = set()
        """Pids of workers seen polling (their log says so)."""

    def _start(self, slot: int) -> None:
        self.starts += 1
        log_path = self.log_dir / f"worker-{self.starts:03d}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill -9 takes all of it
            )
        self.slots[slot] = (process, log_path)

    def running(self) -> list[subprocess.Popen[bytes]]:
        return [s[0] for s in self.slots if s is not None and s[0].poll() is None]

    def connected_slots(self) -> list[int]:
        """Slots whose worker is running and got as far as polling the task queue."""
        found = []
        for slot, entry in enumerate(self.slots):
            if entry is None or entry[0].poll() is not None:
                continue
            process, log_path = entry
            if process.pid not in self.polling and POLLING_LOG_LINE in log_path.read_text(
                errors="replace"
            ):
                self.polling.add(process.pid)
            if process.pid in self.polling:
                found.append(slot)
        return found

    def connected(self) -> set[int]:
        """Pids of running workers that got as far as polling the task queue."""
        return {entry[0].pid for slot in self.connected_slots() if (entry := self.slots[slot])}

    def fill(self) -> None:
        """Start a worker in every empty slot and in every slot whose worker has exited."""
        for slot, entry in enumerate(self.slots):
            if entry is not None:
                process, log_path = entry
                if process.poll() is None:
                    continue
                if process.pid not in self.killed:
                    if POLLING_LOG_LINE in log_path.read_text(errors="replace"):
                        self.exits_after_connecting.append(log_path.name)
                    else:
                        self.exits_before_connecting += 1
            self._start(slot)

    def pid(self, slot: int) -> int | None:
        entry = self.slots[slot]
        return entry[0].pid if entry is not None else None

    def kill9(self, slot: int) -> None:
        entry = self.slots[slot]
        if entry is None or entry[0].poll() is not None:
            return
        process = entry[0]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.killed.add(process.pid)
        self.kills += 1

    def stop_all(self) -> None:
        running = self.running()
        for process in running:
            process.terminate()
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# --- the runs -----------------------------------------------------------------------------------


@dataclass
class TrackedRun:
    """One logical run (a continue-as-new chain) as the driver knows it."""

    workflow_id: str
    first_run_id: str
    kind: RunKind
    expected_steps: int
    steps_seen: int = 0
    status_seen: str = "not queried"
    pending: list[str] = field(default_factory=list)
    """Approval ids the latest ``status`` answer listed."""
    result: AgentResult | None = None
    failure: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.failure is not None

    @property
    def progress_steps(self) -> int:
        return self.expected_steps if self.finished else min(self.steps_seen, self.expected_steps)


def run_inputs(options: ChaosOptions) -> list[tuple[RunKind, AgentInput, int]]:
    """(kind, input, expected model steps) of every run, flagship and soak interleaved."""
    flagship: list[tuple[RunKind, AgentInput, int]] = [
        (
            "flagship",
            AgentInput(
                agent=FLAGSHIP_AGENT,
                task=STANDARD_TASK,
                continue_as_new_after_steps=FLAGSHIP_CONTINUE_AS_NEW_AFTER if i % 2 else None,
            ),
            FLAGSHIP_STEPS,
        )
        for i in range(options.flagship)
    ]
    soak: list[tuple[RunKind, AgentInput, int]] = [
        (
            "soak",
            AgentInput(
                agent=SOAK_AGENT,
                task=f"steps={options.soak_steps} bytes={options.soak_bytes}",
                continue_as_new_after_steps=options.soak_continue_as_new,
            ),
            options.soak_steps + 1,
        )
        for _ in range(options.soak)
    ]
    interleaved = [x for pair in zip_longest(flagship, soak) for x in pair if x is not None]
    return interleaved


def quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors: the driver's calls retry loudly while the server
    is down, and that is expected here."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )


class Driver:
    """Starts the runs, kills and restarts things on schedule, approves, and collects results."""

    def __init__(
        self,
        options: ChaosOptions,
        seed: int,
        server: ChaosServer,
        pool: WorkerPool,
        client: Client,
        report: ChaosReport,
    ) -> None:
        self.options = options
        self.rng = random.Random(seed)
        self.server = server
        self.pool = pool
        self.client = client
        self.report = report
        self.journal = Path(pool.env["CHAOS_EFFECTS_JOURNAL"])
        self.aim_considered: set[str] = set()
        """Held effects (idempotency keys) ``aimed_kill`` already decided about."""
        self.runs: list[TrackedRun] = []
        self.sent: set[tuple[str, str]] = set()
        """(workflow id, approval id) of every approval signal the server accepted."""
        self.approvals_released = False
        self.approvals_delivered = False
        """Every approval of the release round was accepted by the server."""
        self.restarted_after_approvals = False
        self.progress_restarts = 0
        self.restart_allowed_at = 0.0
        self.started = time.monotonic()
        self.stopping = False
        self.last_answer_at = 0.0
        """When a status query was last answered (by a worker)."""

    @property
    def expected_steps(self) -> int:
        return sum(r.expected_steps for r in self.runs)

    def progress(self) -> float:
        total = self.expected_steps
        return sum(r.progress_steps for r in self.runs) / total if total else 1.0

    async def start_runs(self) -> None:
        prefix = uuid.uuid4().hex[:8]
        for i, (kind, agent_input, steps) in enumerate(run_inputs(self.options)):
            handle = await self.client.start_workflow(
                "AgentWorkflow",
                agent_input,
                id=f"chaos-{kind}-{i:02d}-{prefix}",
                task_queue=self.pool.env["AGENTS_TASK_QUEUE"],
                result_type=AgentResult,
                task_timeout=policies.WORKFLOW_TASK_TIMEOUT,  # as starter.py starts runs
            )
            assert handle.first_execution_run_id is not None
            self.runs.append(TrackedRun(handle.id, handle.first_execution_run_id, kind, steps))

    async def follow_result(self, run: TrackedRun) -> None:
        """Wait for the chain's result, through server restarts (the call just fails then)."""
        handle = self.client.get_workflow_handle(
            run.workflow_id, run_id=run.first_run_id, result_type=AgentResult
        )
        while True:
            try:
                run.result = await handle.result()
                self.timeline(f"{run.workflow_id} finished: {run.result.status}")
                return
            except WorkflowFailureError as err:
                run.failure = f"failed: {getattr(err.cause, 'message', err.cause)}"
                return
            except Exception:  # server down or restarting: ask again
                await asyncio.sleep(1.0)

    async def poll(self, run: TrackedRun) -> bool:
        """Refresh ``run`` from its ``status`` query. Returns whether a worker answered."""
        try:
            view = await asyncio.wait_for(
                self.client.get_workflow_handle(run.workflow_id).query(
                    "status", result_type=AgentStatusView, rpc_timeout=RPC_TIMEOUT
                ),
                timeout=RPC_TIMEOUT.total_seconds() + 1,
            )
        except Exception:  # no worker or no server right now: next tick
            self.report.query_failures += 1
            return False
        self.last_answer_at = time.monotonic()
        run.steps_seen = max(run.steps_seen, view.steps)
        run.status_seen = view.status
        run.pending = [a.id for a in view.pending_approvals]
        return True

    async def poll_all(self) -> int:
        unfinished = [r for r in self.runs if not r.finished]
        answered = await asyncio.gather(*(self.poll(r) for r in unfinished))
        return sum(answered)

    async def approve(self) -> None:
        """Approve every pending approval by signal, once every flagship run waits for one.

        Holding them until then means every run described the cluster as running (and notified
        its owner) before any run stops it, whatever the kills did to the order of events.
        """
        flagship = [r for r in self.runs if r.kind == "flagship"]
        if not self.approvals_released:
            if not all(r.finished or r.pending for r in flagship):
                return
            self.approvals_released = True
            self.timeline("every flagship run waits for approval: approving")
        unsent = 0
        for run in self.runs:
            for approval_id in run.pending:
                if (run.workflow_id, approval_id) in self.sent or run.finished:
                    continue
                unsent += 1
                try:
                    await asyncio.wait_for(
                        self.client.get_workflow_handle(run.workflow_id).signal(
                            "approve",
                            ApprovalSignal(approval_id=approval_id, approver=APPROVER),
                            rpc_timeout=RPC_TIMEOUT,
                        ),
                        timeout=RPC_TIMEOUT.total_seconds() + 1,
                    )
                except Exception:  # not accepted (as far as we know): send it again next tick
                    self.report.signal_retries += 1
                    continue
                self.sent.add((run.workflow_id, approval_id))
                unsent -= 1
        if unsent == 0 and self.sent and not self.approvals_delivered:
            self.approvals_delivered = True
            self.timeline(f"{len(self.sent)} approvals accepted by the server")

    async def restart_server(self) -> None:
        """Kill the server with SIGKILL, keep it down a while, start it on the same db file."""
        at = time.monotonic()
        progress = self.progress()
        pending = [(r.workflow_id, a) for r in self.runs if not r.finished for a in r.pending]
        in_flight = sum(1 for key in pending if key in self.sent)
        waiting = len(pending) - in_flight
        workers_before = self.pool.connected()
        await self.server.kill()
        self.timeline(
            f"server killed ({progress:.0%} done; approvals: {waiting} waiting, "
            f"{in_flight} sent and not yet applied)"
        )
        await asyncio.sleep(self.options.server_down_seconds)
        await self.server.start()
        back = time.monotonic()
        self.timeline("server started again on the same database file")
        # The client from before the restart, unchanged: the SDK reconnects by itself.
        await asyncio.wait_for(self.client.count_workflows(), timeout=60)
        client_back = time.monotonic() - back
        workers_back: float | None = None
        while time.monotonic() - back < 60 and not self.stopping:
            if self.last_answer_at > back:  # a status query answered, so by a worker
                workers_back = self.last_answer_at - back
                break
            await asyncio.sleep(0.1)
        self.report.restarts.append(
            RestartRecord(
                at_seconds=at - self.started,
                progress=progress,
                approvals_waiting=waiting,
                approvals_in_flight=in_flight,
                client_back_seconds=client_back,
                workers_back_seconds=workers_back,
                workers_connected=len(workers_before),
                workers_survived=len(workers_before & {p.pid for p in self.pool.running()}),
            )
        )
        self.report.server_restarts += 1
        self.restart_allowed_at = time.monotonic() + RESTART_GAP_SECONDS

    def timeline(self, what: str) -> None:
        self.report.timeline.append(f"{time.monotonic() - self.started:7.1f} s  {what}")

    def restart_due(self) -> bool:
        """Whether to restart the server now.

        With flagship runs, one restart comes right after the approvals went in (signals
        accepted by the server, not yet applied by the workflows) and the others when progress
        passes 1/R, 2/R ... of the expected steps; without, at 1/(R+1), 2/(R+1) ... Whichever
        comes first goes first; two due at once are spaced by ``RESTART_GAP_SECONDS``.
        """
        planned = self.options.server_restarts
        if self.report.server_restarts >= planned or time.monotonic() < self.restart_allowed_at:
            return False
        if any(r.kind == "flagship" for r in self.runs):
            if self.approvals_delivered and not self.restarted_after_approvals:
                self.restarted_after_approvals = True
                return True
            thresholds = [i / planned for i in range(1, planned)]
        else:
            thresholds = [i / (planned + 1) for i in range(1, planned + 1)]
        if self.progress_restarts < len(thresholds):
            if self.progress() >= thresholds[self.progress_restarts]:
                self.progress_restarts += 1
                return True
        return False

    def aimed_kill(self, connected: list[int]) -> int | None:
        """The slot to kill now because its worker holds an effect committed and not yet
        reported (the window the effects ledger must cover), or None.

        Each held effect is considered once, and picked with probability ``AIM_AT_EFFECTS``
        (seeded RNG), so some effects get the kill and the others finish undisturbed.
        """
        for key, pid in effects_held_open(self.journal).items():
            if key in self.aim_considered:
                continue
            slots = [slot for slot in connected if self.pool.pid(slot) == pid]
            if not slots:
                continue  # not a polling worker of ours (any more)
            self.aim_considered.add(key)
            if self.rng.random() < AIM_AT_EFFECTS:
                return slots[0]
        return None

    def kill(self, slot: int, polling: int, aimed: bool) -> None:
        self.pool.kill9(slot)
        if aimed:
            self.report.worker_kills_holding_effect += 1
        why = ", it held an effect open" if aimed else ""
        self.timeline(f"kill -9 worker in slot {slot} ({polling} polling{why})")

    async def chaos(self) -> None:
        """Kill a random polling worker every ``kill_every`` seconds (or as soon as two are
        polling, if later), and at once one holding an effect open if ``aimed_kill`` says so;
        replace each at once. Restart the server when ``restart_due``. Stops between actions
        once ``stopping``."""
        next_kill = time.monotonic() + self.options.kill_every
        while not self.stopping:
            connected = self.pool.connected_slots() if self.options.kill_every > 0 else []
            can_kill = len(connected) >= MIN_CONNECTED_TO_KILL
            if self.restart_due():
                await self.restart_server()
                next_kill = time.monotonic() + self.options.kill_every
            elif can_kill and (slot := self.aimed_kill(connected)) is not None:
                self.kill(slot, len(connected), aimed=True)
                next_kill = time.monotonic() + self.options.kill_every
            elif can_kill and time.monotonic() >= next_kill:
                self.kill(self.rng.choice(connected), len(connected), aimed=False)
                next_kill = time.monotonic() + self.options.kill_every
            self.pool.fill()  # the killed worker's replacement, and any that exited
            await asyncio.sleep(TICK_SECONDS)

    async def watch(self) -> None:
        """Poll every unfinished run's status and send approvals, over and over."""
        while True:
            await self.poll_all()
            await self.approve()
            await asyncio.sleep(TICK_SECONDS)

    async def run(self) -> None:
        """Drive everything until every run has finished or ``options.timeout`` passed."""
        helpers = [asyncio.create_task(self.follow_result(r)) for r in self.runs]
        helpers.append(asyncio.create_task(self.watch()))
        chaos = asyncio.create_task(self.chaos())
        deadline = self.started + self.options.timeout
        try:
            while not all(r.finished for r in self.runs) and time.monotonic() < deadline:
                if chaos.done():
                    chaos.result()  # the harness failed: raise its error
                await asyncio.sleep(TICK_SECONDS)
        finally:
            self.stopping = True
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await chaos  # lets a restart in progress finish: the checks need the server


# --- the checks ---------------------------------------------------------------------------------


async def check_histories(client: Client, runs: list[TrackedRun], report: ChaosReport) -> None:
    """Walk every run of every chain; count workflow-task failures and timeouts, and name any
    run whose last workflow-task event is a failure."""
    causes: Counter[str] = Counter()
    for run in runs:
        run_id: str | None = run.first_run_id
        while run_id is not None:
            report.chain_runs += 1
            last_task_event: EventType.ValueType | None = None
            next_run_id: str | None = None
            handle = client.get_workflow_handle(run.workflow_id, run_id=run_id)
            async for event in handle.fetch_history_events():
                if event.event_type in _WORKFLOW_TASK_EVENTS:
                    last_task_event = event.event_type
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    report.workflow_task_failures_seen += 1
                    attrs = event.workflow_task_failed_event_attributes
                    message = attrs.failure.message.splitlines()[0] if attrs.failure.message else ""
                    causes[f"{WorkflowTaskFailedCause.Name(attrs.cause)}: {message[:160]}"] += 1
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                    report.workflow_task_timeouts_seen += 1
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                    attrs_can = event.workflow_execution_continued_as_new_event_attributes
                    next_run_id = attrs_can.new_execution_run_id
            if last_task_event == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                report.workflow_tasks_left_failing.append(f"{run.workflow_id}/{run_id}")
            run_id = next_run_id
    report.workflow_task_failure_causes = dict(causes)


def effect_journal(path: Path) -> Iterator[tuple[str, str, bool, int | None]]:
    """(event, idempotency key, duplicate_suppressed, worker pid) per line of the chaos agent's
    journal (``tests/chaos_agents.py``)."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        event, key, *rest = line.split()
        pid = int(rest[1]) if len(rest) > 1 else None
        yield event, key, rest[:1] == ["True"], pid


def effects_held_open(path: Path) -> dict[str, int]:
    """Idempotency key -> pid of the worker holding it, for effects committed and not yet
    reported."""
    holders: dict[str, int | None] = {}
    for event, key, _, pid in effect_journal(path):
        if event == "committed":
            holders[key] = pid
        else:
            holders.pop(key, None)
    return {key: pid for key, pid in holders.items() if pid is not None}


def check_effects(
    inventory_path: Path, journal: Path, runs: list[TrackedRun], report: ChaosReport
) -> None:
    """Count effects where they happened: rows in the inventory's own tables."""
    flagship = [r.workflow_id for r in runs if r.kind == "flagship"]
    with closing(inventory.connect(inventory_path)) as db:
        notifications = Counter(
            key.split("/")[0] for (key,) in db.execute("SELECT idempotency_key FROM notifications")
        )
        actions = Counter(
            key.split("/")[0] for (key,) in db.execute("SELECT idempotency_key FROM actions")
        )
        count_stops = "SELECT count(*) FROM actions WHERE action = ?"
        stops = int(db.execute(count_stops, (STOP_ACTION,)).fetchone()[0])
    report.notifications_expected = report.actions_expected = len(flagship)
    report.stops_expected = 1 if flagship else 0
    report.notifications_performed = sum(notifications.values())
    report.actions_performed = sum(actions.values())
    report.stops_performed = stops
    for table, counts in (("notification", notifications), ("action", actions)):
        for workflow_id in flagship:
            if counts[workflow_id] > 1:
                report.duplicate_effects += counts[workflow_id] - 1
                report.problems.append(f"{workflow_id}: {counts[workflow_id]} {table} rows")
            elif counts[workflow_id] == 0:
                report.missing_effects += 1
                report.problems.append(f"{workflow_id}: no {table} row")
        strangers = set(counts) - set(flagship)
        if strangers:
            report.problems.append(f"{table} rows from no flagship run: {sorted(strangers)}")
    if stops > report.stops_expected:
        report.duplicate_effects += stops - report.stops_expected
    if stops != report.stops_expected:
        report.problems.append(f"clusters stopped {stops} times, expected {report.stops_expected}")
    report.effect_attempts_answered_by_ledger = sum(
        1 for event, _, dup, _ in effect_journal(journal) if event == "committed" and dup
    )


def check_runs(runs: list[TrackedRun], sent: set[tuple[str, str]], report: ChaosReport) -> None:
    """Completion of every run, and every approval sent recorded as decided by ``chaos``."""
    report.runs = len(runs)
    report.flagship_runs = sum(1 for r in runs if r.kind == "flagship")
    report.soak_runs = report.runs - report.flagship_runs
    report.approvals_sent = len(sent)
    for run in runs:
        result = run.result
        if result is None or result.status != "completed":
            ended = run.failure or (result and result.status) or f"still {run.status_seen}"
            report.runs_not_completed[run.workflow_id] = (
                f"{ended} after {run.steps_seen} steps, pending approvals {run.pending}"
            )
            report.problems.append(f"{run.workflow_id} did not complete: {ended}")
        else:
            report.runs_completed += 1
            report.steps += result.steps
            report.tool_calls_failed += sum(1 for c in result.tool_calls if c.is_error)
            if run.kind == "soak" and result.steps != run.expected_steps:
                report.problems.append(
                    f"{run.workflow_id}: {result.steps} model steps, expected {run.expected_steps}"
                )
        records = result.approvals if result is not None else []
        for record in records:
            if record.approver.startswith("system:"):
                report.approvals_timed_out += 1
                report.problems.append(f"{run.workflow_id}: approval {record.id} timed out")
        decided = {r.id for r in records if r.approver == APPROVER and r.decision == "approve"}
        for workflow_id, approval_id in sorted(sent):
            if workflow_id != run.workflow_id:
                continue
            if approval_id in decided:
                report.approvals_recorded += 1
            elif result is not None or approval_id in run.pending:
                where = "in the result" if result is not None else "decided: still pending"
                report.approvals_lost.append(f"{workflow_id}/{approval_id}")
                report.problems.append(f"{workflow_id}: approval {approval_id} sent, not {where}")
        if result is not None and run.kind == "flagship" and len(decided) != 1:
            report.problems.append(
                f"{run.workflow_id}: {len(decided)} approvals decided by {APPROVER!r}, expected 1"
            )


# --- putting it together -------------------------------------------------------------------------


def worker_env(address: str, work_dir: Path, task_queue: str, latency_ms: int) -> dict[str, str]:
    """The environment of every worker (and of the driver's data converter): the benchmarks'
    worker environment, the chaos agents, their inventory and their effects journal."""
    env = worker_process_env(address, work_dir, task_queue, latency_ms)
    env.update(
        INVENTORY_DB=str(work_dir / "inventory.db"),
        DURABLE_AGENTS_MODULES="tests.chaos_agents",
        CHAOS_EFFECTS_JOURNAL=str(work_dir / "effects.journal"),
    )
    return env


@contextlib.contextmanager
def _work_dir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
            yield Path(scratch)


@contextlib.asynccontextmanager
async def _running(server: ChaosServer, pool: WorkerPool) -> AsyncIterator[None]:
    await server.start()
    try:
        pool.fill()
        yield
    finally:
        pool.stop_all()
        if server.dev.running_pid() is not None:
            await server.kill()


async def run_chaos(options: ChaosOptions) -> ChaosReport:
    """Run the chaos scenario of ``options`` and return its counts and problems.

    Raises:
        ChaosError: The harness could not set up (the dev server did not start, say).
    """
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    settings = asdict(options)
    settings["work_dir"] = str(options.work_dir) if options.work_dir else None
    report = ChaosReport(seed=seed, options={**settings, "seed": seed})
    started = time.monotonic()
    with _work_dir(options.work_dir) as work_dir:
        (work_dir / "logs").mkdir(exist_ok=True)
        server = ChaosServer(work_dir / "temporal")
        env = worker_env(
            server.address, work_dir, f"chaos-{uuid.uuid4().hex[:8]}", options.model_latency_ms
        )
        inventory_path = Path(env["INVENTORY_DB"])
        inventory.reset(inventory_path)
        pool = WorkerPool(env, work_dir / "logs", options.workers)
        async with _running(server, pool):
            client = await Client.connect(
                server.address,
                data_converter=data_converter_from_env(env),
                runtime=quiet_runtime(),
            )
            driver = Driver(options, seed, server, pool, client, report)
            await driver.start_runs()
            await driver.run()
            report.worker_kills = pool.kills
            report.worker_starts = pool.starts
            report.worker_exits_before_connecting = pool.exits_before_connecting
            report.worker_exits_after_connecting = pool.exits_after_connecting
            if pool.exits_after_connecting:
                report.problems.append(
                    f"workers exited on their own after connecting: {pool.exits_after_connecting}"
                )
            if report.server_restarts < options.server_restarts:
                report.problems.append(
                    f"only {report.server_restarts} of {options.server_restarts} server "
                    "restarts happened before the runs finished"
                )
            check_runs(driver.runs, driver.sent, report)
            await check_histories(client, driver.runs, report)
            if report.workflow_tasks_left_failing:
                report.problems.append(
                    f"workflow tasks left failing: {report.workflow_tasks_left_failing}"
                )
        check_effects(inventory_path, Path(env["CHAOS_EFFECTS_JOURNAL"]), driver.runs, report)
    report.wall_seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ChaosOptions()
    parser.add_argument("--flagship", type=int, default=defaults.flagship)
    parser.add_argument("--soak", type=int, default=defaults.soak)
    parser.add_argument("--soak-steps", type=int, default=defaults.soak_steps)
    parser.add_argument("--soak-bytes", type=int, default=defaults.soak_bytes)
    parser.add_argument("--soak-continue-as-new", type=int, default=defaults.soak_continue_as_new)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--kill-every", type=float, default=defaults.kill_every)
    parser.add_argument("--server-restarts", type=int, default=defaults.server_restarts)
    parser.add_argument("--server-down", type=float, default=defaults.server_down_seconds)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=defaults.timeout)
    parser.add_argument("--work-dir", type=Path, help="keep state and logs here (default: temp)")
    parser.add_argument("--timeline", action="store_true", help="print kills, restarts, ends")
    args = parser.parse_args(argv)
    options = ChaosOptions(
        flagship=args.flagship,
        soak=args.soak,
        soak_steps=args.soak_steps,
        soak_bytes=args.soak_bytes,
        soak_continue_as_new=args.soak_continue_as_new,
        workers=args.workers,
        kill_every=args.kill_every,
        server_restarts=args.server_restarts,
        server_down_seconds=args.server_down,
        seed=args.seed,
        timeout=args.timeout,
        work_dir=args.work_dir,
    )
    report = asyncio.run(run_chaos(options))
    print(f"\nchaos, seed {report.seed}")
    print(report.table())
    if args.timeline:
        print("\n".join(report.timeline))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(report.to_json(), indent=2, default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
