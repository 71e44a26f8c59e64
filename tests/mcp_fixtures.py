"""A real MCP server for tests: ``tests/mcp_servers/inventory_server.py`` over stdio or HTTP.

Registered for every test by ``pytest_plugins`` in ``tests/conftest.py``. Effects are counted
in the server's tickets file, the system that performs them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from durable_agents.mcp_tools import McpServer

SERVER_SCRIPT = Path(__file__).parent / "mcp_servers" / "inventory_server.py"
SERVER_STARTUP_SECONDS = 20.0


@dataclass(frozen=True)
class Inventory:
    """A running inventory MCP server and the file where it records tickets."""

    server: McpServer
    tickets_file: Path

    def tickets(self) -> list[dict[str, object]]:
        if not self.tickets_file.exists():
            return []
        return [json.loads(line) for line in self.tickets_file.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def http_inventory(tmp_path: Path) -> Iterator[Inventory]:
    """The server as its own process on streamable HTTP; stopped after the test."""
    tickets_file = tmp_path / "tickets.jsonl"
    port = free_port()
    log = (tmp_path / "http_server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--transport", "http", "--port", str(port)],
        env={**os.environ, "TICKETS_FILE": str(tickets_file)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"MCP server exited: {(tmp_path / 'http_server.log').read_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server = McpServer(name="inventory", transport="http", url=f"http://127.0.0.1:{port}/mcp")
        yield Inventory(server, tickets_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def stdio_inventory(tmp_path: Path) -> Inventory:
    """The server spawned by the client over stdio, once per connection."""
    tickets_file = tmp_path / "tickets.jsonl"
    server = McpServer(
        name="inventory",
        transport="stdio",
        command=sys.executable,
        args=[str(SERVER_SCRIPT)],
        env={"TICKETS_FILE": str(tickets_file)},
    )
    return Inventory(server, tickets_file)


@pytest.fixture(params=["stdio", "http"])
def inventory(request: pytest.FixtureRequest) -> Inventory:
    fixture: Inventory = request.getfixturevalue(f"{request.param}_inventory")
    return fixture
