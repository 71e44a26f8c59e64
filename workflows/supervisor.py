"""``SupervisorWorkflow``: a supervisor agent delegates to workers, round by round, then answers.

Each round the supervisor runs inline on a prompt holding the task, the workers and every
earlier round (its decision, the worker's status and output: see ``supervisor_prompt``). Its
answer is a typed ``RoutingDecision``, the worker constrained to the workers' names by the
output schema, so a wrong name goes back to the supervisor for repair:

- ``delegate``: the worker runs the sub-task as a child ``AgentWorkflow``
  (``<id>/round-<n>-<worker>``, rounds numbered from 1). A worker that fails or does not
  complete is recorded in its round, and the supervisor reads that next round: it may reroute.
  So is a delegation without a worker or a sub-task (a round spent, no child).
- ``finish``: the answer is the run's output (status ``completed``).

At most ``max_rounds`` delegations are made; then the supervisor is asked once more, with ``action``
constrained to ``finish``, for its best answer (status ``max_steps``). A supervisor that after
its repairs still gives no valid decision ends the run with its status (``invalid_output``)
and an error naming the round. Every decision is in the result. Cancelling the run cancels the
worker running and ends it ``cancelled`` with the rounds so far.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts.patterns import (
        RoutingDecision,
        SupervisorInput,
        SupervisorResult,
        SupervisorRound,
    )
    from durable_agents.runner.child_runs import excerpt, run_child, why_not_completed
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.steps import failure_message

RECENT_ROUNDS = 5
"""Rounds whose worker output the supervisor reads at length (``RECENT_OUTPUT_CHARS``); older
rounds are cut to ``OLDER_OUTPUT_CHARS``, so a long run's prompt stays bounded."""

RECENT_OUTPUT_CHARS = 4_000
OLDER_OUTPUT_CHARS = 500


def decision_schema(workers: list[str], *, final: bool = False) -> dict[str, Any]:
    """``RoutingDecision`` as a JSON schema, the worker one of ``workers``; ``final`` allows
    only ``finish``. Plain properties only: no ``if``/``then`` or top-level ``anyOf`` (which
    some providers refuse in a tool's schema), so the workflow itself checks that a delegation
    names a worker and a sub-task."""
    return {
        "title": "RoutingDecision",
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["finish"] if final else ["delegate", "finish"]},
            "worker": {
                "type": "string",
                "enum": workers,
                "description": "With delegate: the worker to run the sub-task.",
            },
            "task": {"type": "string", "description": "With delegate: the sub-task."},
            "answer": {"type": "string", "description": "With finish: the final answer."},
            "reason": {"type": "string"},
        },
        "required": ["action"],
    }


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and end around a marker."""
    if len(text) <= limit:
        return text
    head, tail = limit * 3 // 4, limit // 4
    return f"{text[:head]} […{len(text) - head - tail} characters cut…] {text[-tail:]}"


def supervisor_prompt(input: SupervisorInput, rounds: list[SupervisorRound], left: int) -> str:
    """What the supervisor reads each round. The rounds so far are one line of JSON, oldest
    first, each with the decision and, for a delegation, the worker's status and output (or
    error); older outputs are cut shorter than recent ones."""
    shown = [
        {
            "round": r.round,
            **r.decision.model_dump(exclude_defaults=True),
            **(
                {
                    "status": r.status,
                    "output": cut(
                        r.output,
                        RECENT_OUTPUT_CHARS
                        if r.round > len(rounds) - RECENT_ROUNDS
                        else OLDER_OUTPUT_CHARS,
                    ),
                }
                if r.decision.action == "delegate"
                else {}
            ),
            **({"error": r.error} if r.error else {}),
        }
        for r in rounds
    ]
    if left:
        turn = (
            f"Worker runs left: {left}. Delegate a sub-task to one worker with "
            '{"action": "delegate", "worker": ..., "task": ..., "reason": ...}, or finish with '
            '{"action": "finish", "answer": ..., "reason": ...} once the task is done.'
        )
    else:
        turn = (
            "Worker runs left: 0. You may not delegate any more: finish now with your best "
            'answer from the rounds so far, {"action": "finish", "answer": ..., "reason": ...}.'
        )
    return (
        "You supervise workers to get a task done, one round at a time.\n\n"
        f"Task: {input.task}\n\n"
        f"Workers: {', '.join(input.workers)}\n\n"
        "Rounds so far (JSON, oldest first; long outputs are cut):\n"
        f"{json.dumps(shown, ensure_ascii=False) if shown else 'none'}\n\n"
        f"{turn}"
    )


@workflow.defn(name="SupervisorWorkflow", failure_exception_types=[pydantic.ValidationError])
class SupervisorWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: SupervisorInput) -> SupervisorResult:
        self.agents.set_budget(input.budget_usd, input.budget_tokens)
        workers = list(dict.fromkeys(input.workers))  # an enum lists each name once
        rounds: list[SupervisorRound] = []
        while True:
            if workflow.cancellation_reason() is not None:  # and the worker with it
                return SupervisorResult(
                    status="cancelled",
                    output=rounds[-1].output if rounds else "",
                    rounds=rounds,
                    cost_usd=sum(r.cost_usd for r in rounds),
                    error=f"cancelled after round {len(rounds)}",
                )
            spent = sum(r.decision.action == "delegate" for r in rounds)
            n, left = len(rounds) + 1, input.max_rounds - spent
            workflow.set_current_details(f"round {n}: asking {input.supervisor} ({left} left)")
            asked = await self.agents.run(
                input.supervisor,
                supervisor_prompt(input, rounds, left),
                output_schema=decision_schema(workers, final=not left),
            )
            if asked.status != "completed":
                return SupervisorResult(
                    status=asked.status,
                    output=asked.output,
                    rounds=rounds,
                    cost_usd=sum(r.cost_usd for r in rounds) + asked.cost_usd,
                    error=f"round {n}: the supervisor ({input.supervisor}) ended "
                    f"{asked.status}: {why_not_completed(asked)}",
                )
            decision = RoutingDecision.model_validate(asked.output_json)
            this = SupervisorRound(round=n, decision=decision, cost_usd=asked.cost_usd)
            rounds.append(this)
            if decision.action == "finish":
                this.status, this.output = "completed", decision.answer
                return SupervisorResult(
                    status="completed" if left else "max_steps",
                    output=decision.answer,
                    rounds=rounds,
                    cost_usd=sum(r.cost_usd for r in rounds),
                )
            if decision.worker is None or not decision.task.strip():
                # A round spent (so still bounded): the supervisor reads why in the next one.
                this.status, this.error = "failed", "a delegation needs a worker and a task"
                continue
            await self._delegate(this, decision.worker, decision.task)

    async def _delegate(self, this: SupervisorRound, worker: str, task: str) -> None:
        """Run ``worker`` on ``task`` as a child; record its outcome on ``this`` round."""
        label = f"round-{this.round}-{worker}"
        this.workflow_id = f"{workflow.info().workflow_id}/{label}"
        this.status = "running"
        workflow.set_current_details(f"round {this.round}: {worker} on {excerpt(task, 80)!r}")
        try:
            result = await run_child(self.agents, worker, task, label=label)
        except ChildWorkflowError as err:  # the child failed: its failure says why
            this.status, this.error = "failed", failure_message(err)
            return
        this.status, this.output = result.status, result.output
        this.cost_usd += result.cost_usd
        if result.status != "completed":
            this.error = f"ended {result.status}: {why_not_completed(result)}"
