"""A real MCP server for the MCP tool tests, built on the SDK's ``MCPServer``.

Run it over stdio (what ``McpServer(transport="stdio", ...)`` spawns) or streamable HTTP::

    python tests/mcp_servers/inventory_server.py --transport stdio
    python tests/mcp_servers/inventory_server.py --transport http --port 8765   # at /mcp

Tickets live in the file named by ``TICKETS_FILE``, one JSON object a line, so tests count
effects in the system that performs them. ``create_ticket`` honours the idempotency key the
client sends in the request ``_meta``: the key is written on the ticket's line, and a call whose
key is already in the file returns the original ticket id without appending. Keeping the record
in the file (not in memory) matters over stdio, where every call is a fresh server process.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import INVALID_PARAMS, ToolAnnotations

# Must match mcp_tools.IDEMPOTENCY_KEY_META; spelled out so the server stays standalone.
IDEMPOTENCY_KEY_META = "idempotency_key"

server = MCPServer("inventory")


def _tickets_file() -> Path:
    path = os.environ.get("TICKETS_FILE")
    if not path:
        raise ToolError("TICKETS_FILE is not set")
    return Path(path)


def _read_tickets(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def get_ticket(ticket_id: str) -> str:
    """Look up a ticket by id (``T-<n>``) and return it as JSON."""
    if not re.fullmatch(r"T-\d+", ticket_id):
        # A protocol-level rejection (a JSON-RPC error, not an isError result), as servers
        # built on other SDKs send for invalid arguments.
        raise MCPError(INVALID_PARAMS, f"ticket id {ticket_id!r} is not of the form T-<n>")
    for ticket in _read_tickets(_tickets_file()):
        if ticket["id"] == ticket_id:
            return json.dumps(
                {"id": ticket["id"], "title": ticket["title"], "body": ticket["body"]}
            )
    raise ToolError(f"no ticket {ticket_id!r}")


@server.tool()
def create_ticket(title: str, body: str, ctx: Context) -> str:
    """Open a ticket and return its id. Deduplicated by the request's idempotency key."""
    meta = ctx.request_context.meta or {}
    key = meta.get(IDEMPOTENCY_KEY_META)
    path = _tickets_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        # One writer at a time, across processes: read-check-append must be atomic for the
        # dedupe to hold when two calls with the same key race.
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        tickets = [json.loads(line) for line in handle.read().splitlines() if line.strip()]
        if key is not None:
            for ticket in tickets:
                if ticket.get("idempotency_key") == key:
                    return str(ticket["id"])
        ticket_id = f"T-{len(tickets) + 1}"
        line = {"id": ticket_id, "title": title, "body": body, "idempotency_key": key}
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        return ticket_id


@server.tool(annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=True))
def close_ticket(ticket_id: str) -> str:
    """Mark a ticket closed (repeating it changes nothing more)."""
    return f"{ticket_id} closed"


@server.tool()
def explode() -> str:
    """Always fails: the result comes back with isError set."""
    raise ToolError("the inventory exploded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    if options.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=options.port)


if __name__ == "__main__":
    main()
