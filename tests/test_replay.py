"""Replay committed histories of real runs: a change that breaks determinism fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from durable_agents.plugin import SHIPPED_WORKFLOWS
from tests.user_workflows import HandLoopWorkflow, ReviewWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    """The replay suite is not empty: the flagship run, the edge cases and the long-run paths
    (continue-as-new between steps and mid-approval, rolling summary) are all recorded."""
    names = {path.stem for path in HISTORIES}
    assert {
        "finops_completed",
        "clumsy_bad_tool_calls",
        "sleeper_cancelled",
        "soak_continue_as_new.run2",
        "soak_rolling_summary",
        "gatekeeper_handoff.run1",
        "gatekeeper_handoff.run2",
        "review_workflow",  # a user-written workflow: two agents inline, one as a child
        "delegator_subagent",
        "typed_repaired",
        "parallel_best_effort",  # the patterns: a failed, a timed-out branch, a synthesizer
        "parallel_quorum",  # branches cancelled once the quorum is reached
        "router_routed",
        "pipeline_typed",
        "supervisor_rounds",  # a failed worker, then a reroute
        "evaluator_optimizer_check",  # a deterministic check as the evaluator
        "looper_budget_exhausted",  # stopped by its budget; cost search attributes upserted
        "delegator_budget",  # a sub-agent granted a slice of the parent's budget
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    """The current code (AgentWorkflow, the pattern workflows, the user-style workflows) makes
    the same decisions as the recorded run."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[*SHIPPED_WORKFLOWS, ReviewWorkflow, HandLoopWorkflow],
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
