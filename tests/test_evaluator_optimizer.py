"""``EvaluatorOptimizerWorkflow`` and deterministic checks: the generator improves on the
evaluator's feedback until a candidate is accepted or the iterations run out; failures are
recorded per iteration, an unknown check fails the run.

The test agents and checks are in ``tests.evaluator_agents``: the generator lists fruits and adds
two whenever the feedback asks for "more items"; the evaluators count them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from durable_agents.agents import AgentRegistry, UnknownCheckError
from durable_agents.checks import Check, InvalidEvaluation, check
from durable_agents.contracts import AgentInput
from durable_agents.contracts.patterns import (
    CheckInput,
    CheckRef,
    Evaluation,
    EvaluatorOptimizerInput,
    EvaluatorOptimizerResult,
)
from durable_agents.runtime.devserver import find_temporal_cli
from tests.conftest import running_worker
from tests.evaluator_agents import EVALUATOR_CHECKS, FLAKY_CHECK_CALLS, item_count, peaked
from tests.test_cli import address, run_cli

TASK = "List fruits."


@pytest.fixture
def checks_registry(registry: AgentRegistry) -> AgentRegistry:
    """The test registry with the test checks."""
    for test_check in EVALUATOR_CHECKS:
        registry.register_check(test_check)
    return registry


async def optimize(
    client: Client,
    task_queue: str,
    registry: AgentRegistry,
    input: EvaluatorOptimizerInput | dict[str, Any],
    workflow_id: str | None = None,
) -> EvaluatorOptimizerResult:
    async with running_worker(client, task_queue, registry):
        result: EvaluatorOptimizerResult = await client.execute_workflow(
            "EvaluatorOptimizerWorkflow",
            input,
            id=workflow_id or f"optimize-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=EvaluatorOptimizerResult,
        )
    return result


def scores(result: EvaluatorOptimizerResult) -> list[float | None]:
    return [it.evaluation.score if it.evaluation else None for it in result.iterations]


async def test_agent_evaluator_accepts_on_the_second_iteration(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """An evaluator agent (typed ``Evaluation`` output, repaired from prose each time) asks for
    more items; the generator, reading the feedback, adds them and is accepted on iteration 2.
    Generator and evaluator run as named children; their costs and workflow ids are recorded."""
    workflow_id = f"optimize-{uuid.uuid4()}"
    result = await optimize(
        client, task_queue, checks_registry,
        EvaluatorOptimizerInput(generator="test-lister", evaluator="test-item-judge", task=TASK),
        workflow_id,
    )  # fmt: skip
    assert (result.status, result.accepted, result.error) == ("completed", True, None)
    assert result.output == "apple, banana, cherry, damson"
    assert (result.best_iteration, result.best_score) == (2, 4)
    assert scores(result) == [2, 4]
    first, second = result.iterations
    assert first.evaluation and "more items" in first.evaluation.feedback
    assert not first.accepted and second.accepted
    assert first.generator_workflow_id == f"{workflow_id}/iteration-1-test-lister"
    assert second.evaluator_workflow_id == f"{workflow_id}/iteration-2-evaluator-test-item-judge"
    judged = await client.get_workflow_handle(second.evaluator_workflow_id).result()
    assert judged["output_repairs"] == 1 and judged["output_json"]["score"] == 4


async def test_deterministic_check_accepts(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """With ``{"check": name}`` each candidate is judged by the ``run_check`` activity (an
    async check here), summarized ``check <name> · iteration <n>``; its feedback drives the
    generator to six items, accepted on iteration 3."""
    workflow_id = f"optimize-{uuid.uuid4()}"
    result = await optimize(
        client, task_queue, checks_registry,
        EvaluatorOptimizerInput(
            generator="test-lister", evaluator=CheckRef(check="test-item-count"), task=TASK,
            max_iterations=5,
        ),
        workflow_id,
    )  # fmt: skip
    assert (result.status, result.best_iteration, result.best_score) == ("completed", 3, 6)
    assert scores(result) == [2, 4, 6]
    assert result.output == "apple, banana, cherry, damson, elderberry, fig"
    assert all(it.evaluator_workflow_id is None for it in result.iterations)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    converter = client.data_converter.payload_converter
    summaries = [
        converter.from_payload(e.user_metadata.summary, str)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert summaries == [f"check test-item-count · iteration {n}" for n in (1, 2, 3)]


async def test_accept_score_overrides_the_evaluators_accept(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """With ``accept_score`` the score decides: the evaluator accepts four items, but the
    threshold of 6 keeps the loop going to iteration 3."""
    result = await optimize(
        client, task_queue, checks_registry,
        EvaluatorOptimizerInput(
            generator="test-lister", evaluator="test-item-judge", task=TASK, accept_score=6,
        ),
    )  # fmt: skip
    second = result.iterations[1]
    assert second.evaluation and second.evaluation.accept and not second.accepted
    assert (result.status, result.best_iteration, result.best_score) == ("completed", 3, 6)
    assert scores(result) == [2, 4, 6]


async def test_max_iterations_returns_the_best_candidate(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """When no candidate is accepted within ``max_iterations`` the run ends ``max_steps`` with
    the best-scoring candidate (iteration 2), not the last one, and every iteration's score."""
    result = await optimize(
        client, task_queue, checks_registry,
        {"generator": "test-lister", "evaluator": {"check": "test-peaked"}, "task": TASK,
         "max_iterations": 3},
    )  # fmt: skip
    assert (result.status, result.accepted) == ("max_steps", False)
    assert scores(result) == [2, 4, 2]
    assert (result.best_iteration, result.best_score) == (2, 4)
    assert result.output == "apple, banana, cherry, damson"
    assert result.iterations[-1].candidate != result.output
    assert result.error and "best is iteration 2 (score 4)" in result.error


async def test_unknown_check_fails_the_run(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """An unknown check is a configuration error: the run fails at once with ``UnknownCheck``
    naming the checks the worker serves; one attempt, no further iterations, no retrying
    task."""
    workflow_id = f"optimize-{uuid.uuid4()}"
    with pytest.raises(WorkflowFailureError) as failed:
        await optimize(
            client, task_queue, checks_registry,
            {"generator": "test-lister", "evaluator": {"check": "no-such-check"}, "task": TASK},
            workflow_id,
        )  # fmt: skip
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UnknownCheck"
    assert "unknown check 'no-such-check'" in cause.message
    assert "test-item-count" in cause.message
    types = [
        e.event_type async for e in client.get_workflow_handle(workflow_id).fetch_history_events()
    ]
    assert types.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 1
    assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) == 1
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in types


async def test_unknown_agent_fails_the_run(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """An evaluator agent the worker does not serve fails the run (``AgentNotAvailable``) on
    the first iteration instead of being recorded and repeated every iteration."""
    with pytest.raises(WorkflowFailureError) as failed:
        await optimize(
            client, task_queue, checks_registry,
            {"generator": "test-lister", "evaluator": "no-such-judge", "task": TASK},
        )  # fmt: skip
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AgentNotAvailable"
    assert "no-such-judge" in cause.message


async def test_a_raising_check_is_retried_then_recorded(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """A check that raises is retried (three attempts); then the iteration records the error
    and the loop goes on: the generator is told its answer could not be evaluated, and the
    next iteration's check accepts."""
    FLAKY_CHECK_CALLS.clear()
    result = await optimize(
        client, task_queue, checks_registry,
        {"generator": "test-lister", "evaluator": {"check": "test-flaky-check"}, "task": TASK},
    )  # fmt: skip
    assert FLAKY_CHECK_CALLS == [1, 1, 1, 2]
    first, second = result.iterations
    assert first.evaluation is None and first.candidate == "apple, banana"
    assert first.error and "the test runner crashed" in first.error
    assert second.accepted and (result.status, result.best_iteration) == ("completed", 2)


async def test_a_failed_generator_is_recorded_and_the_loop_goes_on(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """A generator child that fails is recorded in its iteration (no candidate, its error);
    the next iteration is told the attempt failed, and the loop converges from there."""
    result = await optimize(
        client, task_queue, checks_registry,
        EvaluatorOptimizerInput(
            generator="test-flaky-lister", evaluator="test-item-judge", task=TASK,
        ),
    )  # fmt: skip
    first = result.iterations[0]
    assert first.candidate == "" and first.evaluation is None
    assert first.error and "the lister crashed" in first.error
    assert scores(result) == [None, 2, 4]
    assert (result.status, result.best_iteration) == ("completed", 3)
    second = result.iterations[1]
    assert second.generator_workflow_id
    history = await client.get_workflow_handle(second.generator_workflow_id).fetch_history()
    [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    prompt = client.data_converter.payload_converter.from_payload(payload, AgentInput).task
    assert "Your previous attempt (iteration 1) failed: " in prompt
    assert "the lister crashed" in prompt


async def test_evaluator_without_a_valid_evaluation_is_recorded(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """An evaluator agent that still gives no valid ``Evaluation`` after its repairs leaves
    that iteration unevaluated (``invalid_output`` in its error) and the loop goes on; with no
    candidate ever judged the run ends ``failed`` with the latest candidate."""
    result = await optimize(
        client, task_queue, checks_registry,
        EvaluatorOptimizerInput(
            generator="test-lister", evaluator="typed-stubborn", task=TASK, max_iterations=2,
        ),
    )  # fmt: skip
    assert scores(result) == [None, None]
    assert all(it.error and "invalid_output" in it.error for it in result.iterations)
    assert (result.status, result.best_iteration, result.best_score) == ("failed", None, None)
    assert result.output == "apple, banana"
    assert result.error and "no candidate was evaluated" in result.error


async def test_broken_and_slow_checks_are_recorded(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """A check that returns something other than an ``Evaluation`` is a bug: recorded as such
    without retries. One that runs past its own ``timeout`` is stopped by the activity and the
    iteration says so."""
    garbage = await optimize(
        client, task_queue, checks_registry,
        {"generator": "test-lister", "evaluator": {"check": "garbage"}, "task": TASK,
         "max_iterations": 1},
    )  # fmt: skip
    [only] = garbage.iterations
    assert only.error and "returned {'score': 'lots'}, not an Evaluation" in only.error
    slow = await optimize(
        client, task_queue, checks_registry,
        {"generator": "test-lister", "evaluator": {"check": "test-slow"}, "task": TASK,
         "max_iterations": 1},
    )  # fmt: skip
    [only] = slow.iterations
    assert only.error and "ran past its timeout of 0.5 s" in only.error


async def test_raw_input_from_the_temporal_cli(
    client: Client, task_queue: str, checks_registry: AgentRegistry
) -> None:
    """``temporal workflow start --type EvaluatorOptimizerWorkflow`` with plain JSON input
    (``"evaluator": {"check": ...}``) runs the loop like a typed start."""
    workflow_id = f"optimize-cli-{uuid.uuid4()}"
    raw = {
        "generator": "test-lister",
        "evaluator": {"check": "test-item-count"},
        "task": TASK,
        "max_iterations": 4,
    }
    async with running_worker(client, task_queue, checks_registry):
        started = await run_cli(
            find_temporal_cli(), "workflow", "start", "--type", "EvaluatorOptimizerWorkflow",
            "--task-queue", task_queue, "--input", json.dumps(raw),
            "--address", address(client), "--workflow-id", workflow_id,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        result = await client.get_workflow_handle(
            workflow_id, result_type=EvaluatorOptimizerResult
        ).result()
    assert (result.status, result.best_iteration, result.best_score) == ("completed", 3, 6)


# -- checks and their registration ---------------------------------------------------------


def test_discovery_registers_module_checks() -> None:
    """``discover`` registers every top-level ``Check`` of a module, next to its agents and
    scripts; ``copy`` keeps them, and adding to the copy leaves the original alone."""
    registry = AgentRegistry()
    registry.discover(["tests.evaluator_agents"])
    assert set(registry.checks) == {c.name for c in EVALUATOR_CHECKS}
    assert registry.get_check("test-item-count") is item_count
    assert "test-lister" in registry and "test-lister" in registry.scripts
    copy = registry.copy()
    assert dict(copy.checks) == dict(registry.checks)
    extra = Check(name="extra", description="", function=peaked.function)
    copy.register_check(extra)
    assert "extra" in copy.checks and "extra" not in registry.checks


def test_duplicate_and_unknown_check_names() -> None:
    """Two different checks under one name are refused, naming both functions; registering
    the same check again is harmless; an unknown name lists the known ones."""
    registry = AgentRegistry(checks=[item_count])
    registry.register_check(item_count)
    twin = Check(name="test-item-count", description="", function=peaked.function)
    with pytest.raises(ValueError, match="two checks are named 'test-item-count'") as clash:
        registry.register_check(twin)
    assert "item_count" in str(clash.value) and "peaked" in str(clash.value)
    assert registry.register_check(twin, replace=True) is twin
    with pytest.raises(UnknownCheckError, match="known checks: test-item-count"):
        registry.get_check("nope")


async def test_check_decorator() -> None:
    """``@check`` takes its name from the function (bare or with arguments) and its
    description from the docstring; it refuses a bad timeout or signature; ``evaluate``
    accepts an ``Evaluation`` or a dict that validates as one, and names anything else."""

    @check
    def plain(input: CheckInput) -> Evaluation:
        """Counts characters."""
        return {"score": len(input.candidate), "accept": True}  # type: ignore[return-value]

    assert (plain.name, plain.description, plain.timeout) == ("plain", "Counts characters.", 120)
    sample = CheckInput(check="plain", candidate="abc", task="t", iteration=1)
    assert await plain.evaluate(sample) == Evaluation(score=3, accept=True)
    with pytest.raises(InvalidEvaluation, match="'garbage' returned"):
        await EVALUATOR_CHECKS[3].evaluate(sample)
    with pytest.raises(ValueError, match="timeout"):
        check("too-slow", timeout=0)
    with pytest.raises(TypeError, match="one parameter"):
        check("two")(lambda a, b: a)  # type: ignore[arg-type,misc]
