"""Small scripted agents that exercise one behaviour of the loop each."""

from __future__ import annotations

import asyncio
import json

from pydantic import BaseModel, Field

from agents import Agent, ScriptedCall, ScriptedReply, ScriptView, sequence
from tools import ToolContext, tool


class AddArgs(BaseModel):
    a: int = Field(description="first addend")
    b: int = Field(description="second addend")


@tool(effect="read_only")
async def add(args: AddArgs, ctx: ToolContext) -> dict[str, int]:
    """Add two integers."""
    await asyncio.sleep(0.3)  # long enough that concurrent calls visibly overlap
    return {"sum": args.a + args.b}


class NapArgs(BaseModel):
    seconds: float = Field(ge=0, le=3600)


@tool(effect="read_only")
async def nap(args: NapArgs, ctx: ToolContext) -> str:
    """Wait, then return (a stand-in for a long tool)."""
    await asyncio.sleep(args.seconds)
    return "rested"


def _sums(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            text="Adding in parallel.",
            calls=[ScriptedCall("add", {"a": 1, "b": 2}), ScriptedCall("add", {"a": 40, "b": 2})],
        )
    totals = sorted(json.loads(m.content)["sum"] for m in view.results("add"))
    return ScriptedReply(text=f"The sums are {totals[0]} and {totals[1]}.")


adder = Agent(
    name="test-adder",
    description="Adds numbers with two concurrent tool calls.",
    system_prompt="You add numbers.",
    tools=[add],
    script=_sums,
)

looper = Agent(
    name="test-looper",
    description="Never stops calling tools.",
    system_prompt="Keep going.",
    tools=[add],
    max_steps=3,
    script=sequence(ScriptedReply(text="again", calls=[ScriptedCall("add", {"a": 1, "b": 1})])),
)

sleeper = Agent(
    name="test-sleeper",
    description="Calls a tool that takes a long time.",
    system_prompt="Rest.",
    tools=[nap],
    script=sequence(
        ScriptedReply(text="working on it", calls=[ScriptedCall("nap", {"seconds": 600})]),
        ScriptedReply(text="done"),
    ),
)


def _bad_calls(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            text="Trying some calls.",
            calls=[
                ScriptedCall("add", '{"a": 1, "b": '),  # truncated JSON
                ScriptedCall("add", {"a": "one", "b": 2}),  # wrong type
                ScriptedCall("delete_everything", {}),  # not a tool of this agent
            ],
        )
    return ScriptedReply(text="Errors seen: " + " | ".join(m.content for m in view.errors()))


clumsy = Agent(
    name="test-clumsy",
    description="Sends malformed, invalid and unknown tool calls.",
    system_prompt="Be clumsy.",
    tools=[add],
    script=_bad_calls,
)

TEST_AGENTS = [adder, looper, sleeper, clumsy]
