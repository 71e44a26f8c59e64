"""The security review's result as text a person reads (the CLI prints it)."""

from __future__ import annotations

import difflib
import re
import textwrap

from examples.security_review.models import SEVERITIES, SecurityReviewResult

WIDTH = 100


def _wrapped(text: str, indent: str, rest: str | None = None) -> str:
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if rest is None else rest,
        break_on_hyphens=False,  # keeps sql-injection, app/users.py and test ids whole
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _test_summary(feedback: str) -> str:
    """pytest's closing line (``5 failed, 5 passed in 0.04s``), if the feedback has one."""
    lines = [line for line in feedback.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else ""


def diff(before: str, after: str, file: str) -> str:
    """A unified diff of one file's change."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{file}",
            tofile=f"b/{file}",
        )
    )


def render(result: SecurityReviewResult) -> str:
    """The assessment, the reviewers, the fix loop and the applied change, in that order."""
    lines: list[str] = []
    a = result.assessment
    if a is None:
        lines.append("Risk assessment: none (no reviewer succeeded)")
    else:
        tally = ", ".join(f"{a.counts.get(s, 0)} {s}" for s in SEVERITIES)
        lines += [
            f"Risk assessment: {a.overall_risk.upper()}  ({tally})",
            _wrapped(a.summary, "  "),
        ]
        lines.append("\nTop findings:")
        for f in a.top_findings:
            lines.append(f"  [{f.severity:>8}] {f.category:<24} {f.file}:{f.line}")
            lines.append(_wrapped(f.evidence, " " * 13))
            lines.append(_wrapped(f"-> {f.recommendation}", " " * 13))
    lines.append("\nReviewers:")
    for r in result.specialists:
        state = _plural(len(r.findings), "finding") if r.status == "completed" else r.status
        lines.append(f"  {r.agent:<20} {state}" + (f": {r.error}" if r.error else ""))
    if result.fix_target is not None:
        t = result.fix_target
        lines.append(f"\nFix loop for the {t.category} at {t.file}:{t.line} (sample-app-tests):")
        for attempt in result.fix_attempts:
            score = "not judged" if attempt.score is None else f"{attempt.score:g}/10"
            verdict = "accepted" if attempt.accepted else "rejected"
            tests = _test_summary(attempt.feedback) if not attempt.accepted else ""
            head = f"iteration {attempt.iteration}: {score}, {verdict}"
            lines.append(_wrapped(f"{head} ({tests})" if tests else head, "  "))
            if attempt.summary:
                lines.append(_wrapped(attempt.summary, "      "))
            if attempt.error:
                lines.append(_wrapped(f"error: {attempt.error}", "      "))
        lines.append(f"  verified by the sample app's tests: {'yes' if result.verified else 'no'}")
    if result.decision is not None:
        who = f"{'approved' if result.decision == 'approve' else 'rejected'} by {result.approver}"
        lines.append(f"\nApply the fix: {who}; applied: {'yes' if result.applied else 'no'}")
    if result.applied_fix is not None:
        lines.append(f"\nThe change written to {result.applied_fix.file}:")
        lines.append(result.applied_fix.diff.rstrip() or "  (no change: already applied)")
    if result.notes:
        lines.append("\nNotes:")
        lines += [_wrapped(note, "  - ", "    ") for note in result.notes]
    return "\n".join(lines)
