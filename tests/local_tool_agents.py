"""Agents whose read-only tools run as local activities (``Tool.local``), for
tests/test_local_tools.py.

Worker processes load them with ``DURABLE_AGENTS_MODULES=tests.local_tool_agents``; in-process
tests register them by hand. Tools write what they do to ``$LOCAL_TOOLS_JOURNAL`` (one line per
event, with the worker's pid), so a test can count how often each ran, and on which worker.
"""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import timedelta

from pydantic import BaseModel, Field

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook, ScriptedCall, ScriptedReply, ScriptView, sequence
from durable_agents.tools import ToolContext, tool

LOOKUP_SECONDS = 2.0
"""How long ``slow_lookup`` takes: a window for a kill -9 while it runs."""


def journal(line: str) -> None:
    path = os.environ.get("LOCAL_TOOLS_JOURNAL")
    if path:
        with open(path, "a") as out:
            out.write(f"{line} {os.getpid()}\n")


def journal_lines(path: str | os.PathLike[str]) -> list[list[str]]:
    """The journal's lines, split: ``[event, key, pid]``."""
    try:
        with open(path) as lines:
            return [line.split() for line in lines]
    except FileNotFoundError:
        return []


class KeyArgs(BaseModel):
    key: str = Field(description="What to look up")


@tool(effect="read_only", timeout=timedelta(seconds=5))
def lookup(args: KeyArgs, ctx: ToolContext) -> str:
    """Look a key up (read-only, short: a local activity by default)."""
    return f"value-of-{args.key}"


@tool(effect="read_only", timeout=timedelta(seconds=5))
def gated_lookup(args: KeyArgs, ctx: ToolContext) -> str:
    """Look a key up once a human approved it (the agent's policy gates it)."""
    return f"gated-value-of-{args.key}"


def _lookups(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            calls=[ScriptedCall("lookup", {"key": "a"}), ScriptedCall("gated_lookup", {"key": "b"})]
        )
    found = sorted(m.content for m in view.messages if getattr(m, "tool_call_id", None))
    return ScriptedReply(text="found " + ", ".join(found))


local_lookup = Agent(
    name="local-lookup",
    description="Looks two keys up: one local tool call, one approval-gated call.",
    system_prompt="You look things up.",
    tools=[lookup, gated_lookup],
    policy={"gated_lookup": "require_approval"},
    max_steps=3,
)


@tool(effect="read_only", timeout=timedelta(seconds=10))
async def slow_lookup(args: KeyArgs, ctx: ToolContext) -> str:
    """Look a key up slowly (read-only: a local activity)."""
    journal(f"lookup-started {ctx.idempotency_key}")
    await asyncio.sleep(LOOKUP_SECONDS)
    journal(f"lookup-done {ctx.idempotency_key}")
    return f"slow-value-of-{args.key}"


class NoteArgs(BaseModel):
    text: str


@tool(effect="side_effect")
def record_note(args: NoteArgs, ctx: ToolContext) -> str:
    """Record a note (a side effect: a regular activity, once per call through the ledger)."""
    journal(f"effect {ctx.idempotency_key}")
    return f"noted: {args.text}"


local_crash = Agent(
    name="local-crash",
    description="One step with a slow local lookup and a side effect side by side.",
    system_prompt="You look up and take notes.",
    tools=[slow_lookup, record_note],
    max_steps=3,
)


LONG_LOOKUP_STARTED = threading.Event()
LONG_LOOKUP_CANCELLED = threading.Event()
"""Set by ``long_lookup`` in this process (in-process workers only)."""


@tool(effect="read_only", local=True)
async def long_lookup(args: KeyArgs, ctx: ToolContext) -> str:
    """Look a key up, taking as long as a local tool may."""
    LONG_LOOKUP_STARTED.set()
    try:
        await asyncio.sleep(9)
    except asyncio.CancelledError:
        LONG_LOOKUP_CANCELLED.set()
        raise
    return f"long-value-of-{args.key}"


local_long = Agent(
    name="local-long",
    description="Calls a local tool that takes seconds (to cancel the run meanwhile).",
    system_prompt="You look things up.",
    tools=[long_lookup],
    max_steps=2,
)


LOCAL_TOOL_SCRIPTS = ScriptBook(
    {
        local_lookup.name: _lookups,
        local_crash.name: sequence(
            ScriptedReply(
                text="looking and noting",
                calls=[
                    ScriptedCall("slow_lookup", {"key": "c"}),
                    ScriptedCall("record_note", {"text": "checked c"}),
                ],
            ),
            ScriptedReply(text="done"),
        ),
        local_long.name: sequence(
            ScriptedReply(text="looking", calls=[ScriptedCall("long_lookup", {"key": "d"})]),
            ScriptedReply(text="done"),
        ),
    }
)
"""What the agents do on the offline ``scripted`` model (discovered with them)."""

LOCAL_TOOL_AGENTS = (local_lookup, local_crash, local_long)
