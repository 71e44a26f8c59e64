"""Time to resume after kill -9 of the worker, against the steps the run had already done.

    python -m bench.resume [--after 10,100,300]

For each N: a real ``python worker.py`` process runs a ``soak`` run; once the run has done N
steps the worker is killed with SIGKILL and a new one started at once. The figure is the time
from the kill until the run completes its next step on the new worker. It is bounded below by
how Temporal notices the dead worker (the sticky queue's 5 s schedule-to-start timeout for a
workflow task, the 10 s heartbeat timeout for a running activity), plus the new worker's
replay of the history so far. Absolute seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from bench import RESULTS
from bench._harness import dev_server
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
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


async def one(client: Client, env: dict[str, str], scratch: Path, after: int) -> float:
    queue = f"resume-{uuid.uuid4()}"
    env = {**env, "AGENTS_TASK_QUEUE": queue}
    worker = start_worker(env, scratch / f"worker-{after}-a.log")
    handle: WorkflowHandle[Any, AgentResult] = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="soak", task=f"steps={after + 20} bytes=100"),
        id=f"resume-{after}-{uuid.uuid4()}",
        task_queue=queue,
        result_type=AgentResult,
    )
    latest = client.get_workflow_handle(handle.id, result_type=AgentResult)
    while (await steps_done(latest) or 0) < after:  # noqa: ASYNC110 (polling a remote run)
        await asyncio.sleep(0.05)
    killed_at = time.perf_counter()
    kill9(worker)
    at_kill = await steps_done(latest)  # None: nobody answers now
    replacement = start_worker(env, scratch / f"worker-{after}-b.log")
    try:
        baseline: int | None = at_kill
        while True:
            done = await steps_done(latest)
            if done is not None:
                if baseline is None:
                    baseline = done  # the first answer comes from the replayed state
                elif done > baseline:
                    return time.perf_counter() - killed_at
            await asyncio.sleep(0.05)
    finally:
        await latest.cancel()
        kill9(replacement)


async def main(afters: list[int]) -> dict[int, float]:
    env_server = await dev_server()
    figures: dict[int, float] = {}
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
                figures[after] = await one(client, env, Path(scratch), after)
                print(
                    f"  killed after {after} steps: resumed in {figures[after]:.1f} s", flush=True
                )
    print("\ntime to resume after kill -9 (kill -> next step done on a new worker), seconds")
    for after, seconds in figures.items():
        print(f"{after:>6} steps done   {seconds:6.1f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resume.json").write_text(json.dumps({"seconds": figures}, indent=2))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--after", default="10,100,300")
    options = parser.parse_args()
    asyncio.run(main([int(a) for a in options.after.split(",")]))
