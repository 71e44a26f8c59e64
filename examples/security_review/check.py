"""The ``sample-app-tests`` check: does a proposed fix pass the project's own test suite?

It copies the review root to a scratch directory, writes the ``FixProposal`` into the copy and
runs the copy's pytest suite in the sandbox (``durable_agents.sandbox``: no network, cleared
environment, time limit). The score is the share of tests that pass, out of 10; the fix is
accepted only when all of them pass; the feedback is the tail of pytest's report, where the
failing tests and their assertions are. A proposal that touches the tests themselves is refused
unrun: a fix must satisfy the tests, not edit them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path, PurePosixPath

import pydantic

from durable_agents.checks import check
from durable_agents.contracts.patterns import CheckInput, Evaluation
from durable_agents.sandbox import run_sandboxed
from durable_agents.tools import ToolError
from examples.security_review.models import FixProposal
from examples.security_review.tools import confine, copy_tree, review_root

SAMPLE_TESTS_TIMEOUT = 120.0
"""Seconds the sandboxed test run may take (the sample suite takes about one)."""
FEEDBACK_CHARS = 3_000
"""How much of pytest's report the generator is shown: the end, where the failures are."""
PROTECTED = ("tests", "conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
"""What a fix may not change: the suite that judges it, and its configuration."""


def _proposal(input: CheckInput) -> FixProposal:
    raw = input.candidate_json if input.candidate_json is not None else json.loads(input.candidate)
    return FixProposal.model_validate(raw)


def _protected(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and (parts[0] in PROTECTED or parts[-1] in PROTECTED)


def _counts(report: Path) -> tuple[int, int]:
    """(tests, passed) from pytest's JUnit XML report."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = failed = 0
    for suite in suites:
        total += int(suite.get("tests", 0))
        failed += sum(int(suite.get(k, 0)) for k in ("failures", "errors", "skipped"))
    return total, total - failed


def _refuse(feedback: str) -> Evaluation:
    return Evaluation(score=0.0, accept=False, feedback=feedback)


@check(
    "sample-app-tests",
    description="Applies a FixProposal to a scratch copy of the code under review and runs its "
    "pytest suite in the sandbox: score = passed/total x 10, accepted when all pass.",
    timeout=SAMPLE_TESTS_TIMEOUT + 60,
)
def sample_app_tests(input: CheckInput) -> Evaluation:
    try:
        proposal = _proposal(input)
    except (ValueError, pydantic.ValidationError) as err:
        return _refuse(f"The answer is not a FixProposal ({{file, content, summary}}): {err}")
    if _protected(proposal.file):
        return _refuse(f"{proposal.file!r} is part of the test suite: fix the code, not the tests.")
    with tempfile.TemporaryDirectory(prefix="security-fix-") as scratch:
        copy = Path(scratch) / "project"
        copy_tree(review_root(), copy)
        try:
            target = confine(copy.resolve(), proposal.file)
        except ToolError as err:
            return _refuse(str(err))
        if not target.is_file():
            return _refuse(f"There is no file {proposal.file!r} to fix.")
        target.write_text(proposal.content, encoding="utf-8")
        report = Path(scratch) / "report.xml"
        run = run_sandboxed(
            [sys.executable, "-m", "pytest", "-q", "-rfE", "--tb=short", "-p", "no:cacheprovider",
             f"--junitxml={report}"],
            cwd=copy,
            timeout=SAMPLE_TESTS_TIMEOUT,
            # No third-party pytest plugins: the project's suite needs none, and it starts faster.
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )  # fmt: skip
        output = (run.stdout + run.stderr).strip()[-FEEDBACK_CHARS:]
        if run.timed_out:
            return _refuse(f"The tests ran past {SAMPLE_TESTS_TIMEOUT:g} s and were killed.")
        if not report.exists():
            return _refuse(f"pytest did not run (exit {run.returncode}):\n{output}")
        total, passed = _counts(report)
    if total == 0:
        return _refuse(f"No tests ran:\n{output}")
    accept = passed == total and run.returncode == 0
    return Evaluation(
        score=round(10 * passed / total, 1),
        accept=accept,
        feedback=f"All {total} tests passed." if accept else output,
    )
