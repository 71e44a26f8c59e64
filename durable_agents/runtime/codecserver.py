"""The embedded codec server: started next to the embedded dev server, so the Web UI and the
``temporal`` CLI show what offloaded (and encrypted) payloads hold instead of a reference.

It is ``python -m durable_agents.codec.server`` with this process's environment (the same
payload store and keys as the workers), detached like the dev server, on ``127.0.0.1:8081``
(``DURABLE_AGENTS_CODEC_PORT``), with a random token kept in ``<state dir>/codec-token`` (or
``DURABLE_AGENTS_CODEC_TOKEN``). The dev server's Web UI is pointed at it with the token in the
endpoint's path (it has no login and cannot send a header); the CLI uses
``TEMPORAL_CODEC_ENDPOINT`` and ``TEMPORAL_CODEC_AUTH``. ``DURABLE_AGENTS_CODEC_SERVER=off``
turns it off.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from durable_agents.codec._server import HEALTH_SERVICE, TOKEN_ENV
from durable_agents.runtime.devserver import (
    DevServerError,
    port_open,
    start_detached,
    stop_detached,
)
from durable_agents.runtime.settings import PROJECT_ROOT

EMBEDDED_CODEC_PORT = 8081
"""Where the embedded codec server listens unless ``DURABLE_AGENTS_CODEC_PORT`` says otherwise."""


@dataclass(frozen=True)
class CodecSidecar:
    state_dir: Path
    """Where the token, pid file and log live (the dev server's state directory)."""
    port: int = EMBEDDED_CODEC_PORT
    namespace: str = "default"
    ui_ports: tuple[int, ...] = (8233,)
    """Ports of Web UIs allowed to call it (CORS), on ``localhost`` and ``127.0.0.1``."""
    host: str = "127.0.0.1"

    @classmethod
    def from_env(
        cls, state_dir: Path, namespace: str, ui_port: int, environ: Mapping[str, str] | None = None
    ) -> CodecSidecar | None:
        """The sidecar for this environment, or ``None`` when ``DURABLE_AGENTS_CODEC_SERVER=off``
        or there is nothing to decode (``PAYLOAD_STORE=off`` and no encryption keys)."""
        env = os.environ if environ is None else environ
        if env.get("DURABLE_AGENTS_CODEC_SERVER", "").strip().lower() in ("off", "0", "false"):
            return None
        store_off = env.get("PAYLOAD_STORE", "").strip().lower() == "off"
        has_keys = bool(
            env.get("DURABLE_AGENTS_CODEC_KEYS") or env.get("DURABLE_AGENTS_CODEC_KEY_FILE")
        )
        if store_off and not has_keys:
            return None
        port = int(env.get("DURABLE_AGENTS_CODEC_PORT") or EMBEDDED_CODEC_PORT)
        return cls(state_dir=state_dir, port=port, namespace=namespace, ui_ports=(ui_port,))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "codec-token"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "codec.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "codec.log"

    def token(self) -> str:
        """``DURABLE_AGENTS_CODEC_TOKEN``, else the state directory's token (made on first use,
        readable by this user only)."""
        from_env = os.environ.get(TOKEN_ENV, "").strip()
        if from_env:
            return from_env
        try:
            return self.token_file.read_text().strip()
        except FileNotFoundError:
            pass
        self.state_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token)
        return token

    @property
    def ui_endpoint(self) -> str:
        """The Web UI's codec endpoint: the token travels in the path (see ``codec._server``)."""
        return f"{self.url}/t/{self.token()}"

    def cli_environment(self) -> str:
        """The line that points the ``temporal`` CLI at this server."""
        return (
            f"export TEMPORAL_CODEC_ENDPOINT={self.url} TEMPORAL_CODEC_AUTH='Bearer {self.token()}'"
        )

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "durable_agents.codec.server", "--host", self.host,
               "--port", str(self.port), "--namespace", self.namespace,
               "--log-level", "warning"]  # fmt: skip
        for port in self.ui_ports:
            cmd += ["--origin", f"http://localhost:{port}", "--origin", f"http://127.0.0.1:{port}"]
        return cmd

    def healthy(self) -> bool:
        """Whether this project's codec server answers on the port."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                return bool(json.load(response).get("service") == HEALTH_SERVICE)
        except (OSError, ValueError):
            return False

    async def ensure_running(
        self, timeout: float = 30.0, environ: Mapping[str, str] | None = None
    ) -> bool:
        """Start the server unless it answers already. Returns True if it was started.

        ``environ`` (default ``os.environ``) configures its payload store and keys.

        Raises:
            DevServerError: Something else listens on the port, or the server did not start.
        """
        if port_open(self.host, self.port):
            if await asyncio.to_thread(self.healthy):
                return False
            raise DevServerError(
                f"port {self.port} is taken by something other than this project's codec "
                "server; set DURABLE_AGENTS_CODEC_PORT to a free port (or "
                "DURABLE_AGENTS_CODEC_SERVER=off)"
            )
        process = start_detached(
            self.command(),
            self.pid_file,
            self.log_file,
            cwd=PROJECT_ROOT,
            env={**(os.environ if environ is None else environ), TOKEN_ENV: self.token()},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self.healthy):
                return True
            if process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        tail = self.log_file.read_text(errors="replace")[-2000:]
        raise DevServerError(f"the codec server did not start; log {self.log_file}:\n{tail}")

    def stop(self) -> bool:
        """Stop the server this project started. Returns False if none was running."""
        return stop_detached(self.pid_file)
