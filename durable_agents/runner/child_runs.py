"""Running an agent as a child workflow from a pattern: cancelled cleanly, explained in errors.

Workflow code (deterministic). ``run_child`` is ``AgentRunner.run(..., child=True)`` made safe
against a cancellation that arrives while the child is still starting; ``why_not_completed``
and ``excerpt`` phrase a child's outcome for a pattern's ``error`` fields.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentResult
    from durable_agents.runner.host import AgentRunner

EXCERPT_CHARS = 200
"""How much of an answer an error quotes."""

CANCEL_RETRY = timedelta(seconds=1)
"""How long to wait before asking again to cancel a child the server did not know yet."""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def why_not_completed(result: AgentResult) -> str:
    """Why a run that ended other than ``completed`` did, for an error message."""
    if result.status == "invalid_output":
        return (
            f"its answer failed the output schema after {result.output_repairs} repairs: "
            f"{excerpt(result.output)!r}"
        )
    if result.status == "max_steps":
        return f"it ran out of steps after {result.steps}"
    if result.status == "cancelled":
        return f"cancelled after {result.steps} steps"
    return result.error or result.status


async def run_child(
    agents: AgentRunner,
    agent: str,
    task: str,
    *,
    label: str,
    output_schema: dict[str, Any] | None = None,
) -> AgentResult:
    """``agents.run(agent, task, child=True, ...)``, cancelled with this workflow: the child is
    asked to cancel and waited for, so it ends ``cancelled`` with its partial answer, returned
    here like any other result.

    Why not just await ``agents.run``: a workflow cancellation that arrives while the child is
    still starting (in the same activation as its start) makes the SDK re-raise at once, and
    the workflow would close with the child running, which the parent-close policy then
    terminates. So the run is a task this workflow's cancellation does not reach; the child is
    cancelled by id instead (asked again until the server knows it).
    """
    running = asyncio.create_task(
        agents.run(agent, task, child=True, output_schema=output_schema, label=label)
    )
    try:
        await workflow.wait_condition(running.done)
    except asyncio.CancelledError:
        child = workflow.get_external_workflow_handle(f"{workflow.info().workflow_id}/{label}")
        while not running.done():
            try:
                await child.cancel()
                break
            except FailureError:  # not started yet, or already closed: look again
                await workflow.wait_condition(running.done, timeout=CANCEL_RETRY)
    return await running
