"""The Temporal Web UI, in a real browser, shows the flagship demo run as a user needs to see it.

Issue 9: the Web UI (and the CLI) showed a storage reference (``claimData``) instead of a run's
status and result. This drives a headless Chromium (``tests.webui``) against the Web UI of its
own embedded dev server, after running the demo exactly as ``make demo`` does, and checks what
a person opening the run's link would read. It also refreshes the screenshot in the docs,
``docs/web-ui-demo-run.png``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from durable_agents.runtime.codecserver import CodecSidecar
from durable_agents.runtime.devserver import DevServer, DevServerError
from durable_agents.runtime.settings import PROJECT_ROOT
from tests import webui

DEMO_TASK = (
    "Our cloud bill spiked this week. Find out why, tell the owner, and stop anything idle "
    "that is burning money."
)  # the Makefile's TASK
SCREENSHOT = PROJECT_ROOT / "docs" / "web-ui-demo-run.png"
"""Refreshed when ``UPDATE_SCREENSHOTS=1``; otherwise the test's picture goes to its tmp dir."""
NOT_FROM_THE_CALLER = (
    "TEMPORAL_",  # the server is this test's own
    "AGENTS_TASK_QUEUE",
    "ANTHROPIC_",  # the demo runs on the offline scripted model
    "OPENAI_",
    "SCRIPTED_MODEL_",
    "MCP_SERVERS",
    "DURABLE_AGENTS_CODEC",  # payloads in plain JSON, as a fresh clone has them
    "PAYLOAD_",  # the default storage settings
)
"""Variables of the caller's environment left out, so the run is the demo on any machine."""


def free_ports(count: int) -> list[int]:
    """Ports free now, all different (the sockets stay open until all are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def start_servers(tmp_path: Path, attempts: int = 3) -> tuple[DevServer, CodecSidecar]:
    """A dev server with its Web UI pointed at a codec server, on free ports (not 7233/8233/8081:
    a developer's may be there). Ports are free when picked but not reserved: the dev server
    also takes random ports of its own and may race one of ours, so a failed start is retried
    on new ports."""
    for attempt in range(1, attempts + 1):
        port, ui_port, codec_port = free_ports(3)
        state_dir = tmp_path / f"temporal-{attempt}"
        codec = CodecSidecar(state_dir=state_dir, port=codec_port, ui_ports=(ui_port,))
        server = DevServer(
            state_dir=state_dir,
            port=port,
            ui_port=ui_port,
            search_attributes={"AgentStatus": "Keyword"},
            ui_codec_endpoint=codec.ui_endpoint,
        )
        try:
            await server.ensure_running()
            return server, codec
        except DevServerError:
            server.stop()
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def demo_env(server: DevServer, tmp_path: Path) -> dict[str, str]:
    """What ``make demo`` runs with, pointed at ``server`` (``INVENTORY_DB`` and ``EFFECTS_DB``
    come from the ``inventory_db`` fixture)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_FROM_THE_CALLER)}
    env.update(
        TEMPORAL_ADDRESS=server.address,
        TEMPORAL_UI_URL=f"http://{server.host}:{server.ui_port}",
        PAYLOAD_STORE_DIR=str(tmp_path / "payloads"),
        ESCALATION_OUTBOX=str(tmp_path / "escalations.jsonl"),
    )
    return env


async def run(*args: str, env: dict[str, str], timeout: float = 180) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{' '.join(args[1:3])} did not finish in {timeout:.0f}s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run_demo(server: DevServer, tmp_path: Path) -> dict[str, Any]:
    """``make demo`` against ``server``: reseed the inventory, then ``starter.py run finops``.

    With ``TEMPORAL_ADDRESS`` set the starter hosts no worker, so ``worker.py`` runs beside it,
    as it would against any server. Returns the starter's ``--json`` output.
    """
    env = demo_env(server, tmp_path)
    code, out, err = await run(sys.executable, "-m", "examples.finops.inventory", "reset", env=env)
    assert code == 0, err
    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log
        )
    try:
        code, out, err = await run(
            sys.executable, "starter.py", "run", "finops", DEMO_TASK,
            "--approve-as", "demo-operator", "--json", "--id", f"finops-{uuid.uuid4().hex[:8]}",
            env=env,
        )  # fmt: skip
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)  # a clean stop, as Ctrl-C
            try:
                await asyncio.wait_for(worker.wait(), 30)
            except TimeoutError:
                worker.kill()
                await worker.wait()
    worker_tail = worker_log.read_text(errors="replace")[-3000:]
    assert code == 0, f"starter.py run failed:\n{err}\nworker.log:\n{worker_tail}"
    result: dict[str, Any] = json.loads(out)
    assert result["status"] == "completed", result
    return result


def distinctive_line(output: str) -> str:
    """The longest line of the report that the UI shows verbatim (no quotes or backslashes,
    which a JSON view escapes)."""
    lines = [line.strip() for line in output.splitlines()]
    shown_verbatim = [line for line in lines if line and '"' not in line and "\\" not in line]
    assert shown_verbatim, output
    return max(shown_verbatim, key=len)


def expected_summaries(result: dict[str, Any]) -> list[str]:
    """The activity summaries the workflow gives its model and tool calls:
    ``model step N · MODEL`` and ``tool NAME(ARGS-EXCERPT)`` (only the ``tool NAME(`` part is
    checked: the excerpt's length is the workflow's business)."""
    model_steps = [f"model step {n} · {result['model']}" for n in range(1, result["steps"] + 1)]
    tools = sorted({f"tool {call['name']}(" for call in result["tool_calls"]})
    return model_steps + tools


async def test_web_ui_shows_the_demo_runs_report_and_activity_summaries(tmp_path: Path) -> None:
    """Opening the demo run's link in the Web UI shows what the run did, not storage internals.

    After the flagship demo (``make demo``'s task, scripted model, approval given) completes on
    an embedded dev server, Chromium on the run's Web UI page reads:

    1. the run's FinOps report (the result's ``output``) in the Result panel;
    2. the activity summaries, ``model step N · MODEL`` and ``tool NAME(...)``, on the timeline
       and in the Event History, for every step and every tool the run called;
    3. nowhere ``claimData``: neither the workflow's Input and Result panels nor the Event
       History show a reference to externally stored payloads in place of a value.

    As in embedded mode, the dev server's Web UI uses the codec server started next to it, so
    the offloaded conversation (the ``call_model`` inputs) reads as the real request too.

    The workflow page, once it shows all that, is saved (as ``docs/web-ui-demo-run.png`` with
    ``UPDATE_SCREENSHOTS=1``).
    Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it): the test
    fails without it rather than skip.
    """
    webui.chromium_path()  # fail at once, with how to install it, rather than after the run
    server, codec = await start_servers(tmp_path)
    screenshot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path / "run.png"
    try:
        await codec.ensure_running(environ=demo_env(server, tmp_path))
        result = await run_demo(server, tmp_path)
        ui = f"http://{server.host}:{server.ui_port}/namespaces/{server.namespace}/workflows"
        report_line = distinctive_line(result["output"])
        summaries = expected_summaries(result)

        async with webui.chromium() as browser:
            # The run's link: the UI redirects to its latest run, Timeline tab (Input, Result,
            # then a timeline labelled by activity type and summary).
            page = await webui.open_page(browser, f"{ui}/{result['workflow_id']}")
            # (1) the report, not a reference, in the Result panel (a CodeMirror view)
            await webui.wait_for_text(page, report_line)
            result_panel = await page.locator('[aria-label="Result"]').inner_text()
            assert report_line in result_panel, f"the Result panel shows:\n{result_panel}"
            # (3) no storage reference in the Input or Result panel, or anywhere else here
            shown = await webui.page_text(page)
            assert "claimData" not in shown, f"the workflow page shows a reference:\n{shown}"
            try:
                # (2) every model step and every tool, by its summary, on the timeline
                await webui.wait_for_text(page, *summaries)
            finally:
                # The picture for the docs, once the page shows the run's result.
                await webui.screenshot(page, screenshot)

            # The Event History: every event on one page, each activity with its summary.
            history = await webui.open_page(
                browser, f"{ui}/{result['workflow_id']}/{result['run_id']}/history"
            )
            await webui.wait_for_text(history, "Workflow Execution Completed")
            await history.locator("select#per-page-filter").select_option("500")
            await webui.wait_for_text(history, "Workflow Execution Started")
            completed = history.locator("tr", has_text="Workflow Execution Completed")
            completed_row = await completed.first.inner_text()
            assert "stored externally" not in completed_row, completed_row  # the result, inline
            history_text = await webui.wait_for_text(history, *summaries)  # (2)
            assert "claimData" not in history_text, history_text  # (3)
            # The codec server resolved the offloaded model requests: nothing reads as stored.
            assert "stored externally" not in history_text, history_text
    finally:
        codec.stop()
        server.stop()
