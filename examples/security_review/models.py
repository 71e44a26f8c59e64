"""The security review's typed data: what the specialists report (``Findings``), what the
synthesizer concludes (``RiskAssessment``), what the fixer proposes (``FixProposal``) and the
workflow's own input and result. Pure pydantic, so workflow, activities and CLI share them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
"""Most severe first."""


def severity_rank(severity: Severity) -> int:
    """0 for critical ... 3 for low: sorts most severe first."""
    return SEVERITIES.index(severity)


class Finding(BaseModel):
    """One problem, with where it is and the evidence for it."""

    file: str = Field(description="Path relative to the review root, e.g. 'app/users.py'.")
    line: int = Field(ge=0, description="1-based line of the evidence (0: the whole file).")
    category: str = Field(
        description="Short kebab-case kind, e.g. 'sql-injection', 'hardcoded-secret'."
    )
    severity: Severity
    evidence: str = Field(description="The offending code or fact, quoted from a tool result.")
    recommendation: str


class Findings(BaseModel):
    """A specialist's report: every finding in its area (an empty list when there are none)."""

    findings: list[Finding] = Field(default_factory=list)


TOP_FINDINGS = 5
"""How many findings an assessment lists as the most urgent."""


class RiskAssessment(BaseModel):
    """The synthesizer's verdict over all the specialists' findings."""

    overall_risk: Severity | Literal["none"]
    """The most severe finding's severity (``none`` without findings)."""
    counts: dict[Severity, int] = Field(default_factory=dict)
    """Findings per severity (every severity present, zeros included)."""
    top_findings: list[Finding] = Field(default_factory=list)
    """The most severe findings first, at most ``TOP_FINDINGS``."""
    summary: str


class FixProposal(BaseModel):
    """A fix: the complete new content of one file (not a diff, so applying it is exact)."""

    file: str = Field(description="Path relative to the review root of the file to replace.")
    content: str = Field(description="The complete new content of that file.")
    summary: str = Field(default="", description="What changed and why, in a sentence or two.")


class SecurityReviewInput(BaseModel):
    """``SecurityReviewWorkflow``'s input. The code under review is the worker's
    ``SECURITY_REVIEW_ROOT`` (configuration, not input: inputs are recorded in history)."""

    fix: bool = True
    """Try to fix a critical finding (the verified fix loop), then ask to apply it."""
    max_fix_iterations: int = Field(default=3, ge=1, le=10)


Phase = Literal["reviewing", "fixing", "awaiting_approval", "done"]


class ReviewProgress(BaseModel):
    """The ``progress`` query's answer: where the review is."""

    phase: Phase = "reviewing"
    detail: str = ""


class SpecialistReport(BaseModel):
    agent: str
    status: str
    """The branch's status: ``completed``, ``failed``, ``timed_out`` ..."""
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None
    workflow_id: str


class FixAttempt(BaseModel):
    iteration: int
    score: float | None
    accepted: bool
    summary: str = ""
    feedback: str = ""
    error: str | None = None


class AppliedFix(BaseModel):
    """What ``apply_fix`` reported (present when it ran)."""

    file: str
    previous_sha256: str
    sha256: str
    diff: str
    written: bool


class SecurityReviewResult(BaseModel):
    """``SecurityReviewWorkflow``'s result."""

    assessment: RiskAssessment | None
    """The synthesizer's verdict (``None`` when no specialist succeeded)."""
    specialists: list[SpecialistReport]
    failed_specialists: list[str] = Field(default_factory=list)
    fix_target: Finding | None = None
    """The critical finding the fix loop worked on (none: nothing critical, or ``fix=False``)."""
    fix_attempts: list[FixAttempt] = Field(default_factory=list)
    verified: bool = False
    """A fix passed the sample app's whole test suite in the sandbox."""
    fix: FixProposal | None = None
    """The verified fix (or the best unverified one)."""
    applied: bool = False
    """The verified fix was written into the review root."""
    decision: Literal["approve", "reject"] | None = None
    approver: str | None = None
    applied_fix: AppliedFix | None = None
    notes: list[str] = Field(default_factory=list)
    """What the review did not do, and why."""


def assess(agents: list[str], findings: list[Finding]) -> RiskAssessment:
    """The risk assessment of ``findings``: worst severity, counts, the most urgent first."""
    ordered = sorted(findings, key=lambda f: (severity_rank(f.severity), f.file, f.line))
    counts: dict[Severity, int] = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    overall: Severity | None = ordered[0].severity if ordered else None
    top = ordered[:TOP_FINDINGS]
    tally = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)
    summary = (
        f"{len(findings)} findings from {len(agents)} reviewers ({', '.join(agents)}): {tally}."
    )
    if top:
        worst = top[0]
        summary += (
            f" Overall risk {worst.severity.upper()}: fix first the {worst.category} at "
            f"{worst.file}:{worst.line}."
        )
        others = sorted({f.category for f in ordered[1:] if f.severity in ("critical", "high")})
        if others:
            summary += f" Also serious: {', '.join(others)}."
    else:
        summary += " Nothing to fix."
    return RiskAssessment(
        overall_risk=overall or "none", counts=counts, top_findings=top, summary=summary
    )
