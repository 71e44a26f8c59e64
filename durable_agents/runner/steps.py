"""The single steps an agent loop is made of, each one activity call with its named timeouts and
retry policy. Any workflow may call them; ``AgentLoop`` does, and so can a hand-written loop.

``call_model`` and ``execute_tool`` do no policy checks: ``AgentLoop.run_tool`` (reached through
``AgentRunner.tool_call``) applies the agent's policy, approvals and idempotency key first.
"""

from __future__ import annotations

import dataclasses

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.agent_catalog import AgentCatalogActivities, LoadAgentInput
    from activities.model import ModelActivities
    from activities.tools import ToolActivities
    from durable_agents.contracts import AgentSpec, ModelRequest, ModelResponse, ToolOutcome
    from durable_agents.contracts.agent_io import LoadedAgent
    from durable_agents.contracts.tools import ToolRequest, ToolSchema
    from durable_agents.mcp_tools.activities import ListMcpToolsInput, McpActivities
    from durable_agents.runner import policies


def failure_message(err: BaseException) -> str:
    """The innermost message of an activity or child workflow failure: what went wrong."""
    while isinstance(err, ActivityError | ChildWorkflowError) and err.cause is not None:
        err = err.cause
    return str(err) or type(err).__name__


async def load_agent(
    agent: str, model: str | None = None, max_steps: int | None = None
) -> LoadedAgent:
    """The agent's definition, the model this run uses and the worker's settings, recorded in
    history (a local activity). An unknown agent or an unusable model fails the workflow with
    ``AgentNotAvailable``, never a retrying task."""
    try:
        return await workflow.execute_local_activity_method(
            AgentCatalogActivities.load_agent,
            LoadAgentInput(agent=agent, model=model, max_steps=max_steps),
            start_to_close_timeout=policies.LOAD_AGENT_TIMEOUT,
            retry_policy=policies.LOAD_AGENT_RETRY,
            summary=f"load agent {agent}",
        )
    except ActivityError as err:
        raise ApplicationError(
            failure_message(err), type="AgentNotAvailable", non_retryable=True
        ) from err


async def list_mcp_tools(spec: AgentSpec, activity_id: str) -> list[ToolSchema]:
    """The tools of the agent's MCP servers, listed once (an activity: its result is in
    history, so a replay or a resumed run sees the tools the run started with)."""
    try:
        listed: list[ToolSchema] = await workflow.execute_activity_method(
            McpActivities.list_mcp_tools,
            ListMcpToolsInput(servers=spec.mcp_servers),
            activity_id=activity_id,
            start_to_close_timeout=policies.LIST_MCP_TOOLS_TIMEOUT,
            heartbeat_timeout=policies.LIST_MCP_TOOLS_HEARTBEAT_TIMEOUT,
            retry_policy=policies.LIST_MCP_TOOLS_RETRY,
            summary=f"list MCP tools of {', '.join(spec.mcp_servers)}",
        )
    except ActivityError as err:
        raise ApplicationError(
            f"could not list the tools of MCP servers {spec.mcp_servers!r}: {failure_message(err)}",
            type="McpToolsUnavailable",
            non_retryable=True,
        ) from err
    return listed


async def call_model(
    request: ModelRequest,
    *,
    activity_id: str,
    summary: str,
    task_queue: str | None = None,
    max_attempts: int | None = None,
) -> ModelResponse:
    """One model call (``call_model`` activity): retried on transient provider errors with the
    same idempotency key; raises ``ActivityError`` when it fails for good. ``task_queue``: the
    provider's own queue (rate-limited across workers), else the run's."""
    response: ModelResponse = await workflow.execute_activity_method(
        ModelActivities.call_model,
        request,
        activity_id=activity_id,
        task_queue=task_queue,
        summary=f"{summary} · {request.model}",
        start_to_close_timeout=policies.MODEL_CALL_TIMEOUT,
        heartbeat_timeout=policies.MODEL_CALL_HEARTBEAT_TIMEOUT,
        retry_policy=policies.MODEL_CALL_RETRY
        if max_attempts is None
        else dataclasses.replace(policies.MODEL_CALL_RETRY, maximum_attempts=max_attempts),
    )
    return response


async def execute_tool(
    request: ToolRequest,
    schema: ToolSchema,
    *,
    mcp: bool,
    activity_id: str,
    summary: str,
    local: bool = False,
) -> ToolOutcome:
    """One tool call (``run_tool`` or ``call_mcp_tool`` activity), as it stands: no policy, no
    approval; timeouts and retries from the tool's definition (``policies.tool_call_options``).
    ``local``: run ``run_tool`` as a local activity (the caller decides: the tool's recorded
    ``local``, and a run whose worker settings allow it). Raises ``ActivityError`` when it fails
    after its retries."""
    if local and not mcp:
        timeout, retry = policies.local_tool_call_options(schema)
        local_outcome: ToolOutcome = await workflow.execute_local_activity_method(
            ToolActivities.run_tool,
            request,
            activity_id=activity_id,
            summary=summary,
            start_to_close_timeout=timeout,
            retry_policy=retry,
        )
        return local_outcome
    timeout, heartbeat, retry = policies.tool_call_options(schema)
    outcome: ToolOutcome = await workflow.execute_activity_method(
        McpActivities.call_mcp_tool if mcp else ToolActivities.run_tool,
        request,
        activity_id=activity_id,
        summary=summary,
        start_to_close_timeout=timeout,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
    )
    return outcome
