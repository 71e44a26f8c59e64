"""``SecurityReviewWorkflow``: a parallel security review, then a verified, approved fix.

    python -m examples.security_review [--approve-as NAME]

1. **Review.** ``ParallelAgentsWorkflow`` runs as a child (``<id>/review``): four specialists
   (dependencies, authentication, injection, data handling) review the code under
   ``$SECURITY_REVIEW_ROOT`` in parallel, each a child ``AgentWorkflow`` with typed ``Findings``;
   ``best_effort``, so one failing reviewer does not sink the others. The synthesizer agent
   turns what succeeded into a typed ``RiskAssessment``.
2. **Fix**, only when a finding is critical: ``EvaluatorOptimizerWorkflow`` as a child
   (``<id>/fix``): the fixer proposes a ``FixProposal`` and the ``sample-app-tests`` check runs
   the project's tests against it in a sandbox, feeding the failures back, until all pass or
   the iterations run out.
3. **Apply**, only a verified fix: the fixer's ``apply_fix`` tool, called from this workflow
   through ``self.agents.session`` so the agent's policy holds: a human approves it by signal to
   *this* workflow's id (``approve``/``reject``), and the effects ledger makes sure a retried
   call does not write twice.
4. **Report**: a typed ``SecurityReviewResult``; the ``progress`` query says where it is.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pydantic
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import ToolCall
    from durable_agents.contracts.patterns import (
        Branch,
        BranchResult,
        CheckRef,
        EvaluatorOptimizerInput,
        EvaluatorOptimizerResult,
        ParallelInput,
        ParallelResult,
    )
    from durable_agents.runner.host import AgentHost
    from durable_agents.runner.steps import failure_message
    from examples.security_review.models import (
        AppliedFix,
        Finding,
        Findings,
        FixAttempt,
        FixProposal,
        Phase,
        ReviewProgress,
        RiskAssessment,
        SecurityReviewInput,
        SecurityReviewResult,
        SpecialistReport,
        assess,
    )

SPECIALISTS = ("security-deps", "security-auth", "security-injection", "security-data")
"""The reviewers run in parallel (``examples.security_review.agents``)."""
SYNTHESIZER = "security-synthesizer"
FIXER = "security-fixer"
FIX_CHECK = "sample-app-tests"
REVIEW_TASK = (
    "Review the project under review (the tools' root) for security problems in your area and "
    "report your findings."
)
SPECIALIST_TIMEOUT = timedelta(minutes=15)
"""A reviewer still running after this is cancelled and listed as failed (``timed_out``)."""
FEEDBACK_KEPT_CHARS = 1_500
"""How much of each fix attempt's test feedback the result keeps."""


def fix_task(target: Finding) -> str:
    return (
        "Fix this security finding in the project under review (paths are relative to the "
        "tools' root). Your fix is verified by running the project's test suite; it must pass "
        f"all of it.\n<finding>{target.model_dump_json()}</finding>"
    )


@workflow.defn(name="SecurityReviewWorkflow", failure_exception_types=[pydantic.ValidationError])
class SecurityReviewWorkflow(AgentHost):
    def __init__(self) -> None:
        self._progress = ReviewProgress()

    @workflow.query(name="progress")
    def progress(self) -> ReviewProgress:
        return self._progress

    def _phase(self, phase: Phase, detail: str) -> None:
        self._progress = ReviewProgress(phase=phase, detail=detail)
        workflow.set_current_details(f"{phase}: {detail}")

    @workflow.run
    async def run(self, input: SecurityReviewInput) -> SecurityReviewResult:
        result = await self._review()
        target = self._fix_target(result)
        if target is None:
            result.notes.append("no critical finding, so no fix was attempted")
        elif not input.fix:
            result.notes.append("fixing was turned off (fix=false)")
        else:
            result.fix_target = target
            await self._fix(result, target, input.max_fix_iterations)
        if result.verified and result.fix is not None:
            await self._apply(result, result.fix)
        self._phase("done", result.assessment.summary if result.assessment else "no assessment")
        return result

    async def _review(self) -> SecurityReviewResult:
        self._phase("reviewing", f"{len(SPECIALISTS)} reviewers in parallel")
        info = workflow.info()
        try:
            review: ParallelResult = await workflow.execute_child_workflow(
                "ParallelAgentsWorkflow",
                ParallelInput(
                    branches=[Branch(agent=agent, task=REVIEW_TASK) for agent in SPECIALISTS],
                    policy="best_effort",
                    branch_timeout=SPECIALIST_TIMEOUT.total_seconds(),
                    synthesizer=SYNTHESIZER,
                ),
                id=f"{info.workflow_id}/review",
                task_queue=info.task_queue,
                result_type=ParallelResult,
                static_summary=f"security review: {', '.join(SPECIALISTS)}",
            )
        except ChildWorkflowError as err:
            return SecurityReviewResult(
                assessment=None,
                specialists=[],
                failed_specialists=list(SPECIALISTS),
                notes=[f"the review failed: {failure_message(err)}"],
            )
        reports = [_report(branch) for branch in review.branches]
        result = SecurityReviewResult(
            assessment=None,
            specialists=reports,
            failed_specialists=[r.agent for r in reports if r.status != "completed"],
        )
        succeeded = [r for r in reports if r.status == "completed"]
        if not succeeded:
            result.notes.append(f"no reviewer succeeded: {review.error}")
            return result
        try:
            result.assessment = RiskAssessment.model_validate_json(review.output)
        except pydantic.ValidationError:
            # The synthesizer's answer is not an assessment: rank the findings ourselves.
            result.assessment = assess(
                [r.agent for r in succeeded], [f for r in succeeded for f in r.findings]
            )
            result.notes.append(
                "the synthesizer gave no valid RiskAssessment; it was computed from the findings"
            )
        return result

    def _fix_target(self, result: SecurityReviewResult) -> Finding | None:
        """The critical finding to fix: the first the assessment ranks, else the first one a
        reviewer reported."""
        ranked = result.assessment.top_findings if result.assessment else []
        reported = [f for r in result.specialists for f in r.findings]
        return next((f for f in [*ranked, *reported] if f.severity == "critical"), None)

    async def _fix(self, result: SecurityReviewResult, target: Finding, iterations: int) -> None:
        self._phase("fixing", f"{target.category} at {target.file}:{target.line}")
        info = workflow.info()
        try:
            fixed: EvaluatorOptimizerResult = await workflow.execute_child_workflow(
                "EvaluatorOptimizerWorkflow",
                EvaluatorOptimizerInput(
                    generator=FIXER,
                    evaluator=CheckRef(check=FIX_CHECK),
                    task=fix_task(target),
                    max_iterations=iterations,
                ),
                id=f"{info.workflow_id}/fix",
                task_queue=info.task_queue,
                result_type=EvaluatorOptimizerResult,
                static_summary=f"fix {target.category} in {target.file}",
            )
        except ChildWorkflowError as err:
            result.notes.append(f"the fix loop failed: {failure_message(err)}")
            return
        for it in fixed.iterations:
            proposal = _proposal(it.candidate_json)
            result.fix_attempts.append(
                FixAttempt(
                    iteration=it.index,
                    score=it.evaluation.score if it.evaluation else None,
                    accepted=it.accepted,
                    summary=proposal.summary if proposal else it.candidate[:300],
                    feedback=(it.evaluation.feedback if it.evaluation else "")[
                        -FEEDBACK_KEPT_CHARS:
                    ],
                    error=it.error,
                )
            )
        result.fix = _proposal(fixed.output_json)
        result.verified = fixed.accepted and result.fix is not None
        if not result.verified:
            result.notes.append(
                f"no fix passed the tests in {len(fixed.iterations)} iteration(s), so nothing "
                f"was applied ({fixed.error})"
            )

    async def _apply(self, result: SecurityReviewResult, fix: FixProposal) -> None:
        """Write the verified fix with the fixer's ``apply_fix``, once a human approves."""
        self._phase("awaiting_approval", f"apply the verified fix to {fix.file}")
        session = await self.agents.session(FIXER, label="apply-fix")
        outcome = await session.tool_call(
            ToolCall(
                id="apply-fix",
                name="apply_fix",
                arguments=json.dumps({"file": fix.file, "content": fix.content}),
            )
        )
        record = next(
            (r for r in reversed(self.agents.desk.records) if r.tool == "apply_fix"), None
        )
        if record is not None:
            result.decision, result.approver = record.decision, record.approver
        if outcome.is_error:
            result.notes.append(f"the fix was not applied: {outcome.content[:500]}")
            return
        result.applied_fix = AppliedFix.model_validate_json(outcome.content)
        result.applied = True


def _report(branch: BranchResult) -> SpecialistReport:
    report = SpecialistReport(
        agent=branch.agent,
        status=branch.status,
        error=branch.error,
        workflow_id=branch.workflow_id,
    )
    if branch.status == "completed":
        try:
            report.findings = Findings.model_validate(branch.output_json).findings
        except pydantic.ValidationError as err:
            report.status, report.error = "failed", f"its answer is not Findings: {err}"
    return report


def _proposal(value: object) -> FixProposal | None:
    try:
        return FixProposal.model_validate(value)
    except pydantic.ValidationError:
        return None
