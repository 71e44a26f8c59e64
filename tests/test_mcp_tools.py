"""MCP tools against a real MCP server (``tests/mcp_servers/inventory_server.py``).

The server runs as a real process, over stdio (spawned by the client for each call) and over
streamable HTTP (started once per test on a free port); most tests run on both transports.
Effects are counted in the server's tickets file, the system that performs them, not in the
tool's answer. The activities run in ``ActivityEnvironment``, without a Temporal server.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from durable_agents import mcp_tools
from durable_agents.contracts.tools import ToolOutcome, ToolRequest
from durable_agents.effects import SqliteEffectLedger
from durable_agents.mcp_tools import (
    ListMcpToolsInput,
    McpActivities,
    McpServer,
    McpServerError,
    call_tool,
    list_tools,
    servers_from_env,
)
from tests.mcp_fixtures import Inventory, free_port

pytestmark = pytest.mark.timeout(60)


def tool_request(name: str, arguments: str, key: str = "wf-1/run-1/tool/0/call_0") -> ToolRequest:
    return ToolRequest(
        agent="ops", call_id="call_0", name=name, arguments=arguments, idempotency_key=key, step=0
    )


# --- list_tools ---------------------------------------------------------------------------


async def test_list_tools_prefixes_names_and_maps_annotations(inventory: Inventory) -> None:
    """Tools come back as ``<server>__<tool>`` with the server's schema and description, and
    their effect from annotations: readOnlyHint -> read_only, idempotentHint -> idempotent,
    no hints -> side_effect."""
    tools = {tool.name: tool for tool in await list_tools(inventory.server)}

    assert set(tools) == {
        "inventory__get_ticket",
        "inventory__create_ticket",
        "inventory__close_ticket",
        "inventory__explode",
    }
    assert tools["inventory__get_ticket"].effect == "read_only"
    assert tools["inventory__close_ticket"].effect == "idempotent"
    assert tools["inventory__create_ticket"].effect == "side_effect"
    assert tools["inventory__explode"].effect == "side_effect"
    create = tools["inventory__create_ticket"]
    assert create.description.startswith("Open a ticket")
    assert create.parameters["type"] == "object"
    assert set(create.parameters["properties"]) == {"title", "body"}
    assert create.parameters["required"] == ["title", "body"]


# --- call_tool ------------------------------------------------------------------------------


async def test_call_tool_returns_text_and_reaches_the_server(inventory: Inventory) -> None:
    """A call performs the effect on the server and returns the tool's text content; a
    read-only call reads it back."""
    text, is_error = await call_tool(
        inventory.server, "create_ticket", {"title": "Disk full", "body": "on db-1"}, "key-1"
    )
    assert (text, is_error) == ("T-1", False)
    assert [t["title"] for t in inventory.tickets()] == ["Disk full"]

    text, is_error = await call_tool(inventory.server, "get_ticket", {"ticket_id": "T-1"}, "key-2")
    assert not is_error
    assert json.loads(text) == {"id": "T-1", "title": "Disk full", "body": "on db-1"}


async def test_same_idempotency_key_acts_once(inventory: Inventory) -> None:
    """The key travels in the request ``_meta``: calling twice with the same key (as a retried
    activity does) writes one ticket and returns the same id; a different key writes another."""
    args = {"title": "Disk full", "body": "on db-1"}

    first = await call_tool(inventory.server, "create_ticket", args, "run-1/tool/0/call_0")
    again = await call_tool(inventory.server, "create_ticket", args, "run-1/tool/0/call_0")
    assert first == again == ("T-1", False)
    assert len(inventory.tickets()) == 1
    assert inventory.tickets()[0]["idempotency_key"] == "run-1/tool/0/call_0"

    other = await call_tool(inventory.server, "create_ticket", args, "run-1/tool/1/call_0")
    assert other == ("T-2", False)
    assert len(inventory.tickets()) == 2


async def test_tool_error_result_is_an_error(inventory: Inventory) -> None:
    """A result with ``isError`` comes back as ``is_error=True`` with the tool's message."""
    text, is_error = await call_tool(inventory.server, "explode", {}, "key-1")
    assert is_error
    assert "the inventory exploded" in text


async def test_unknown_tool_on_the_server_is_an_error(inventory: Inventory) -> None:
    """A tool the server does not have is an error result, not an exception to retry."""
    text, is_error = await call_tool(inventory.server, "no_such_tool", {}, "key-1")
    assert is_error
    assert "no_such_tool" in text


async def test_server_rejection_is_an_error(inventory: Inventory) -> None:
    """A JSON-RPC error that rejects the call itself (invalid params) is an error result for
    the model, not an exception: sending the same request again would change nothing."""
    text, is_error = await call_tool(inventory.server, "get_ticket", {"ticket_id": "7"}, "key-1")
    assert is_error
    assert text == (
        "MCP server 'inventory' rejected the call: ticket id '7' is not of the form T-<n>"
    )


async def test_unreachable_servers_raise_for_retry(tmp_path: Path) -> None:
    """Connection failures raise ``McpServerError`` naming the server and the cause, so
    Temporal retries the activity; nothing is hidden in an ExceptionGroup."""
    refused = McpServer(name="down", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(McpServerError, match=r"'down' \(http http://127\.0\.0\.1:\d+/mcp\)"):
        await call_tool(refused, "create_ticket", {}, "key-1")

    missing = McpServer(name="gone", transport="stdio", command=str(tmp_path / "no-such-binary"))
    with pytest.raises(McpServerError, match=r"'gone'.*FileNotFoundError"):
        await list_tools(missing)

    exits = McpServer(name="quits", transport="stdio", command=sys.executable, args=["-c", "pass"])
    with pytest.raises(McpServerError, match=r"'quits'.*Connection closed"):
        await list_tools(exits)


# --- activities ----------------------------------------------------------------------------


async def test_call_mcp_tool_activity_passes_the_request_key(inventory: Inventory) -> None:
    """The activity splits ``<server>__<tool>``, parses the JSON arguments and hands the
    request's idempotency key to the server, which records it with the effect."""
    activities = McpActivities({"inventory": inventory.server})
    request = tool_request(
        "inventory__create_ticket", '{"title": "Disk full", "body": "on db-1"}', key="wf/run/7"
    )

    outcome = await ActivityEnvironment().run(activities.call_mcp_tool, request)
    again = await ActivityEnvironment().run(activities.call_mcp_tool, request)

    assert outcome == again == ToolOutcome(call_id="call_0", name=request.name, content="T-1")
    assert [t["idempotency_key"] for t in inventory.tickets()] == ["wf/run/7"]


async def test_call_mcp_tool_activity_reports_tool_errors(inventory: Inventory) -> None:
    """An ``isError`` result becomes a ToolOutcome error the model reads."""
    activities = McpActivities({"inventory": inventory.server})
    outcome = await ActivityEnvironment().run(
        activities.call_mcp_tool, tool_request("inventory__explode", "{}")
    )
    assert outcome.is_error
    assert "the inventory exploded" in outcome.content


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("spy__create_ticket", '{"title": "x", ', "not valid JSON"),
        ("spy__create_ticket", '["x"]', "must be a JSON object, got ['x']"),
        ("nope__create_ticket", "{}", "unknown tool 'nope__create_ticket'"),
        ("create_ticket", "{}", "unknown tool 'create_ticket'"),
        ("spy__", "{}", "unknown tool 'spy__'"),
    ],
)
async def test_call_mcp_tool_activity_rejects_bad_input_without_contacting_the_server(
    tmp_path: Path, name: str, arguments: str, message: str
) -> None:
    """Malformed or non-object JSON arguments and names that are not ``<known server>__<tool>``
    come back as ToolOutcome errors naming the problem, and the server is never started: its
    "command" would leave a marker file behind."""
    marker = tmp_path / "spawned"
    spy = McpServer(
        name="spy",
        transport="stdio",
        command=sys.executable,
        args=["-c", f"open({str(marker)!r}, 'w').close()"],
    )
    activities = McpActivities({"spy": spy})

    outcome = await ActivityEnvironment().run(
        activities.call_mcp_tool, tool_request(name, arguments)
    )

    assert outcome.is_error
    assert message in outcome.content
    assert outcome.name == name and outcome.call_id == "call_0"
    assert not marker.exists()


async def test_list_mcp_tools_activity_lists_requested_servers(inventory: Inventory) -> None:
    """The activity returns the prefixed tools of the servers named in its input."""
    activities = McpActivities({"inventory": inventory.server})
    tools = await ActivityEnvironment().run(
        activities.list_mcp_tools, ListMcpToolsInput(servers=["inventory"])
    )
    assert "inventory__create_ticket" in {tool.name for tool in tools}


async def test_list_mcp_tools_unknown_server_is_non_retryable(
    stdio_inventory: Inventory,
) -> None:
    """A server name this worker does not know fails the activity for good, naming it:
    retrying on the same configuration cannot help."""
    activities = McpActivities({"inventory": stdio_inventory.server})
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.list_mcp_tools, ListMcpToolsInput(servers=["inventory", "crm"])
        )
    assert raised.value.non_retryable
    assert "'crm'" in str(raised.value)
    assert raised.value.type == "UnknownMcpServer"


def test_activities_refuse_a_server_registered_under_another_name(
    stdio_inventory: Inventory,
) -> None:
    """The mapping key is the name tools are routed by, so it must be the server's name."""
    with pytest.raises(ValueError, match="'inventory' is registered as 'crm'"):
        McpActivities({"crm": stdio_inventory.server})


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a__b", "transport": "stdio", "command": "x"}, "server name 'a__b'"),
        ({"name": "a_", "transport": "stdio", "command": "x"}, "server name 'a_'"),
        ({"name": "a b", "transport": "stdio", "command": "x"}, "server name 'a b'"),
        (
            {"name": "a", "transport": "stdio"},
            "server 'a' uses transport 'stdio' but has no command",
        ),
        ({"name": "a", "transport": "http", "url": "ftp://h/mcp"}, "got 'ftp://h/mcp'"),
        ({"name": "a", "transport": "http"}, "got None"),
        (
            {"name": "a", "transport": "http", "url": "http://h/mcp", "command": "x"},
            "does not take command",
        ),
        ({"name": "a", "transport": "stdio", "command": "x", "url": "http://h"}, "not take url"),
        ({"name": "a", "transport": "sse", "url": "http://h"}, "'stdio' or 'http'"),
        ({"name": "a", "transport": "stdio", "command": "x", "cmd": "y"}, "cmd"),
    ],
)
def test_server_validation_names_the_bad_value(fields: dict[str, object], message: str) -> None:
    """Invalid server definitions fail with a message that names the offending value."""
    with pytest.raises(ValueError) as raised:
        McpServer.model_validate(fields)
    assert message in str(raised.value)


def test_server_repr_hides_secrets() -> None:
    """Headers and env may hold credentials; they stay out of repr (and so out of logs)."""
    server = McpServer(
        name="crm",
        transport="http",
        url="https://crm.example.com/mcp",
        headers={"Authorization": "Bearer s3cret"},
    )
    assert "s3cret" not in repr(server)


def test_servers_from_env_inline_and_file(tmp_path: Path) -> None:
    """``MCP_SERVERS`` holds the JSON inline, ``MCP_SERVERS_FILE`` names a file with the same
    JSON; keys become server names; neither set means no servers."""
    config = {
        "inventory": {"transport": "stdio", "command": "python", "args": ["server.py"]},
        "crm": {"transport": "http", "url": "https://crm.example.com/mcp"},
    }
    expected = {
        "inventory": McpServer(
            name="inventory", transport="stdio", command="python", args=["server.py"]
        ),
        "crm": McpServer(name="crm", transport="http", url="https://crm.example.com/mcp"),
    }
    assert servers_from_env({"MCP_SERVERS": json.dumps(config)}) == expected
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(config))
    assert servers_from_env({"MCP_SERVERS_FILE": str(path)}) == expected
    assert servers_from_env({}) == {}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MCP_SERVERS": "{", "MCP_SERVERS_FILE": "x"}, "not both"),
        ({"MCP_SERVERS": "{"}, "MCP_SERVERS is not valid JSON"),
        ({"MCP_SERVERS": "[]"}, "must be a JSON object of server name to fields, got a JSON list"),
        ({"MCP_SERVERS": '{"a": 1}'}, "server 'a' must be a JSON object, got a JSON int"),
        ({"MCP_SERVERS_FILE": "/no/such/file.json"}, "cannot read MCP_SERVERS_FILE='/no/such"),
        (
            {"MCP_SERVERS": '{"a": {"name": "b", "transport": "stdio", "command": "x"}}'},
            "server 'a' has a different name field 'b'",
        ),
    ],
)
def test_servers_from_env_errors_name_the_source(environ: dict[str, str], message: str) -> None:
    """Bad configuration fails at worker start with a message naming where it came from."""
    with pytest.raises(ValueError) as raised:
        servers_from_env(environ)
    assert message in str(raised.value)


def test_servers_from_env_errors_do_not_leak_secrets() -> None:
    """An invalid server's error names the problem but not its headers' values."""
    config = {"crm": {"transport": "http", "url": "crm", "headers": {"Authorization": "s3cret"}}}
    with pytest.raises(ValueError) as raised:
        servers_from_env({"MCP_SERVERS": json.dumps(config)})
    assert "server 'crm' is invalid" in str(raised.value)
    assert "got 'crm'" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert raised.value.__cause__ is None


def test_public_api() -> None:
    """The package's public names, pinned."""
    assert sorted(mcp_tools.__all__) == [
        "IDEMPOTENCY_KEY_META",
        "ListMcpToolsInput",
        "McpActivities",
        "McpServer",
        "McpServerError",
        "SERVERS_ENV",
        "SERVERS_FILE_ENV",
        "TOOL_NAME_SEPARATOR",
        "call_tool",
        "list_tools",
        "servers_from_env",
    ]


async def test_call_mcp_tool_guards_side_effects_with_the_ledger(
    stdio_inventory: Inventory, tmp_path: Path
) -> None:
    """A ``side_effect`` MCP call runs inside the effects ledger: a retry with the same key is
    answered from the ledger without reaching the server; a read-only call is not recorded."""
    ledger = SqliteEffectLedger(tmp_path / "effects.db")
    activities = McpActivities({"inventory": stdio_inventory.server}, ledger)
    env = ActivityEnvironment()
    create = tool_request(
        "inventory__create_ticket", '{"title": "Disk full", "body": "db-1"}', key="k-create"
    ).model_copy(update={"effect": "side_effect"})
    read = tool_request("inventory__get_ticket", '{"ticket_id": "T-1"}', key="k-read")

    first = await env.run(activities.call_mcp_tool, create)
    stdio_inventory.tickets_file.unlink()  # a retry that reached the server would recreate it
    retry = await env.run(activities.call_mcp_tool, create)
    assert first.content == retry.content == "T-1"
    assert not stdio_inventory.tickets_file.exists()
    assert await ledger.recorded("k-create") is not None

    await env.run(activities.call_mcp_tool, read)
    assert await ledger.recorded("k-read") is None
