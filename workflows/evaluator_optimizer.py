"""``EvaluatorOptimizerWorkflow``: a generator improves its answer on an evaluator's feedback.

Each iteration the generator runs as a child ``AgentWorkflow`` (``iteration-<n>-<generator>``)
on the task and, from the second iteration on, its previous answer with the score and feedback
it got. The evaluator then judges the candidate: an evaluator agent as a child with typed output
``Evaluation`` (``iteration-<n>-evaluator-<evaluator>``), or a deterministic check
(``{"check": name}``) as the ``run_check`` activity. The loop stops once a candidate is accepted
or after ``max_iterations``.

Decisions a reader may look for:

- *Accepted*: with ``accept_score``, iff ``score >= accept_score`` (whatever ``accept`` says);
  without, iff the evaluator says ``accept``.
- *Best candidate*: the accepted one, else the highest score; on a tie the later iteration, which
  has seen more feedback and was judged no worse.
- *Failures are recorded, not fatal*: a generator child that fails or does not complete (its
  candidate is not judged), an evaluator that fails or still gives no valid ``Evaluation`` after
  its repairs, a check that keeps raising after its retries: the iteration keeps the error and
  the next one is told its previous attempt was not evaluated. Configuration errors fail the
  run at once, since no iteration could ever succeed: an unknown check (``UnknownCheck``), an
  unknown generator or evaluator agent (``AgentNotAvailable``).
- *Status*: ``completed`` when a candidate was accepted, ``max_steps`` when the iterations ran
  out (``output`` is the best candidate), ``failed`` when no candidate could be judged at all
  (``output`` is then the latest candidate, unjudged).
"""

from __future__ import annotations

from datetime import timedelta

import pydantic
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.checks import CheckActivities
    from durable_agents.checks import MAX_CHECK_TIMEOUT
    from durable_agents.contracts.patterns import (
        CheckInput,
        CheckRef,
        Evaluation,
        EvaluatorOptimizerInput,
        EvaluatorOptimizerResult,
        Iteration,
    )
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.steps import failure_message

CHECK_TIMEOUT = timedelta(seconds=MAX_CHECK_TIMEOUT + 60)
"""Start-to-close timeout of one ``run_check`` attempt. The workflow does not know the check's
own ``timeout`` (the registry is the worker's), so it allows the longest a check may declare;
the activity enforces the check's own and reports it by name (``CheckTimedOut``)."""
CHECK_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
"""The activity heartbeats every second while the check runs: a dead worker shows within this."""
CHECK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)
"""A check that raises or times out is retried (a flaky run); after the last attempt the
iteration records the error. ``UnknownCheck`` and ``InvalidEvaluation`` are never retried."""


CONFIGURATION_ERRORS = frozenset(
    {"AgentNotAvailable", "UnknownAgent", "UnknownSubagent", "NoScript", "NoModelAvailable",
     "ProviderNotConfigured"}
)  # fmt: skip
"""Failure types of a child run (``load_agent``'s) that no later iteration could avoid."""


def generator_prompt(task: str, previous: Iteration | None) -> str:
    """The task, and from the second iteration on what became of the previous attempt."""
    if previous is None:
        return task
    n = previous.index
    if previous.evaluation is None and not previous.candidate:
        return (
            f"{task}\n\nYour previous attempt (iteration {n}) failed: {previous.error}\nTry again."
        )
    answer = f"<previous-answer>\n{previous.candidate}\n</previous-answer>"
    if previous.evaluation is None:
        return (
            f"{task}\n\nYour previous answer (iteration {n}) could not be evaluated "
            f"({previous.error}):\n{answer}\n\nReview it and write a complete, improved answer."
        )
    return (
        f"{task}\n\nYour previous answer (iteration {n}) scored "
        f"{previous.evaluation.score:g} and was not accepted:\n{answer}\n\n"
        f"The evaluator's feedback:\n<feedback>\n{previous.evaluation.feedback}\n</feedback>\n\n"
        "Write a complete, improved answer that addresses the feedback."
    )


def evaluator_prompt(task: str, candidate: str, accept_score: float | None) -> str:
    bar = "" if accept_score is None else f" A score of {accept_score:g} or more is accepted."
    return (
        "Evaluate the candidate answer to the task below: give it a score, say whether you "
        f"accept it, and give feedback its author can act on.{bar}\n\n"
        f"<task>\n{task}\n</task>\n\n<candidate>\n{candidate}\n</candidate>"
    )


def accepts(input: EvaluatorOptimizerInput, evaluation: Evaluation) -> bool:
    if input.accept_score is not None:
        return evaluation.score >= input.accept_score
    return evaluation.accept


def child_id(label: str) -> str:
    """The workflow id ``AgentRunner`` gives a child run under ``label``."""
    return f"{workflow.info().workflow_id}/{label}"


def fail_on_configuration_error(err: ChildWorkflowError) -> None:
    """Re-raise a child's failure that every later iteration would repeat (an agent the worker
    does not serve or cannot run), so the run fails with it instead of looping on it."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in CONFIGURATION_ERRORS:
            raise ApplicationError(
                failure_message(err), type="AgentNotAvailable", non_retryable=True
            ) from err
        cause = cause.__cause__


def progress(iteration: Iteration, of: int) -> str:
    """``set_current_details`` after an iteration: ``iteration 2/3: score 6.0``."""
    head = f"iteration {iteration.index}/{of}"
    if iteration.evaluation is None:
        return f"{head}: not evaluated ({(iteration.error or '')[:80]})"
    return f"{head}: score {iteration.evaluation.score:.1f}" + (
        " (accepted)" if iteration.accepted else ""
    )


@workflow.defn(
    name="EvaluatorOptimizerWorkflow", failure_exception_types=[pydantic.ValidationError]
)
class EvaluatorOptimizerWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: EvaluatorOptimizerInput) -> EvaluatorOptimizerResult:
        self.agents.set_budget(input.budget_usd, input.budget_tokens)
        iterations: list[Iteration] = []
        for index in range(1, input.max_iterations + 1):
            workflow.set_current_details(f"iteration {index}/{input.max_iterations}: generating")
            iteration = await self._generate(input, index, iterations[-1] if iterations else None)
            if iteration.error is None:
                workflow.set_current_details(
                    f"iteration {index}/{input.max_iterations}: evaluating"
                )
                await self._evaluate(input, iteration)
            iterations.append(iteration)
            workflow.set_current_details(progress(iteration, input.max_iterations))
            if iteration.accepted:
                break
        return outcome(iterations)

    async def _generate(
        self, input: EvaluatorOptimizerInput, index: int, previous: Iteration | None
    ) -> Iteration:
        """Run the generator as a child: the iteration with its candidate, or with the error
        that left it without one to judge."""
        label = f"iteration-{index}-{input.generator}"
        iteration = Iteration(index=index, candidate="")
        try:
            result = await self.agents.run(
                input.generator, generator_prompt(input.task, previous), child=True, label=label
            )
        except ChildWorkflowError as err:
            fail_on_configuration_error(err)
            iteration.error = f"generator {input.generator} failed: {failure_message(err)}"
            return iteration
        finally:
            iteration.generator_workflow_id = child_id(label)
        iteration.candidate, iteration.candidate_json = result.output, result.output_json
        iteration.cost_usd = result.cost_usd
        if result.status != "completed":
            iteration.error = f"generator {input.generator} ended {result.status}" + (
                f": {result.error}" if result.error else ""
            )
        return iteration

    async def _evaluate(self, input: EvaluatorOptimizerInput, iteration: Iteration) -> None:
        """Judge the iteration's candidate; record the evaluation (or why there is none)."""
        if isinstance(input.evaluator, CheckRef):
            await self._run_check(input, input.evaluator.check, iteration)
        else:
            await self._run_evaluator(input, input.evaluator, iteration)
        if iteration.evaluation is not None:
            iteration.accepted = accepts(input, iteration.evaluation)

    async def _run_evaluator(
        self, input: EvaluatorOptimizerInput, evaluator: str, iteration: Iteration
    ) -> None:
        label = f"iteration-{iteration.index}-evaluator-{evaluator}"
        try:
            result = await self.agents.run(
                evaluator,
                evaluator_prompt(input.task, iteration.candidate, input.accept_score),
                child=True,
                output_type=Evaluation,
                label=label,
            )
        except ChildWorkflowError as err:
            fail_on_configuration_error(err)
            iteration.error = f"evaluator {evaluator} failed: {failure_message(err)}"
            return
        finally:
            iteration.evaluator_workflow_id = child_id(label)
        iteration.cost_usd += result.cost_usd
        try:
            iteration.evaluation = result.output_as(Evaluation)
        except (ValueError, pydantic.ValidationError):
            iteration.error = f"evaluator {evaluator} ended {result.status} without an " + (
                f"Evaluation: {result.error or result.output[:200]!r}"
            )

    async def _run_check(
        self, input: EvaluatorOptimizerInput, check: str, iteration: Iteration
    ) -> None:
        try:
            iteration.evaluation = await workflow.execute_activity_method(
                CheckActivities.run_check,
                CheckInput(
                    check=check,
                    candidate=iteration.candidate,
                    candidate_json=iteration.candidate_json,
                    task=input.task,
                    iteration=iteration.index,
                ),
                activity_id=f"iteration-{iteration.index}-check",
                summary=f"check {check} · iteration {iteration.index}",
                start_to_close_timeout=CHECK_TIMEOUT,
                heartbeat_timeout=CHECK_HEARTBEAT_TIMEOUT,
                retry_policy=CHECK_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "UnknownCheck":
                # Configuration, not bad luck: no iteration could ever be judged.
                raise ApplicationError(
                    cause.message, type="UnknownCheck", non_retryable=True
                ) from err
            iteration.error = f"check {check} failed: {failure_message(err)}"


def outcome(iterations: list[Iteration]) -> EvaluatorOptimizerResult:
    """The result: the accepted candidate, else the best-scoring one (later wins a tie)."""
    judged = [it for it in iterations if it.evaluation is not None]
    best = next((it for it in iterations if it.accepted), None) or max(
        judged, key=lambda it: (it.evaluation.score if it.evaluation else 0.0, it.index),
        default=None,
    )  # fmt: skip
    cost = sum(it.cost_usd for it in iterations)
    if best is None:
        latest = next((it for it in reversed(iterations) if it.candidate), None)
        return EvaluatorOptimizerResult(
            status="failed",
            accepted=False,
            output=latest.candidate if latest else "",
            output_json=latest.candidate_json if latest else None,
            best_iteration=None,
            best_score=None,
            iterations=iterations,
            cost_usd=cost,
            error=f"no candidate was evaluated in {len(iterations)} iterations; "
            f"last error: {iterations[-1].error}",
        )
    assert best.evaluation is not None
    return EvaluatorOptimizerResult(
        status="completed" if best.accepted else "max_steps",
        accepted=best.accepted,
        output=best.candidate,
        output_json=best.candidate_json,
        best_iteration=best.index,
        best_score=best.evaluation.score,
        iterations=iterations,
        cost_usd=cost,
        error=None
        if best.accepted
        else f"no candidate accepted in {len(iterations)} iterations; the best is iteration "
        f"{best.index} (score {best.evaluation.score:g})",
    )
