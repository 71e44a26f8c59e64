"""Budgets: reserved before each model call, settled after, granted to children and refunded.

The offline ``scripted`` model has a nominal price (``activities/providers/prices.json``), so
these runs cost real (small) amounts at the price recorded with each run.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, ModelRequest, Usage
from durable_agents.contracts.budget import Budget
from durable_agents.contracts.patterns import ParallelResult
from durable_agents.contracts.pricing import ModelPrice
from durable_agents.runner.budget import BudgetBook, BudgetExhausted, estimate_input_tokens
from durable_agents.runtime.devserver import find_temporal_cli
from tests.conftest import running_worker
from tests.test_cli import address, run_cli

PRICE = ModelPrice(model="m", input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)


def request(text: str = "hello", max_tokens: int = 1000) -> ModelRequest:
    return ModelRequest.model_validate(
        {
            "agent": "a",
            "model": "scripted",
            "system": "s",
            "messages": [{"role": "user", "text": text}],
            "max_tokens": max_tokens,
            "idempotency_key": "k",
            "step": 1,
        }
    )


def test_a_call_reserves_its_worst_case_and_settles_at_its_cost() -> None:
    """Reserve (worst case: estimated input + max_tokens) then settle at the actual usage."""
    book = BudgetBook()
    book.limit(usd=1.0, tokens=None)
    held = book.reserve_call(request(), PRICE)
    assert book.state.reserved_usd == held.usd > 1000 * 5.0 / 1e6
    book.settle_call(held, Usage(input_tokens=10, output_tokens=20), PRICE.cost(held_usage()))
    assert book.state.reserved_usd == 0 and book.state.spent_tokens == 30
    assert book.state.spent_usd == PRICE.cost(held_usage())


def held_usage() -> Usage:
    return Usage(input_tokens=10, output_tokens=20)


def test_a_call_that_does_not_fit_is_refused_and_says_why() -> None:
    """Tokens or dollars: a worst case beyond what is left raises ``BudgetExhausted``, and
    nothing is reserved."""
    book = BudgetBook()
    book.limit(usd=None, tokens=500)
    try:
        book.reserve_call(request(max_tokens=1000), PRICE)
        raise AssertionError("reserved over budget")
    except BudgetExhausted as why:
        assert "up to" in str(why) and "500 left" in str(why)
    assert book.state.reserved_tokens == 0 and book.state.exhausted


def test_children_share_what_is_left_and_refunds_come_back() -> None:
    """Grants reserve slices (never more than is left); an ended child's unspent part comes
    back; a failed child that cannot say counts its whole grant."""
    book = BudgetBook()
    book.limit(usd=1.0, tokens=None)
    usd, _ = book.share(4)
    assert usd == 0.25
    grants = [book.grant(f"c{i}", f"w/{i}", usd=0.4) for i in range(3)]
    # The third gets what is left.
    assert [g.granted_usd for g in grants] == pytest.approx([0.4, 0.4, 0.2])
    assert book.state.available_usd() == 0
    done = AgentResult.model_validate(
        {"status": "completed", "output": "", "steps": 1, "usage": {}, "cost_usd": 0.1,
         "agent": "a", "model": "scripted", "budget": Budget(spent_usd=0.1).model_dump()}
    )  # fmt: skip
    book.settle_child(grants[0], done)
    book.settle_child(grants[1], None)
    assert book.state.spent_usd == pytest.approx(0.5)
    assert book.state.available_usd() == pytest.approx(0.5 - 0.2)
    assert not grants[0].open and grants[1].spent_usd == 0.4


def test_unpriced_calls_count_only_in_tokens() -> None:
    """Without a price the dollar limit cannot bound a call: it is counted in tokens and as
    unpriced, never as $0 spent silently."""
    book = BudgetBook()
    book.limit(usd=0.000001, tokens=100_000)
    held = book.reserve_call(request(), None)
    book.settle_call(held, Usage(input_tokens=5, output_tokens=5), None)
    assert book.state.unpriced_calls == 1 and book.state.spent_usd == 0
    assert book.state.spent_tokens == 10
    assert estimate_input_tokens(request("x" * 4000)) >= 1000  # >= 1 token per 4 bytes


async def model_calls_started(handle: WorkflowHandle[Any, Any]) -> int:
    started = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "call_model":
                started += 1
    return started


async def test_a_runaway_agent_stops_at_its_budget(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """test-looper never answers; with ``budget_tokens`` it ends ``budget_exhausted`` with its
    partial output, having spent no more than the limit, every model call it started fitting
    within it, and ``temporal workflow list --query 'AgentCostUSD > 0'`` finds it."""
    workflow_id = f"runaway-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-looper", task="loop", max_steps=500, budget_tokens=6_000),
            id=workflow_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
        result = await handle.result()
    assert result.status == "budget_exhausted" and result.output == "again"
    assert result.budget is not None and result.budget.spent_tokens <= 6_000
    assert result.budget.exhausted and "of 6,000 left" in result.budget.exhausted
    assert 3 <= result.steps < 500 and await model_calls_started(handle) == result.steps
    # The budget keeps USD to 12 decimals (budget.USD_DIGITS); the run sums its costs as floats.
    assert result.cost_usd > 0 and result.budget.spent_usd == pytest.approx(
        result.cost_usd, abs=1e-12
    )
    listed = await run_cli(
        find_temporal_cli(), "workflow", "list", "--address", address(client),
        "--query", f"AgentCostUSD > 0 AND WorkflowId = '{workflow_id}'", "--output", "json",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert workflow_id in listed.stdout


async def test_a_call_whose_worst_case_does_not_fit_never_starts(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A budget smaller than the first call's worst case: no model call is started at all."""
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add", budget_usd=0.001),
            id=f"tiny-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        result = await handle.result()
    assert result.status == "budget_exhausted" and result.steps == 0
    assert await model_calls_started(handle) == 0
    assert result.budget is not None and result.budget.spent_usd == 0


async def test_sub_agents_draw_from_the_parent_and_refund_the_rest(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The delegator's sub-agent gets a slice of the parent's budget as its own limit; when it
    ends, what it spent counts in the parent's spend and the rest comes back."""
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="delegator", task="delegate", budget_usd=1.0),
            id=f"delegating-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        [child] = result.budget.children if result.budget else []
        child_result = await client.get_workflow_handle(
            child.workflow_id, result_type=AgentResult
        ).result()
    assert result.status == "completed"
    assert child_result.budget is not None and child_result.budget.limit_usd == child.granted_usd
    assert child.granted_usd is not None and 0 < child.spent_usd < child.granted_usd
    assert child.spent_usd == child_result.budget.spent_usd and not child.open
    assert result.budget is not None and result.budget.reserved_usd == 0
    assert abs(result.budget.spent_usd - (result.cost_usd + child.spent_usd)) < 1e-12


async def test_a_fan_out_of_twenty_cannot_overspend_a_budget_for_five(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Twenty branches, a slice per branch that fits one run, a budget for five slices: five
    branches run, the others find nothing left and end ``budget_exhausted`` without a model
    call; together they spend no more than the budget (overshoot zero)."""
    slice_usd = 0.05
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "ParallelAgentsWorkflow",
            {
                "branches": [{"agent": "test-adder", "task": "add"}] * 20,
                "policy": "best_effort",
                "budget_usd": 5 * slice_usd,
                "branch_budget_usd": slice_usd,
            },
            id=f"fan-budget-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=ParallelResult,
        )
    statuses = [b.status for b in result.branches]
    assert statuses.count("completed") == 5, statuses
    assert statuses.count("budget_exhausted") == 15
    assert result.budget is not None and result.budget.reserved_usd == 0
    spent = result.budget.spent_usd
    print(f"\nfan-out of 20, budget ${5 * slice_usd:.2f}: spent ${spent:.6f}, overshoot "
          f"${max(0.0, spent - 5 * slice_usd):.6f}")  # fmt: skip
    assert spent <= 5 * slice_usd
    assert json.loads(result.budget.model_dump_json())["children"][0]["open"] is False


async def test_the_budget_is_carried_across_continue_as_new(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A run that continues as new every 2 steps keeps its spend and limit: it stops at the
    budget in a later run of its chain, its spend counted across all of them."""
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(
                agent="test-looper",
                task="loop",
                max_steps=500,
                budget_tokens=6_000,
                continue_as_new_after_steps=2,
            ),
            id=f"carried-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert result.status == "budget_exhausted" and result.runs > 1
    assert result.budget is not None and result.budget.limit_tokens == 6_000
    assert (
        result.budget.spent_tokens == (result.usage.input_tokens + result.usage.output_tokens)
        and result.budget.spent_tokens <= 6_000
    )


async def test_starter_runs_with_a_budget_and_reports_the_cost(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``starter.py run soak ... --budget-usd`` stops the run ``budget_exhausted`` (soak never
    finishes on its own within 1,000 steps); ``starter.py cost`` prints its spend and limit."""
    import sys

    env = {"TEMPORAL_ADDRESS": address(client), "AGENTS_TASK_QUEUE": task_queue}
    workflow_id = f"budget-cli-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        done = await run_cli(
            sys.executable, "starter.py", "run", "soak", "steps=1000 bytes=10",
            "--max-steps", "1000", "--budget-usd", "0.03", "--id", workflow_id, "--json",
            env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        cost = await run_cli(sys.executable, "starter.py", "cost", workflow_id, env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "budget_exhausted", result["status"]
    assert 0 < result["budget"]["spent_usd"] <= 0.03
    assert cost.returncode == 0, cost.stderr
    assert f"{workflow_id}: spent $" in cost.stdout and "limit $0.0300" in cost.stdout
    assert "stopped: the next model call may cost up to" in cost.stdout


def test_the_breakdown_keeps_open_children_and_the_latest_ended() -> None:
    """A long run with many sub-agents keeps its budget small: every open child and the latest
    ended ones are listed; the totals count all of them."""
    from durable_agents.runner.budget import ENDED_CHILDREN_KEPT

    book = BudgetBook()
    still_open = book.grant("open", "w/open")
    for i in range(ENDED_CHILDREN_KEPT + 10):
        book.settle_child(book.grant(f"c{i}", f"w/{i}"), None)
    labels = [c.label for c in book.state.children]
    assert labels[0] == "open" and still_open.open
    assert len(labels) == ENDED_CHILDREN_KEPT + 1 and labels[-1] == f"c{ENDED_CHILDREN_KEPT + 9}"
