"""``ParallelAgentsWorkflow``: fan out agents as child workflows, with a partial-failure policy.

Each branch is a child ``AgentWorkflow`` (``<id>/branch-<i>-<agent>``). ``all``: the first
branch to fail cancels the others and fails the whole; ``best_effort``: every branch runs to its
end, the succeeded ones are synthesized and the rest listed with why; ``{"quorum": k}``: done as
soon as k branches succeed, the rest are cancelled. A branch that runs past ``branch_timeout``
is cancelled and counts as failed. More branches than Temporal's 2,000 pending children run in
waves. An optional synthesizer agent (inline) turns the succeeded outputs into one answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import pydantic
from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentInput, AgentResult
    from durable_agents.contracts.patterns import (
        BranchResult,
        ParallelInput,
        ParallelResult,
        Quorum,
    )
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.steps import failure_message

UNDECIDED = ("completed", "running", "not_started")
"""Branch states that do not (yet) fail the ``all`` policy."""

WAVE = 1_000
"""Branches started at once: half of Temporal's 2,000 pending children per workflow."""


async def _result_of(handle: Awaitable[AgentResult]) -> AgentResult:
    return await handle


async def _cancel(waiting: asyncio.Task[AgentResult]) -> list[AgentResult]:
    """Cancel the wait for a child (which cancels the child) and let it wind down; its result
    if it finished with one (a cancelled agent does, with what it spent)."""
    waiting.cancel()
    [outcome] = await asyncio.gather(waiting, return_exceptions=True)
    return [outcome] if isinstance(outcome, AgentResult) else []


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@workflow.defn(name="ParallelAgentsWorkflow", failure_exception_types=[pydantic.ValidationError])
class ParallelAgentsWorkflow(AgentHost):
    @workflow.run
    async def run(self, input: ParallelInput) -> ParallelResult:
        info = workflow.info()
        branches = [
            BranchResult(
                index=i,
                agent=b.agent,
                task=b.task,
                workflow_id=f"{info.workflow_id}/branch-{i}-{b.agent}",
            )
            for i, b in enumerate(input.branches)
        ]
        self.agents.set_budget(input.budget_usd, input.budget_tokens)
        quorum = input.policy.quorum if isinstance(input.policy, Quorum) else None
        policy = f"quorum:{quorum}" if quorum else str(input.policy)
        workflow.set_current_details(f"{policy}: {len(branches)} branches")
        for start in range(0, len(branches), WAVE):
            wave = branches[start : start + WAVE]
            # Each branch's slice: as set, else an even share of what is left for this wave.
            even_usd, even_tokens = self.agents.budget.share(len(wave))
            usd = input.branch_budget_usd if input.branch_budget_usd is not None else even_usd
            tokens = (
                input.branch_budget_tokens
                if input.branch_budget_tokens is not None
                else even_tokens
            )
            tasks = [
                asyncio.create_task(self._branch(b, input.branch_timeout, usd, tokens))
                for b in wave
            ]
            try:
                stop = await self._until_decided(tasks, branches, input.policy, quorum)
            except asyncio.CancelledError:
                # This run was cancelled: so are its branches, which end `cancelled`.
                await _cancel_all(tasks)
                raise
            if stop:
                await _cancel_all(tasks)
                break
            await asyncio.gather(*tasks)
        for branch in branches:
            if branch.status in ("running", "not_started", "cancelled") and branch.error is None:
                branch.status, branch.error = "cancelled", f"cancelled by the {policy} policy"
        return await self._result(input, branches, policy, quorum)

    async def _until_decided(
        self,
        tasks: list[asyncio.Task[None]],
        branches: list[BranchResult],
        policy: object,
        quorum: int | None,
    ) -> bool:
        """Wait for this wave; True when the policy is already decided (stop the rest)."""

        def decided() -> bool:
            if quorum is not None:
                return sum(b.status == "completed" for b in branches) >= quorum
            if policy == "all":
                return any(b.status not in UNDECIDED for b in branches)
            return False

        await workflow.wait_condition(lambda: decided() or all(t.done() for t in tasks))
        return decided()

    async def _branch(
        self,
        branch: BranchResult,
        timeout: float | None,
        usd: float | None = None,
        tokens: int | None = None,
    ) -> None:
        """Run one branch as a child; record its outcome on ``branch``. Cancelled (by the
        policy or the parent's own cancellation), it cancels its child and waits for it to end,
        so the child ends ``cancelled`` rather than being terminated with the parent."""
        branch.status = "running"
        budget = self.agents.budget
        label = f"branch-{branch.index}-{branch.agent}"
        grant = budget.grant(label, branch.workflow_id, usd, tokens)
        ended: list[AgentResult] = []
        try:
            await self._run_branch(branch, timeout, grant.granted_usd, grant.granted_tokens, ended)
        finally:
            # What it spent comes off this run's budget, the rest of its slice comes back (all
            # of the slice counts if it failed and cannot say).
            budget.settle_child(grant, ended[0] if ended else None)

    async def _run_branch(
        self,
        branch: BranchResult,
        timeout: float | None,
        usd: float | None,
        tokens: int | None,
        ended: list[AgentResult],
    ) -> None:
        try:
            handle = await workflow.start_child_workflow(
                "AgentWorkflow",
                AgentInput(
                    agent=branch.agent, task=branch.task, budget_usd=usd, budget_tokens=tokens
                ),
                id=branch.workflow_id,
                result_type=AgentResult,
                static_summary=f"branch {branch.index}: {branch.agent}",
            )
        except asyncio.CancelledError:
            branch.status = "cancelled"
            raise
        waiting = asyncio.create_task(_result_of(handle))
        try:
            finished, _ = await workflow.wait([waiting], timeout=timeout)
        except asyncio.CancelledError:
            branch.status = "cancelled"
            ended.extend(await _cancel(waiting))
            raise
        if not finished:
            branch.status, branch.error = "timed_out", f"ran past {timeout:g} s: cancelled"
            ended.extend(await _cancel(waiting))
            return
        try:
            result = waiting.result()
        except ChildWorkflowError as err:  # the child failed: its failure says why
            branch.status, branch.error = "failed", failure_message(err)
            return
        ended.append(result)
        branch.status, branch.output = result.status, result.output
        branch.cost_usd, branch.output_json = result.cost_usd, result.output_json
        if result.status != "completed":
            branch.error = f"ended {result.status}"

    async def _result(
        self, input: ParallelInput, branches: list[BranchResult], policy: str, quorum: int | None
    ) -> ParallelResult:
        done = [b for b in branches if b.status == "completed"]
        failed = [b for b in branches if b.status not in ("completed", "cancelled")]
        cancelled = [b for b in branches if b.status == "cancelled"]
        ok = (
            (not failed)
            if input.policy == "all"
            else (len(done) >= quorum if quorum else bool(done))
        )
        output = "\n\n".join(f"[{b.index}] {b.agent}: {b.output}" for b in done)
        cost = sum(b.cost_usd for b in branches)
        if ok and input.synthesizer and done:
            synthesis = await self.agents.run(
                input.synthesizer,
                "Combine these answers into one:\n\n"
                + json.dumps(
                    [{"agent": b.agent, "task": b.task, "output": b.output} for b in done]
                ),
            )
            output, cost = synthesis.output, cost + synthesis.cost_usd
        result = ParallelResult(
            status="completed" if ok else "failed",
            policy=policy,
            output=output,
            branches=branches,
            succeeded=len(done),
            failed=len(failed),
            cancelled=len(cancelled),
            cost_usd=cost,
            budget=self.agents.budget.state.model_copy(deep=True),
            error=None
            if ok
            else "; ".join(f"branch {b.index} ({b.agent}) {b.status}: {b.error}" for b in failed)
            or f"quorum of {quorum} not reached",
        )
        if not ok and input.policy == "all":
            raise ApplicationError(
                f"a branch failed under the 'all' policy: {result.error}",
                result,
                type="BranchFailed",
                non_retryable=True,
            )
        return result
