"""The security review's agents, their offline scripts and the fix check.

Four specialists review the code under ``$SECURITY_REVIEW_ROOT`` in parallel, each in its own
area and with read-only tools, and answer with typed ``Findings``; a synthesizer turns their
reports into one ``RiskAssessment``; a fixer proposes a ``FixProposal`` for a critical finding,
which the ``sample-app-tests`` check verifies by running the project's tests in a sandbox. The
fixer's ``apply_fix`` tool (the only one that writes) needs a human's approval.

This module is in ``examples.AGENT_MODULES``: discovery registers its ``Agent`` values, merges
``SECURITY_SCRIPTS`` into the scripted model's book and registers the ``sample_app_tests`` check.
"""

from __future__ import annotations

from datetime import timedelta

from durable_agents.agents import Agent
from durable_agents.contracts.approvals import ApprovalSettings, ToolRule
from durable_agents.testing import ScriptBook
from examples.security_review import scripts
from examples.security_review.check import sample_app_tests
from examples.security_review.models import TOP_FINDINGS, Findings, FixProposal, RiskAssessment
from examples.security_review.tools import (
    apply_fix,
    check_dependencies,
    list_files,
    read_file,
    search_code,
)

_SPECIALIST_RULES = """\
You review the code under review (a project directory; every path is relative to its root) \
for one kind of security problem only; other reviewers cover the rest. Use the tools to look: \
report only what a tool result shows you, each finding with its file, its 1-based line, the \
offending code quoted exactly as evidence, a severity (low, medium, high, critical) and a \
concrete recommendation. Leave test code out: its fake passwords and attack strings are \
deliberate. Answer with the findings as JSON (an empty list if you found nothing)."""

MAX_SPECIALIST_STEPS = 8

security_deps = Agent(
    name="security-deps",
    order=40,
    description="Security reviewer: checks pinned dependencies against the advisory database.",
    system_prompt=f"{_SPECIALIST_RULES}\n\nYour area: third-party dependencies. Find the "
    "dependency manifests (requirements*.txt) with list_files and check each with "
    "check_dependencies. Each advisory that affects a pinned version is a finding with the "
    "advisory's severity; a dependency not pinned to one version is a low finding.",
    tools=(list_files, check_dependencies),
    output_type=Findings,
    max_steps=MAX_SPECIALIST_STEPS,
)

security_auth = Agent(
    name="security-auth",
    order=41,
    description="Security reviewer: hard-coded secrets, password hashing, credential checks.",
    system_prompt=f"{_SPECIALIST_RULES}\n\nYour area: authentication. Look for secrets, keys "
    "and passwords written into the source (high), passwords hashed with a fast or unsalted "
    "hash such as MD5 or SHA-1 (high), and secrets compared with == instead of a constant-time "
    "comparison (low). Quote a hard-coded secret's value only by its first 4 characters.",
    tools=(list_files, read_file, search_code),
    output_type=Findings,
    max_steps=MAX_SPECIALIST_STEPS,
)

security_injection = Agent(
    name="security-injection",
    order=42,
    description="Security reviewer: SQL and command injection vectors.",
    system_prompt=f"{_SPECIALIST_RULES}\n\nYour area: injection. Find SQL built from values "
    "by string formatting, concatenation or f-strings (critical), and shell commands or eval "
    "built from input (high). Read the code around each hit and name the function it is in, "
    "in the evidence.",
    tools=(list_files, read_file, search_code),
    output_type=Findings,
    max_steps=MAX_SPECIALIST_STEPS,
)

security_data = Agent(
    name="security-data",
    order=43,
    description="Security reviewer: personal data and credentials in logs and storage.",
    system_prompt=f"{_SPECIALIST_RULES}\n\nYour area: data handling. Find passwords, secrets "
    "or tokens written to logs (high) and personal data such as email addresses written to "
    "logs (medium).",
    tools=(list_files, read_file, search_code),
    output_type=Findings,
    max_steps=MAX_SPECIALIST_STEPS,
)

security_synthesizer = Agent(
    name="security-synthesizer",
    order=44,
    description="Combines the security reviewers' findings into one risk assessment.",
    system_prompt="You are given the findings of several security reviewers as JSON. Combine "
    "them into one risk assessment: the overall risk is the most severe finding's severity "
    "('none' without findings); count the findings per severity (all four, zeros included); "
    f"list the {TOP_FINDINGS} most severe findings unchanged, most severe first; and "
    "write a short summary saying what to fix first. Do not invent findings.",
    output_type=RiskAssessment,
    max_steps=3,
)

security_fixer = Agent(
    name="security-fixer",
    order=45,
    description="Proposes a fix for one security finding (full new file content); applies a "
    "verified fix only with a human's approval.",
    system_prompt="You fix one security finding, given in the task as <finding>{json}"
    "</finding>. Read the file with read_file (all of it), change as little as needed to "
    "remove the vulnerability without changing behaviour for legitimate input, and answer "
    "with a FixProposal: the file's path, its complete new content and a one-line summary. "
    "The project's tests judge your fix; if you get feedback from them, fix what it shows. "
    "Never edit tests. Do not call apply_fix: the fix is applied after it has been verified "
    "and a human has approved it.",
    tools=(read_file, search_code, apply_fix),
    output_type=FixProposal,
    max_steps=6,
    policy={
        "apply_fix": ToolRule(
            action="require_approval",
            reason="it changes the code under review",
        )
    },
    approvals=ApprovalSettings(
        timeout=timedelta(hours=8),
        escalation_timeout=timedelta(hours=24),
        on_timeout="reject",
    ),
)

SPECIALISTS = (security_deps, security_auth, security_injection, security_data)
"""The parallel reviewers, in the order the review lists them."""

SECURITY_SCRIPTS = ScriptBook(
    {
        security_deps.name: scripts.deps_script,
        security_auth.name: scripts.auth_script,
        security_injection.name: scripts.injection_script,
        security_data.name: scripts.data_script,
        security_synthesizer.name: scripts.synthesizer_script,
        security_fixer.name: scripts.fixer_script,
    }
)
"""What the security agents do on the offline ``scripted`` model; discovered with them."""

__all__ = [
    "SECURITY_SCRIPTS",
    "SPECIALISTS",
    "sample_app_tests",
    "security_auth",
    "security_data",
    "security_deps",
    "security_fixer",
    "security_injection",
    "security_synthesizer",
]
