"""Real worker processes for crash tests: ``python worker.py`` started and killed -9.

Fixtures ``worker_env`` (a worker's environment on the test's task queue, with the scripted
provider's call journal) and ``workers`` (processes started by a test, stopped after it), and the
helpers that read what happened from history and from the effect journal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from durable_agents.contracts import AgentResult
from durable_agents.runtime.settings import PROJECT_ROOT
from starter import has_pollers


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()


@pytest.fixture
def worker_env(
    temporal_env: WorkflowEnvironment, tmp_path: Path, task_queue: str, payload_dir: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        AGENTS_TASK_QUEUE=task_queue,
        SCRIPTED_MODEL_LATENCY_MS="1500",
        SCRIPTED_MODEL_JOURNAL=str(tmp_path / "model-calls.journal"),
        INVENTORY_DB=str(tmp_path / "inventory.db"),
        PAYLOAD_STORE_DIR=str(payload_dir),
    )
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    return env


@pytest.fixture
def workers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


async def wait_for_poller(client: Client, task_queue: str, present: bool = True) -> None:
    for _ in range(300):
        if await has_pollers(client, task_queue) == present:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"pollers on {task_queue!r} never became {present}")


async def completed_model_calls(handle: WorkflowHandle[object, AgentResult]) -> list[str]:
    scheduled: dict[int, str] = {}
    completed: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "call_model":
                scheduled[event.event_id] = attrs.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            if sched in scheduled:
                completed.append(scheduled[sched])
    return completed


def effect_journal(path: Path) -> list[tuple[str, str, bool]]:
    """(event, idempotency key, duplicate_suppressed) per line of the chaos agent's journal."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        event, key, *rest = line.split()
        entries.append((event, key, rest[:1] == ["True"]))  # then the pid
    return entries


def effects_in_flight(path: Path) -> set[str]:
    """Keys of calls whose effect is committed and whose attempt has not reported back yet."""
    open_keys: Counter[str] = Counter()
    for event, key, _ in effect_journal(path):
        open_keys[key] += 1 if event == "committed" else -1
    return {key for key, count in open_keys.items() if count > 0}


async def completed_model_calls_in(client: Client, workflow_ids: list[str]) -> dict[str, list[str]]:
    """``completed_model_calls`` of each workflow (none for one that has not started yet)."""
    done: dict[str, list[str]] = {}
    for workflow_id in workflow_ids:
        try:
            done[workflow_id] = await completed_model_calls(client.get_workflow_handle(workflow_id))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            done[workflow_id] = []
    return done


def assert_model_calls_not_repeated(journal: Path, done: dict[str, list[str]]) -> None:
    """Each model call in ``done`` (workflow id -> activity ids completed before a kill) was
    made exactly once, as the scripted provider's journal of idempotency keys shows."""
    keys = journal.read_text().split()
    for workflow_id, calls in done.items():
        for activity_id in calls:
            step = activity_id.removeprefix("model-")
            attempts = [
                key
                for key in keys
                if key.startswith(f"{workflow_id}/")
                and key.endswith(f"/model/{step}")
                and key.count("/") == workflow_id.count("/") + 3
            ]
            assert len(attempts) == 1, f"{workflow_id} {activity_id} was made again after the kill"
