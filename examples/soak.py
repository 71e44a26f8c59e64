"""``soak``: an agent for load and endurance runs, on the offline scripted model.

Its task text sets the run's shape: ``steps=N bytes=M`` (defaults ``steps=100 bytes=100``). Each
step the model calls ``soak_chunk``, which returns M bytes of text, until N tool steps are done;
then it answers, so a run takes N+1 model calls (``starter.py run soak "steps=2000 bytes=1000"``).
The conversation grows by about M bytes a step; the agent's context policy sends only the task
and the latest turns, and messages no longer sent are dropped from the workflow's state.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, Field

from durable_agents.agents._definition import Agent
from durable_agents.contracts.context import ContextPolicy
from durable_agents.testing import ScriptBook, ScriptedCall, ScriptedReply, ScriptView
from durable_agents.tools import ToolContext, tool

DEFAULT_STEPS = 100
DEFAULT_BYTES = 100
MAX_CHUNK_BYTES = 1_000_000
_PATTERN = "the quick brown fox jumps over the lazy dog; "


class ChunkArgs(BaseModel):
    step: int = Field(ge=0, description="The step asking; echoed in the chunk.")
    size: int = Field(ge=0, le=MAX_CHUNK_BYTES, description="Bytes of text to return.")


@tool(effect="read_only", timeout=timedelta(seconds=5))  # short: runs as a local activity
def soak_chunk(args: ChunkArgs, ctx: ToolContext) -> str:
    """Return `size` bytes of filler text for step `step` (load testing only)."""
    head = f"chunk {args.step}: "
    body = (_PATTERN * (args.size // len(_PATTERN) + 1))[: max(0, args.size - len(head))]
    return (head + body)[: args.size] if args.size else ""


def parameters(task: str) -> tuple[int, int]:
    """``(steps, bytes)`` from a task like ``"steps=2000 bytes=1000"``."""
    found = dict(re.findall(r"\b(steps|bytes)\s*=\s*(\d+)", task))
    return int(found.get("steps", DEFAULT_STEPS)), int(found.get("bytes", DEFAULT_BYTES))


def _script(view: ScriptView) -> ScriptedReply:
    steps, size = parameters(view.task)
    if view.step <= steps:
        return ScriptedReply(calls=[ScriptedCall("soak_chunk", {"step": view.step, "size": size})])
    return ScriptedReply(text=f"soak done: {steps} tool steps of {size} bytes")


soak = Agent(
    name="soak",
    order=90,
    description="Load and endurance: calls a cheap tool every step ('steps=N bytes=M').",
    system_prompt="You are a load generator. Call soak_chunk until the task's steps are done.",
    tools=[soak_chunk],
    max_steps=100_000,
    context=ContextPolicy(strategy="truncate", max_context_tokens=8_000, keep_recent_turns=8),
)


SOAK_SCRIPTS = ScriptBook({"soak": _script})
"""What ``soak`` does on the offline ``scripted`` model (its only model); discovered with it."""
