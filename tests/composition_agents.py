"""Agents for the composition tests: typed output (with repairs) and sub-agents.

Registered with the other test agents (``tests.agents_for_tests``); scripts in
``COMPOSITION_SCRIPTS``.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from durable_agents.agents import Agent
from durable_agents.testing import (
    Script,
    ScriptBook,
    ScriptedCall,
    ScriptedReply,
    ScriptView,
    sequence,
)

COMPOSITION_SCRIPTS = ScriptBook()


class Verdict(BaseModel):
    """An evaluator's typed answer."""

    score: int = Field(ge=0, le=10)
    accept: bool
    feedback: str


VALID = {"score": 8, "accept": True, "feedback": "clear and correct"}

typed_first_time = Agent(
    name="typed-first-time",
    description="Answers with a valid Verdict at once.",
    system_prompt="Judge the text.",
    output_type=Verdict,
)
COMPOSITION_SCRIPTS.add(typed_first_time, sequence(ScriptedReply(text=json.dumps(VALID))))

typed_repaired = Agent(
    name="typed-repaired",
    description="Needs two repairs: first prose, then a wrong type, then a valid Verdict.",
    system_prompt="Judge the text.",
    output_type=Verdict,
)
COMPOSITION_SCRIPTS.add(
    typed_repaired,
    sequence(
        ScriptedReply(text="It looks fine to me."),
        ScriptedReply(text=json.dumps({**VALID, "score": "high"})),
        ScriptedReply(text=json.dumps(VALID)),
    ),
)

typed_stubborn = Agent(
    name="typed-stubborn",
    description="Never gives a valid Verdict: runs out of repairs.",
    system_prompt="Judge the text.",
    output_type=Verdict,
    output_repairs=2,
)
COMPOSITION_SCRIPTS.add(
    typed_stubborn, lambda view: ScriptedReply(text=json.dumps({"score": 11 + view.turn}))
)


def _delegate_then_report(agent: str) -> Script:
    def script(view: ScriptView) -> ScriptedReply:
        if view.turn == 0:
            return ScriptedReply(calls=[ScriptedCall(f"delegate_to_{agent}", {"task": "add"})])
        results = [m.content for m in view.messages if m.role == "tool"]
        return ScriptedReply(text="Delegated: " + " | ".join(results))

    return script


delegator = Agent(
    name="delegator",
    description="Delegates adding to test-adder.",
    system_prompt="Delegate.",
    subagents=["test-adder"],
)
COMPOSITION_SCRIPTS.add(delegator, _delegate_then_report("test-adder"))

gated_delegator = Agent(
    name="gated-delegator",
    description="Delegates to test-gatekeeper, whose transfer waits for a human.",
    system_prompt="Delegate.",
    subagents=["test-gatekeeper"],
)
COMPOSITION_SCRIPTS.add(gated_delegator, _delegate_then_report("test-gatekeeper"))


def _recurse(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(calls=[ScriptedCall("delegate_to_recursive", {"task": "go deeper"})])
    [result] = [m.content for m in view.messages if m.role == "tool"]
    return ScriptedReply(text=f"below me: {result}")


recursive = Agent(
    name="recursive",
    description="Delegates to itself until the depth limit refuses.",
    system_prompt="Recurse.",
    subagents=["recursive"],
    max_depth=2,
)
COMPOSITION_SCRIPTS.add(recursive, _recurse)

fan_out = Agent(
    name="fan-out",
    description="Asks for five sub-agent runs at once; may make three.",
    system_prompt="Delegate.",
    subagents=["test-adder"],
    max_subagent_calls=3,
)
COMPOSITION_SCRIPTS.add(
    fan_out,
    sequence(
        ScriptedReply(
            calls=[ScriptedCall("delegate_to_test-adder", {"task": f"add {i}"}) for i in range(5)]
        ),
        ScriptedReply(text="fanned out"),
    ),
)

COMPOSITION_AGENTS = [
    typed_first_time,
    typed_repaired,
    typed_stubborn,
    delegator,
    gated_delegator,
    recursive,
    fan_out,
]


def _route(label: str) -> Script:
    return sequence(ScriptedReply(text=json.dumps({"label": label, "reason": "scripted"})))


router = Agent(name="test-router", description="Routes to 'math'.", system_prompt="Route.")
COMPOSITION_SCRIPTS.add(router, _route("math"))
lost_router = Agent(
    name="test-lost-router",
    description="Routes to a label that does not exist.",
    system_prompt="Route.",
)
COMPOSITION_SCRIPTS.add(lost_router, lambda view: ScriptedReply(text='{"label": "nowhere"}'))
COMPOSITION_AGENTS += [router, lost_router]
