"""``RouterWorkflow``: the router's typed decision picks the route; unknown labels go to the
default or fail clearly."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError

from durable_agents.agents import AgentRegistry
from durable_agents.contracts.patterns import RouterResult
from tests.conftest import running_worker

ROUTES = {"math": "test-adder", "rest": "test-looper"}


async def route(
    client: Client, task_queue: str, registry: AgentRegistry, **input: Any
) -> RouterResult:
    async with running_worker(client, task_queue, registry):
        result: RouterResult = await client.execute_workflow(
            "RouterWorkflow",
            input,
            id=f"router-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=RouterResult,
        )
    return result


async def test_router_decision_picks_the_route(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The router's decision (``math``) sends the task to test-adder as a child workflow; the
    label, reason and the routed agent's answer are in the result."""
    result = await route(
        client, task_queue, registry, router="test-router", routes=ROUTES, task="add"
    )
    assert (result.label, result.agent, result.used_default) == ("math", "test-adder", False)
    assert result.reason == "scripted"
    assert result.output == "The sums are 3 and 42." and result.status == "completed"


async def test_unknown_label_goes_to_the_default_or_fails(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A decision naming no route (after its repairs) goes to ``default``; without a default
    the run fails with ``UnknownRoute`` naming the routes."""
    result = await route(
        client, task_queue, registry,
        router="test-lost-router", routes=ROUTES, task="add", default="test-adder",
    )  # fmt: skip
    assert result.used_default and result.agent == "test-adder" and result.label is None
    with pytest.raises(WorkflowFailureError) as failed:
        await route(
            client, task_queue, registry, router="test-lost-router", routes=ROUTES, task="x"
        )
    assert "routes: math, rest; no default" in str(failed.value.cause)
