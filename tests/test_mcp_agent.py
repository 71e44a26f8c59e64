"""MCP tools inside AgentWorkflow runs, on the dev server, against a real MCP server process.

The ``test-ticketing`` agent gets the tools of the ``inventory`` MCP server. Its tools are listed
once per run (an activity, so the listing is in history), offered under their ``<server>__<tool>``
names, and called under the same policy, approval and idempotency rules as Python tools.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView, PendingApproval
from durable_agents.contracts.approvals import DecideRequest, DecideResult
from durable_agents.mcp_tools import McpServer
from tests.conftest import running_worker
from tests.mcp_fixtures import Inventory

pytestmark = pytest.mark.timeout(120)


async def start(client: Client, task_queue: str) -> WorkflowHandle[object, AgentResult]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="test-ticketing", task="db-1 disk is full; open and close a ticket"),
        id=f"mcp-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )


async def pending_approval(handle: WorkflowHandle[object, AgentResult]) -> PendingApproval:
    while True:
        view = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            return view.pending_approvals[0]
        await asyncio.sleep(0.05)


async def activity_types(handle: WorkflowHandle[object, AgentResult]) -> list[str]:
    history = await handle.fetch_history()
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_mcp_tools_run_under_policy_approval_and_idempotency(
    client: Client, task_queue: str, registry: AgentRegistry, inventory: Inventory
) -> None:
    """An agent lists its MCP server's tools once, creates a ticket (one ticket in the server's
    file, carrying the run's idempotency key), reads it back, waits for a human before the gated
    close, and has the denied tool refused without it reaching the server."""
    async with running_worker(
        client, task_queue, registry, mcp_servers={"inventory": inventory.server}
    ):
        handle = await start(client, task_queue)
        approval = await pending_approval(handle)
        assert approval.tool == "inventory__close_ticket"
        assert approval.arguments == {"ticket_id": "T-1"}
        decided = await handle.execute_update(
            "decide",
            DecideRequest(approval_id=approval.id, approver="alice", decision="approve"),
            result_type=DecideResult,
        )
        assert decided.decision == "approve"
        result = await handle.result()

    assert result.status == "completed"
    calls = {call.name: call for call in result.tool_calls}
    assert not calls["inventory__create_ticket"].is_error
    assert calls["inventory__get_ticket"].result_preview.startswith('{"id": "T-1"')
    assert calls["inventory__close_ticket"].result_preview == "T-1 closed"
    assert calls["inventory__explode"].is_error
    assert "not allowed" in calls["inventory__explode"].result_preview
    assert [(d.tool, d.action) for d in result.policy_decisions] == [
        ("inventory__close_ticket", "gated"),
        ("inventory__explode", "denied"),
    ]
    [ticket] = inventory.tickets()
    assert ticket["idempotency_key"] == calls["inventory__create_ticket"].idempotency_key

    types = await activity_types(handle)
    assert types.count("list_mcp_tools") == 1
    assert types.count("call_mcp_tool") == 3  # create, get, close: explode never left the run


async def test_denied_mcp_tool_is_not_offered(
    client: Client, task_queue: str, registry: AgentRegistry, stdio_inventory: Inventory
) -> None:
    """The model's tool list (the spec the status query reports is built from it) leaves out a
    denied MCP tool while offering the server's others."""
    async with running_worker(
        client, task_queue, registry, mcp_servers={"inventory": stdio_inventory.server}
    ):
        handle = await start(client, task_queue)
        await pending_approval(handle)
        history = await handle.fetch_history()
        await handle.cancel()
        await handle.result()

    offered: set[str] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "call_model":
                payload = attributes.input.payloads[0].data.decode()
                offered |= {
                    name
                    for name in (
                        "inventory__get_ticket",
                        "inventory__create_ticket",
                        "inventory__close_ticket",
                        "inventory__explode",
                    )
                    if f'"name":"{name}"' in payload
                }
    assert offered == {
        "inventory__get_ticket",
        "inventory__create_ticket",
        "inventory__close_ticket",
    }


async def test_unknown_mcp_server_fails_the_run_clearly(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A worker without the agent's MCP server fails the run at once with an error that names
    the server, instead of running the agent without its tools or retrying forever."""
    async with running_worker(client, task_queue, registry, mcp_servers={}):
        handle = await start(client, task_queue)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "McpToolsUnavailable"
    assert "'inventory'" in cause.message


async def test_unreachable_mcp_server_fails_after_retries(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A configured server that cannot be reached is retried a bounded number of times, then
    the run fails naming it (no workflow task left retrying)."""
    down = McpServer(name="inventory", transport="http", url="http://127.0.0.1:9/mcp")
    async with running_worker(client, task_queue, registry, mcp_servers={"inventory": down}):
        handle = await start(client, task_queue)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "McpToolsUnavailable"
    assert "inventory" in cause.message
