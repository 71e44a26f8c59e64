"""Talk to MCP servers: list their tools as ``ToolSchema``s and call one tool.

Every function opens a fresh connection (a new process for stdio, a new session for HTTP) and
closes it before returning. Activities may run on any worker, and a retry may land on another
one: a session cached in this process would not exist there, and one cached here could have gone
stale (a restarted server forgets its sessions). A connection per call costs a handshake, or a
process spawn for stdio, but makes each attempt self-contained; the only thing attempts share is
the idempotency key, which is exactly what a server needs to deduplicate them.

Errors::

    McpServerError         could not connect, or the server failed the exchange: raise, so
                           Temporal retries the activity
    (text, is_error=True)  the tool reported an error (``isError``), or the server rejected the
                           call itself (unknown tool, invalid arguments): data for the model
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

import mcp.types as mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client import Transport
from mcp.client.streamable_http import streamable_http_client

# The SDK's own factory for the HTTP client with its recommended timeouts (30 s, 300 s to read
# the event stream); public in the module's __all__, though the module name is underscored.
from mcp.shared._httpx_utils import create_mcp_http_client

from durable_agents.contracts.tools import ToolEffect, ToolSchema
from durable_agents.mcp_tools.servers import TOOL_NAME_SEPARATOR, McpServer

IDEMPOTENCY_KEY_META: Final = "idempotency_key"
"""Key of the idempotency key in the ``_meta`` of every ``tools/call`` request."""

CLIENT_INFO: Final = mcp_types.Implementation(name="durable-agents", version="0.1.0")

# JSON-RPC errors that reject this request as such; sending it again would change nothing, so
# the model is told, as for a tool error. Any other error (connection closed, internal error,
# timeout) may be transient and is raised for Temporal to retry.
_REJECTIONS: Final = frozenset(
    {mcp_types.INVALID_REQUEST, mcp_types.METHOD_NOT_FOUND, mcp_types.INVALID_PARAMS}
)

_MAX_TOOL_PAGES: Final = 100
"""A server whose tools/list cursor never ends must not hang the activity."""

_T = TypeVar("_T")


class McpServerError(Exception):
    """Connecting to an MCP server failed, or the server failed the exchange. Retryable."""


async def list_tools(server: McpServer) -> list[ToolSchema]:
    """The server's tools, named ``<server>__<tool>``, with their effect from annotations.

    ``readOnlyHint`` gives ``read_only``, else ``idempotentHint`` gives ``idempotent``, else
    ``side_effect``: a tool that says nothing is assumed to act on the world.

    Raises:
        McpServerError: The server could not be reached or failed to list its tools.
    """

    async def fetch(client: Client) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return tools
        raise McpServerError(
            f"MCP server {server.name!r} listed more than {_MAX_TOOL_PAGES} pages of tools"
        )

    tools = await _with_client(server, fetch)
    return [
        ToolSchema(
            name=f"{server.name}{TOOL_NAME_SEPARATOR}{tool.name}",
            description=tool.description or "",
            parameters=tool.input_schema,
            effect=_effect(tool.annotations),
        )
        for tool in tools
    ]


async def call_tool(
    server: McpServer, tool_name: str, arguments: dict[str, Any], idempotency_key: str
) -> tuple[str, bool]:
    """Call one tool; return its text content and whether it is an error.

    The idempotency key goes in the request's ``_meta`` as ``{"idempotency_key": key}``, so a
    server that supports it can return the first outcome instead of acting twice.

    Args:
        server: Where the tool lives.
        tool_name: The tool's own name on the server, without the ``<server>__`` prefix.
        arguments: The tool's arguments.
        idempotency_key: Stable across retries of this call; see ``durable_agents.runner.keys``.

    Returns:
        ``(text, is_error)``: text content joined by newlines; ``is_error`` when the tool
        reported an error or the server rejected the call (unknown tool, invalid arguments).

    Raises:
        McpServerError: The server could not be reached or failed the exchange.
    """

    async def call(client: Client) -> tuple[str, bool]:
        # RequestParamsMeta is an open TypedDict (PEP 728 ``extra_items=Any``), which mypy does
        # not read as open yet, hence the cast. On 2026-07-28 connections the SDK adds its own
        # ``io.modelcontextprotocol/*`` keys next to ours.
        meta = cast("mcp_types.RequestParamsMeta", {IDEMPOTENCY_KEY_META: idempotency_key})
        try:
            result = await client.call_tool(tool_name, arguments, meta=meta)
        except MCPError as err:
            if err.code not in _REJECTIONS:
                raise
            return f"MCP server {server.name!r} rejected the call: {err.message}", True
        text = _text_of(result)
        if result.is_error and not text:
            text = f"MCP tool {tool_name!r} on {server.name!r} reported an error"
        return text, result.is_error

    return await _with_client(server, call)


async def _with_client(server: McpServer, use: Callable[[Client], Awaitable[_T]]) -> _T:
    """Connect, run ``use``, disconnect; any failure becomes one readable McpServerError.

    The SDK runs transports in task groups, so failures (and anything ``use`` raises) arrive
    wrapped in nested ``ExceptionGroup``s that would read as "unhandled errors in a TaskGroup"
    in the Web UI. Cancellation is a BaseException and passes through untouched.
    """
    try:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(await _client(server, stack))
            return await use(client)
    except Exception as err:
        leaves = _leaves(err)
        for leaf in leaves:
            if isinstance(leaf, McpServerError):
                raise leaf from err
        detail = "; ".join(_describe(leaf) for leaf in leaves)
        raise McpServerError(f"MCP server {server.name!r} ({_where(server)}): {detail}") from err


async def _client(server: McpServer, stack: AsyncExitStack) -> Client:
    """An unentered ``Client`` for ``server``; the HTTP client it needs is entered on ``stack``."""
    target: StdioServerParameters | Transport
    if server.transport == "stdio":
        assert server.command is not None  # McpServer checks it
        target = StdioServerParameters(command=server.command, args=server.args, env=server.env)
    else:
        assert server.url is not None  # McpServer checks it
        http = await stack.enter_async_context(create_mcp_http_client(headers=server.headers))
        target = streamable_http_client(server.url, http_client=http)
    # No response cache: the connection lives for one call, so there is nothing to reuse.
    return Client(target, cache=None, client_info=CLIENT_INFO)


def _effect(annotations: mcp_types.ToolAnnotations | None) -> ToolEffect:
    if annotations is not None and annotations.read_only_hint:
        return "read_only"
    if annotations is not None and annotations.idempotent_hint:
        return "idempotent"
    return "side_effect"


def _text_of(result: mcp_types.CallToolResult) -> str:
    """Text blocks joined by newlines; other blocks are named so the model knows they exist."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource) and isinstance(
            block.resource, mcp_types.TextResourceContents
        ):
            parts.append(block.resource.text)
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        else:
            parts.append(f"[{block.type} content omitted]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content)
    return "\n".join(parts)


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for inner in err.exceptions for leaf in _leaves(inner)]
    return [err]


def _describe(err: BaseException) -> str:
    if isinstance(err, MCPError):  # its str() is the (code, message, data) tuple
        return f"MCPError {err.code}: {err.message}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _where(server: McpServer) -> str:
    """The command or URL, for error messages: never headers, env, userinfo or query."""
    if server.transport == "stdio":
        return f"stdio {server.command}"
    parts = urlsplit(server.url or "")
    host = parts.netloc.rpartition("@")[2]
    return f"http {parts.scheme}://{host}{parts.path}"
