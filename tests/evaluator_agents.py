"""Agents and checks for the evaluator-optimizer tests, with their scripts (agents registered by
``tests.agents_for_tests``; the checks, ``EVALUATOR_CHECKS``, by the tests themselves).

The generator lists fruits and reads its prompt: it starts with two, and adds two more whenever
the feedback on its previous answer asks for "more items". The evaluators (an agent and several
checks) count the items, so the loop converges because the generator follows the feedback.
"""

from __future__ import annotations

import asyncio
import json
import re

from temporalio.exceptions import ApplicationError

from durable_agents.agents import Agent
from durable_agents.checks import Check, check
from durable_agents.contracts.patterns import CheckInput, Evaluation
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView

EVALUATOR_SCRIPTS = ScriptBook()

FRUITS = ["apple", "banana", "cherry", "damson", "elderberry", "fig", "grape", "kiwi", "lime"]


def block(text: str, tag: str) -> str | None:
    """The text between ``<tag>`` and ``</tag>`` lines of a prompt, or None."""
    match = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.S)
    return match.group(1) if match else None


def items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _list_fruits(view: ScriptView) -> ScriptedReply:
    previous = block(view.task, "previous-answer")
    feedback = block(view.task, "feedback") or ""
    count = len(items(previous)) if previous is not None else 0
    if previous is None or "more items" in feedback:
        count += 2
    return ScriptedReply(text=", ".join(FRUITS[:count]))


lister = Agent(
    name="test-lister",
    description="Lists fruits; adds two when the feedback asks for more items.",
    system_prompt="List fruits.",
)
EVALUATOR_SCRIPTS.add(lister, _list_fruits)


def _crash_first(view: ScriptView) -> ScriptedReply:
    if "Your previous" not in view.task:  # the first attempt
        raise ApplicationError("the lister crashed", non_retryable=True)
    return _list_fruits(view)


flaky_lister = Agent(
    name="test-flaky-lister",
    description="Fails on its first attempt; lists fruits on the next ones.",
    system_prompt="List fruits.",
)
EVALUATOR_SCRIPTS.add(flaky_lister, _crash_first)


def _judge(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:  # prose first: the typed output sends it back for repair
        return ScriptedReply(text="Let me count the fruits.")
    count = len(items(block(view.task, "candidate") or ""))
    feedback = f"{count} items; more items would help" if count < 8 else "plenty"
    return ScriptedReply(
        text=json.dumps({"score": count, "accept": count >= 4, "feedback": feedback})
    )


item_judge = Agent(
    name="test-item-judge",
    description="Scores a list by its length; accepts four or more items.",
    system_prompt="Judge the list.",
)
EVALUATOR_SCRIPTS.add(item_judge, _judge)

EVALUATOR_AGENTS: list[Agent] = [lister, flaky_lister, item_judge]


@check("test-item-count", description="Accepts a list of six or more items.")
async def item_count(input: CheckInput) -> Evaluation:
    count = len(items(input.candidate))
    return Evaluation(
        score=count,
        accept=count >= 6,
        feedback="enough" if count >= 6 else f"{count} of 6 items: list more items",
    )


@check("test-peaked")
def peaked(input: CheckInput) -> Evaluation:
    """Likes four items best: more or fewer score lower; never accepts."""
    count = len(items(input.candidate))
    return Evaluation(score=count if count <= 4 else 8 - count, accept=False, feedback="more items")


FLAKY_CHECK_CALLS: list[int] = []
"""The iteration of every attempt of ``test-flaky-check``, in order."""


@check("test-flaky-check")
def flaky_check(input: CheckInput) -> Evaluation:
    """Raises on every attempt at iteration 1; accepts any list after that."""
    FLAKY_CHECK_CALLS.append(input.iteration)
    if input.iteration == 1:
        raise RuntimeError("the test runner crashed")
    return Evaluation(score=len(items(input.candidate)), accept=True)


@check
def garbage(input: CheckInput) -> Evaluation:
    """Returns something that is not an Evaluation (a bug in the check)."""
    return {"score": "lots"}  # type: ignore[return-value]


@check("test-slow", timeout=0.5)
async def slow(input: CheckInput) -> Evaluation:
    """Takes longer than its timeout."""
    await asyncio.sleep(5)
    return Evaluation(score=1, accept=True)


EVALUATOR_CHECKS: list[Check] = [item_count, peaked, flaky_check, garbage, slow]
