"""The ``list_mcp_tools`` and ``call_mcp_tool`` activities.

``list_mcp_tools`` runs once at the start of a run; its result is recorded in history, so a
replay sees the same tools even if a server has changed since. ``call_mcp_tool`` is one MCP tool
call, under the same rules as ``run_tool``: bad input from the model (an unknown tool, malformed
JSON) and errors the tool reports come back as a ``ToolOutcome`` with ``is_error=True`` for the
model to read; a server that cannot be reached raises, and Temporal retries. The call's
idempotency key goes to the server in the request ``_meta``; a ``side_effect`` tool (one whose
annotations do not say read-only or idempotent) also runs inside the effects ledger, so a
retried call gets the recorded answer even from a server that ignores the key.

Servers are worker configuration (:func:`mcp_tools.servers_from_env`), looked up by name: their
commands, URLs and credentials never enter workflow history.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._heartbeat import heartbeating
from durable_agents.contracts.tools import (
    InvalidArguments,
    ToolOutcome,
    ToolRequest,
    ToolSchema,
    clean_text,
    oversized_result,
    parse_arguments,
)
from durable_agents.effects import EffectLedger
from durable_agents.mcp_tools.servers import TOOL_NAME_SEPARATOR, McpServer

if TYPE_CHECKING:
    from types import ModuleType


def _client() -> ModuleType:
    """``mcp_tools.client``, imported on first use: the ``mcp`` SDK takes most of a second to
    import, which every worker start would pay (and a run resuming after a crash would wait
    for) though most workers never reach an MCP server."""
    from durable_agents.mcp_tools import client

    return client


class ListMcpToolsInput(BaseModel):
    """Input of the ``list_mcp_tools`` activity."""

    servers: list[str]
    """Names of configured MCP servers, in the order their tools are listed."""


class McpActivities:
    """MCP activities over the servers this worker is configured with."""

    def __init__(
        self, servers: Mapping[str, McpServer], ledger: EffectLedger | None = None
    ) -> None:
        """
        Args:
            servers: The MCP servers this worker can reach, by name.
            ledger: Guards ``side_effect`` calls; without one they rely on the server honouring
                the idempotency key alone.
        """
        for key, server in servers.items():
            if key != server.name:
                raise ValueError(f"MCP server {server.name!r} is registered as {key!r}")
        self._servers = dict(servers)
        self._ledger = ledger

    @activity.defn(name="list_mcp_tools")
    async def list_mcp_tools(self, request: ListMcpToolsInput) -> list[ToolSchema]:
        """The tools of the requested servers, named ``<server>__<tool>``.

        Raises:
            ApplicationError: Non-retryable, naming the server, when a name is not configured on
                this worker: retrying on the same configuration would fail the same way.
            McpServerError: A server could not be reached (retryable).
        """
        unknown = [name for name in request.servers if name not in self._servers]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise ApplicationError(
                f"unknown MCP server{'s' if len(unknown) > 1 else ''} {names}; "
                f"configured: {sorted(self._servers)!r}",
                type="UnknownMcpServer",
                non_retryable=True,
            )
        async with heartbeating():
            per_server = await asyncio.gather(
                *(_client().list_tools(self._servers[name]) for name in request.servers)
            )
        return [tool for tools in per_server for tool in tools]

    @activity.defn(name="call_mcp_tool")
    async def call_mcp_tool(self, request: ToolRequest) -> ToolOutcome:
        """Call the MCP tool ``request.name`` (``<server>__<tool>``) with its idempotency key.

        Raises:
            McpServerError: The server could not be reached or failed the exchange (retryable).
        """

        server_name, separator, tool_name = request.name.partition(TOOL_NAME_SEPARATOR)
        server = self._servers.get(server_name) if separator and tool_name else None
        if server is None:
            return ToolOutcome.error(request, f"unknown tool {request.name!r}")
        try:
            raw = parse_arguments(request.name, request.arguments)
        except InvalidArguments as err:
            return ToolOutcome.error(request, str(err))

        async def call() -> str:
            content, is_error = await _client().call_tool(
                server, tool_name, raw, request.idempotency_key
            )
            return json.dumps({"content": content, "is_error": is_error})

        async with heartbeating():
            if request.effect == "side_effect" and self._ledger is not None:
                answer = (await self._ledger.run_once(request.idempotency_key, call)).result
            else:
                answer = await call()
        decoded = json.loads(answer)
        content, is_error = clean_text(decoded["content"]), decoded["is_error"]
        if is_error:
            return ToolOutcome.error(request, content)
        too_big = oversized_result(request.name, content)
        if too_big is not None:
            return ToolOutcome.error(request, too_big)
        return ToolOutcome(call_id=request.call_id, name=request.name, content=content)
