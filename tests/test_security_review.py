"""The security review example: its tools (and their confinement to the review root), the fix
check, and ``SecurityReviewWorkflow`` end to end on a real dev server: four reviewers in
parallel, the risk assessment, a fix loop that really iterates (the first fix fails the sample
app's injection test in the sandbox, the second passes all of it), the approval and the write.

Every test reviews its own copy of the sample app (``SECURITY_REVIEW_ROOT`` in ``tmp_path``);
the worker's activities run in this process, so they see it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import sys
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer

from activities.tools import ToolActivities
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentStatusView, PendingApproval
from durable_agents.contracts.patterns import CheckInput, Evaluation
from durable_agents.contracts.tools import ToolRequest
from durable_agents.effects import SqliteEffectLedger
from durable_agents.plugin import SHIPPED_WORKFLOWS
from durable_agents.sandbox import run_sandboxed
from durable_agents.testing import ScriptedReply, sequence
from durable_agents.tools import Tool, ToolContext, ToolError
from examples.security_review import tools
from examples.security_review.agents import SPECIALISTS, sample_app_tests
from examples.security_review.models import (
    FixProposal,
    SecurityReviewInput,
    SecurityReviewResult,
)
from examples.security_review.report import render
from examples.security_review.workflow import SPECIALISTS as WORKFLOW_SPECIALISTS
from examples.security_review.workflow import SecurityReviewWorkflow
from tests.conftest import running_worker

USERS = "app/users.py"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the sample app, configured as the review root."""
    path = tmp_path / "review" / "sample_app"
    tools.reset_working_copy(path)
    monkeypatch.setenv(tools.ROOT_ENV, str(path))
    return path


async def call(tool: Tool, **arguments: Any) -> Any:
    """Validate ``arguments`` as the run_tool activity does, run the tool, parse its JSON."""
    ctx = ToolContext(agent="test", call_id="c", idempotency_key="k", step=0, attempt=1)
    return json.loads(await tool.invoke(tool.args_model(**arguments), ctx))


def sample_tests_pass(path: Path) -> tuple[bool, str]:
    """Run the sample app's own suite on ``path`` (in the sandbox, as the check does)."""
    done = run_sandboxed(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=path,
        timeout=120,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    return done.returncode == 0, done.stdout[-2000:]


# --- tools and check, without Temporal ------------------------------------------------------


async def test_tools_show_the_vulnerabilities(root: Path) -> None:
    """The read-only tools see what the sample app hides: string-built SQL, the pinned
    ``requests`` with its advisories, and file contents exactly as on disk."""
    listed = await call(tools.list_files, pattern="*.py")
    assert USERS in {f["path"] for f in listed["files"]}
    assert not any("__pycache__" in f["path"] for f in listed["files"])

    found = await call(tools.search_code, pattern=r"execute\(|f\"SELECT", ignore_case=True)
    assert any(m["file"] == USERS and "'{username}'" in m["text"] for m in found["matches"])

    deps = await call(tools.check_dependencies)
    vulnerable = {(v["name"], v["id"]) for v in deps["vulnerable"]}
    assert ("requests", "CVE-2018-18074") in vulnerable
    assert not any(v["name"] == "itsdangerous" for v in deps["vulnerable"])

    read = await call(tools.read_file, path=USERS, start_line=1, end_line=3)
    assert read["content"] == "".join((root / USERS).read_text().splitlines(True)[:3])
    assert read["total_lines"] == len((root / USERS).read_text().splitlines())


async def test_paths_outside_the_review_root_are_refused(root: Path, tmp_path: Path) -> None:
    """``..``, absolute paths and a symlink pointing out are refused by every tool that takes a
    path, and by the fix check; nothing outside the root is read or written."""
    secret = tmp_path / "outside.txt"
    secret.write_text("TOP SECRET\n")
    (root / "app" / "link.txt").symlink_to(secret)
    attempts = ["../outside.txt", "../../outside.txt", str(secret), "app/link.txt", "app/../../x"]
    for path in attempts:
        with pytest.raises(ToolError, match="outside the review root"):
            await call(tools.read_file, path=path)
        with pytest.raises(ToolError, match="outside the review root"):
            await call(tools.apply_fix, file=path, content="pwned\n")
    with pytest.raises(ToolError, match="outside the review root"):
        await call(tools.list_files, directory="..")
    with pytest.raises(ToolError, match="outside the review root"):
        await call(tools.check_dependencies, manifest="../../outside.txt")
    found = await call(tools.search_code, pattern="TOP SECRET", glob="*")
    assert found["matches"] == []
    assert secret.read_text() == "TOP SECRET\n"

    verdict = await judge(FixProposal(file="../outside.txt", content="pwned\n"))
    assert not verdict.accept and "outside the review root" in verdict.feedback
    assert secret.read_text() == "TOP SECRET\n"


async def judge(proposal: FixProposal) -> Evaluation:
    """The ``sample-app-tests`` check's verdict on ``proposal``."""
    return await sample_app_tests.evaluate(
        CheckInput(check="sample-app-tests", candidate=proposal.model_dump_json(),
                   candidate_json=proposal.model_dump(), task="t", iteration=1)
    )  # fmt: skip


async def test_check_runs_the_sample_suite_on_the_proposal(root: Path) -> None:
    """The check scores a proposal by the sample app's own tests: the vulnerable file as is
    passes only the functional half; a parameterized query passes all; editing the tests is
    refused unrun. The review root itself is never modified."""
    original = (root / USERS).read_text()
    as_is = await judge(FixProposal(file=USERS, content=original))
    assert (as_is.score, as_is.accept) == (5.0, False)
    assert "FAILED tests/test_sample_injection.py" in as_is.feedback

    fixed = (
        original.replace("WHERE username = '{username}'\"", 'WHERE username = ?"')
        .replace('sql = f"SELECT', 'sql = "SELECT')
        .replace("execute(sql)", "execute(sql, (username,))")
    )
    good = await judge(FixProposal(file=USERS, content=fixed))
    assert (good.score, good.accept) == (10.0, True)

    cheat = await judge(
        FixProposal(file="tests/test_sample_injection.py", content="def test(): pass\n")
    )
    assert not cheat.accept and "fix the code, not the tests" in cheat.feedback
    assert (root / USERS).read_text() == original


def test_the_workflow_runs_the_agents_module_specialists() -> None:
    """The workflow (which must not import tools) names the same reviewers as the agents."""
    assert WORKFLOW_SPECIALISTS == tuple(a.name for a in SPECIALISTS)


# --- the workflow on a dev server -----------------------------------------------------------


async def pending_approval(
    handle: WorkflowHandle[Any, Any], timeout: float = 60
) -> PendingApproval:
    """The top workflow's first pending approval, once there is one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        view = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            return view.pending_approvals[0]
        await asyncio.sleep(0.2)
    raise AssertionError("no approval was requested")


async def start(client: Client, task_queue: str, **input: Any) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        "SecurityReviewWorkflow",
        SecurityReviewInput(**input),
        id=f"security-review-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=SecurityReviewResult,
    )


def apply_fix_request(events: list[Any]) -> ToolRequest:
    """The ``run_tool`` request the workflow scheduled for ``apply_fix`` (from its history)."""
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        if attributes.activity_type.name != "run_tool":
            continue
        (request,) = pydantic_data_converter.payload_converter.from_payloads(
            attributes.input.payloads, [ToolRequest]
        )
        if request.name == "apply_fix":
            return request  # type: ignore[no-any-return]
    raise AssertionError("apply_fix was never scheduled")


async def test_review_fix_loop_approval_and_one_write(
    client: Client, task_queue: str, registry: AgentRegistry, root: Path, tmp_path: Path
) -> None:
    """The flagship: four reviewers find the planted problems, the synthesizer rates the risk
    critical, the fix loop's first attempt (escaping quotes) fails the injection test in the
    sandbox and its second (a parameterized query) passes the whole suite; approved by signal to
    the top workflow, the fix is written once: the sample's tests now pass on the working copy,
    the ledger holds one effect, and a retry of the same call does not write again."""
    async with running_worker(client, task_queue, registry, workflows=[SecurityReviewWorkflow]):
        handle = await start(client, task_queue)
        approval = await pending_approval(handle)
        assert approval.tool == "apply_fix" and approval.arguments["file"] == USERS
        assert approval.workflow_id is None  # the top workflow's own approval
        await handle.signal("approve", {"approver": "ana-sec", "approval_id": approval.id})
        result: SecurityReviewResult = await handle.result()

    # The review: every reviewer succeeded and reported from the code.
    assert result.failed_specialists == []
    by_agent = {r.agent: r for r in result.specialists}
    assert set(by_agent) == set(WORKFLOW_SPECIALISTS)
    injection = by_agent["security-injection"].findings
    assert [(f.file, f.category, f.severity) for f in injection] == [
        (USERS, "sql-injection", "critical")
    ]
    assert "find_user()" in injection[0].evidence
    shipped = (tools.SAMPLE_APP / USERS).read_text().splitlines()
    assert "'{username}'" in shipped[injection[0].line - 1]
    auth = {(f.category, f.file) for f in by_agent["security-auth"].findings}
    assert {("hardcoded-secret", "app/config.py"), ("weak-password-hash", USERS)} <= auth
    assert "sk_live_7f3a9c2e5b1d4f8a6e0c" not in result.model_dump_json()  # redacted
    data = {f.category for f in by_agent["security-data"].findings}
    assert data == {"credential-logged", "personal-data-logged"}
    deps = {f.evidence.split(" ")[0] for f in by_agent["security-deps"].findings}
    assert deps == {"requests==2.19.1", "Jinja2==3.1.2"}

    # The assessment: typed, from the synthesizer.
    assessment = result.assessment
    assert assessment is not None and assessment.overall_risk == "critical"
    total = sum(len(r.findings) for r in result.specialists)
    assert sum(assessment.counts.values()) == total and assessment.counts["critical"] == 1
    assert assessment.top_findings[0].category == "sql-injection"

    # The fix loop iterated: escaping failed in the sandbox, parameterizing passed.
    assert result.fix_target is not None and result.fix_target.file == USERS
    first, second = result.fix_attempts
    assert (first.score, first.accepted) == (5.0, False)
    assert "backslash-escape" in first.feedback and "FAILED" in first.feedback
    assert (second.score, second.accepted) == (10.0, True)
    assert "backslash-escape" in second.summary or "still failed" in second.summary
    assert result.verified and result.fix is not None

    # Approved and written: by whom, what, and the suite passes on the working copy.
    assert (result.decision, result.approver, result.applied) == ("approve", "ana-sec", True)
    assert result.applied_fix is not None and result.applied_fix.written
    assert (root / USERS).read_text() == result.fix.content
    assert "WHERE username = ?" in result.fix.content
    assert "+    row = conn.execute(sql, (username,)).fetchone()" in result.applied_fix.diff
    passed, output = sample_tests_pass(root)
    assert passed, output
    assert "Risk assessment: CRITICAL" in render(result)

    # Once: the ledger holds the write, and a retry of the same call replays it.
    history = await handle.fetch_history()
    request = apply_fix_request(list(history.events))
    with closing(sqlite3.connect(tmp_path / "effects.db")) as db:
        rows = db.execute("SELECT key, state FROM effects").fetchall()
    assert rows == [(request.idempotency_key, "recorded")]
    (root / USERS).write_text("# changed by someone after the fix\n")
    retry = await ActivityEnvironment().run(
        ToolActivities(registry, SqliteEffectLedger(tmp_path / "effects.db")).run_tool, request
    )
    assert not retry.is_error and json.loads(retry.content)["written"] is True  # the first write's
    assert (root / USERS).read_text() == "# changed by someone after the fix\n"

    # Replaying the history makes the same decisions.
    replayer = Replayer(
        workflows=[*SHIPPED_WORKFLOWS, SecurityReviewWorkflow],
        data_converter=pydantic_data_converter,
    )
    replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure


async def test_rejected_fix_leaves_the_working_copy_unchanged(
    client: Client, task_queue: str, registry: AgentRegistry, root: Path
) -> None:
    """A human rejects applying the verified fix: nothing is written, and the result says who
    rejected it."""
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    async with running_worker(client, task_queue, registry, workflows=[SecurityReviewWorkflow]):
        handle = await start(client, task_queue)
        approval = await pending_approval(handle)
        await handle.signal(
            "reject", {"approver": "ben-sec", "approval_id": approval.id, "reason": "not today"}
        )
        result: SecurityReviewResult = await handle.result()
    assert result.verified
    assert (result.decision, result.approver, result.applied) == ("reject", "ben-sec", False)
    assert result.applied_fix is None
    assert any("not applied" in note and "not today" in note for note in result.notes)
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before


async def test_reviewers_follow_the_code(
    client: Client, task_queue: str, registry: AgentRegistry, root: Path
) -> None:
    """Rename the vulnerable function, move the secret to another file under another name and
    pin a package with a critical advisory: the findings follow (review only, no fix)."""
    users = root / USERS
    users.write_text(users.read_text().replace("find_user", "lookup_account"))
    config = root / "app" / "config.py"
    config.write_text(config.read_text().replace('SESSION_SECRET = "sk_live_7f3a9c2e5b1d4f8a6e0c"',
                                                 'SESSION_SECRET = ""'))  # fmt: skip
    (root / "app" / "keys.py").write_text(
        '"""Signing keys."""\n\n\nSIGNING = True\nWEBHOOK_TOKEN = "whk_5e1f0c9a7d3b2468"\n'
    )
    with (root / "requirements.txt").open("a") as manifest:
        manifest.write("PyYAML==5.3\n")
    shutil.rmtree(root / "tests")  # test code is not reviewed: it makes no difference

    async with running_worker(client, task_queue, registry, workflows=[SecurityReviewWorkflow]):
        handle = await start(client, task_queue, fix=False)
        result: SecurityReviewResult = await handle.result()

    by_agent = {r.agent: r.findings for r in result.specialists}
    (injection,) = by_agent["security-injection"]
    assert "lookup_account()" in injection.evidence and "find_user" not in injection.evidence
    secrets = [f for f in by_agent["security-auth"] if f.category == "hardcoded-secret"]
    assert [(f.file, f.line) for f in secrets] == [("app/keys.py", 5)]
    assert secrets[0].evidence.startswith("WEBHOOK_TOKEN = ")
    yaml = [f for f in by_agent["security-deps"] if "PyYAML" in f.evidence]
    assert [(f.line, f.severity) for f in yaml] == [(5, "critical")]
    assert "CVE-2020-14343" in yaml[0].evidence
    assert result.assessment is not None and result.assessment.counts["critical"] == 2
    assert result.fix_attempts == [] and not result.applied
    assert result.notes == ["fixing was turned off (fix=false)"]


async def test_a_failing_reviewer_is_listed_and_the_rest_still_count(
    client: Client, task_queue: str, registry: AgentRegistry, root: Path
) -> None:
    """``best_effort``: a reviewer whose answer never becomes ``Findings`` (it ends
    ``invalid_output`` after its repairs) is listed as failed; the other three's findings are
    assessed, and the critical one is still found."""
    registry.scripts.add(
        "security-data", sequence(ScriptedReply(text="Looks fine to me!")), replace=True
    )
    async with running_worker(client, task_queue, registry, workflows=[SecurityReviewWorkflow]):
        handle = await start(client, task_queue, fix=False)
        result: SecurityReviewResult = await handle.result()
    assert result.failed_specialists == ["security-data"]
    failed = next(r for r in result.specialists if r.agent == "security-data")
    assert failed.status == "invalid_output" and failed.findings == []
    assert result.assessment is not None and result.assessment.overall_risk == "critical"
    assert "security-data" not in result.assessment.summary
    counted = sum(len(r.findings) for r in result.specialists)
    assert sum(result.assessment.counts.values()) == counted > 0
