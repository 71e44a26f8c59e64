"""MCP servers as tool sources for agents: their tools become ``<server>__<tool>`` tools.

- :mod:`mcp_tools.servers`: :class:`McpServer`, how to reach a server; :func:`servers_from_env`.
- :mod:`mcp_tools.client`: :func:`list_tools` and :func:`call_tool` over the ``mcp`` SDK.
- :mod:`mcp_tools.activities`: the ``list_mcp_tools`` and ``call_mcp_tool`` activities.
"""

from typing import TYPE_CHECKING, Any

from durable_agents.mcp_tools.activities import ListMcpToolsInput, McpActivities
from durable_agents.mcp_tools.servers import (
    SERVERS_ENV,
    SERVERS_FILE_ENV,
    TOOL_NAME_SEPARATOR,
    McpServer,
    servers_from_env,
)

__all__ = [
    "IDEMPOTENCY_KEY_META",
    "SERVERS_ENV",
    "SERVERS_FILE_ENV",
    "TOOL_NAME_SEPARATOR",
    "ListMcpToolsInput",
    "McpActivities",
    "McpServer",
    "McpServerError",
    "call_tool",
    "list_tools",
    "servers_from_env",
]

if TYPE_CHECKING:
    from durable_agents.mcp_tools.client import (
        IDEMPOTENCY_KEY_META,
        McpServerError,
        call_tool,
        list_tools,
    )

_FROM_CLIENT = {"IDEMPOTENCY_KEY_META", "McpServerError", "call_tool", "list_tools"}


def __getattr__(name: str) -> Any:
    # The client (and the ``mcp`` SDK under it) loads on first use, not with the worker.
    if name in _FROM_CLIENT:
        from durable_agents.mcp_tools import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
