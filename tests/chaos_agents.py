"""``finops-chaos``: the flagship agent with its side effects held open, for crash tests.

Worker processes load it with ``DURABLE_AGENTS_MODULES=tests.chaos_agents``. Each side-effecting
tool runs the real flagship tool (which commits its effect and its ledger row in one
transaction), writes ``committed <key> <duplicate_suppressed> <pid>`` to ``$CHAOS_EFFECTS_JOURNAL``,
then keeps the activity open for ``CHAOS_HOLD_SECONDS`` before reporting. A kill -9 in that hold
lands in the hardest window: the effect is done, Temporal has not heard about it, and the retry
must not do it again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from durable_agents.testing import ScriptBook
from durable_agents.tools import Tool, ToolContext
from examples.finops.agent import finops, finops_script

CHAOS_HOLD_SECONDS = 3.0


def _journal(line: str) -> None:
    path = os.environ.get("CHAOS_EFFECTS_JOURNAL")
    if path:
        with open(path, "a") as journal:
            journal.write(line + "\n")


def held_open(tool: Tool, *, hold_replays: bool = True) -> Tool:
    """``tool``, reporting its effect to the journal (with the worker's pid, so a chaos driver
    can aim a kill at the worker holding it) and holding the activity open after it.

    ``hold_replays=False``: only the attempt that performed the effect holds; a retry answered
    from the ledger reports at once, as it would in production. With every retry held too,
    frequent kills can use up a call's attempts on replays alone (``bench.chaos`` kills a worker
    every few seconds).
    """
    run = tool.function

    def function(args: Any, ctx: ToolContext) -> Any:
        result = run(args, ctx)  # sync flagship tools: this is the committed effect
        duplicate = bool(json.loads(json.dumps(result)).get("duplicate_suppressed"))
        _journal(f"committed {ctx.idempotency_key} {duplicate} {os.getpid()}")
        if hold_replays or not duplicate:
            time.sleep(CHAOS_HOLD_SECONDS)
        _journal(f"returned {ctx.idempotency_key}")
        return result

    return dataclasses.replace(tool, function=function)


finops_chaos = dataclasses.replace(
    finops,
    name="finops-chaos",
    description="The flagship with its side effects held open for kill -9 tests.",
    tools=tuple(held_open(t) if t.effect == "side_effect" else t for t in finops.tools),
    order=1000,
)


finops_chaos_once = dataclasses.replace(
    finops,
    name="finops-chaos-once",
    description="The flagship with each side effect held open once, after it is performed.",
    tools=tuple(
        held_open(t, hold_replays=False) if t.effect == "side_effect" else t for t in finops.tools
    ),
    order=1001,
)


CHAOS_SCRIPTS = ScriptBook(
    {finops_chaos.name: finops_script, finops_chaos_once.name: finops_script}
)
"""Both play the flagship's script on the offline ``scripted`` model."""
