"""Timeouts and retry policies for every activity the agent loop calls.

Named here, once, so a reader sees in one place how long the loop waits and how hard it retries.
Heartbeat timeouts are what make a killed worker visible within seconds: the model and tool
activities heartbeat every second while they wait (``activities._heartbeat``).
"""

import dataclasses
from datetime import timedelta

from temporalio.common import RetryPolicy

from durable_agents.contracts.tools import ToolSchema

LOAD_AGENT_TIMEOUT = timedelta(seconds=10)
LOAD_AGENT_RETRY = RetryPolicy(maximum_attempts=3)

MODEL_CALL_TIMEOUT = timedelta(minutes=5)
MODEL_CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
MODEL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=8,
)
"""Provider errors decide retryability (``activities.providers.errors``); ``Retry-After`` from a
429 overrides the backoff through ``next_retry_delay``."""

TOOL_CALL_TIMEOUT = timedelta(minutes=2)
TOOL_CALL_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
TOOL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""Tool errors the model should see are results, not failures; this covers crashes and
transient faults. After the last attempt the model is told the tool failed."""


def tool_call_options(schema: ToolSchema) -> tuple[timedelta, timedelta, RetryPolicy]:
    """Start-to-close timeout, heartbeat timeout and retry policy of one tool's calls: the
    tool's own settings (``@tool(timeout=..., heartbeat_timeout=..., max_attempts=...)``), else
    the defaults above."""
    timeout = (
        timedelta(seconds=schema.timeout_seconds) if schema.timeout_seconds else TOOL_CALL_TIMEOUT
    )
    heartbeat = (
        timedelta(seconds=schema.heartbeat_timeout_seconds)
        if schema.heartbeat_timeout_seconds
        else TOOL_CALL_HEARTBEAT_TIMEOUT
    )
    retry = (
        dataclasses.replace(TOOL_CALL_RETRY, maximum_attempts=schema.max_attempts)
        if schema.max_attempts
        else TOOL_CALL_RETRY
    )
    return timeout, heartbeat, retry


LIST_MCP_TOOLS_TIMEOUT = timedelta(minutes=1)
LIST_MCP_TOOLS_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
LIST_MCP_TOOLS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""A server that stays unreachable through these attempts fails the run with a clear error
rather than leaving it waiting with no tools."""

NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
"""Escalation notices retry until delivered (no attempt limit): a failing notifier delays the
second wait rather than letting the default apply without anyone having been told."""
