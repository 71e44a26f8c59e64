"""Small scripted agents that exercise one behaviour of the loop each.

Their scripts are in ``TEST_SCRIPTS``, attached next to each agent.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from pydantic import BaseModel, Field

from durable_agents.agents import Agent
from durable_agents.contracts.approvals import ApprovalSettings, ToolRule
from durable_agents.testing import ScriptBook, ScriptedCall, ScriptedReply, ScriptView, sequence
from durable_agents.tools import ToolContext, tool

TEST_SCRIPTS = ScriptBook()
"""The test agents' scripts for the offline ``scripted`` model, by agent name."""


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
)
TEST_SCRIPTS.add(adder, _sums)

looper = Agent(
    name="test-looper",
    description="Never stops calling tools.",
    system_prompt="Keep going.",
    tools=[add],
    max_steps=3,
)
TEST_SCRIPTS.add(
    looper,
    sequence(ScriptedReply(text="again", calls=[ScriptedCall("add", {"a": 1, "b": 1})])),
)

sleeper = Agent(
    name="test-sleeper",
    description="Calls a tool that takes a long time.",
    system_prompt="Rest.",
    tools=[nap],
)
TEST_SCRIPTS.add(
    sleeper,
    sequence(
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
)
TEST_SCRIPTS.add(clumsy, _bad_calls)

TEST_AGENTS = [adder, looper, sleeper, clumsy]


class TransferArgs(BaseModel):
    amount: int = Field(ge=1, le=1_000)
    to: str


TRANSFERS: list[tuple[str, int, str]] = []
"""Transfers performed in this process: (idempotency key, amount, to)."""


@tool(effect="side_effect")
def transfer(args: TransferArgs, ctx: ToolContext) -> str:
    """Move money (test stand-in for a dangerous tool)."""
    TRANSFERS.append((ctx.idempotency_key, args.amount, args.to))
    return f"sent {args.amount} to {args.to}"


@tool(effect="side_effect")
def wipe(args: NapArgs, ctx: ToolContext) -> str:
    """Delete everything (must never run: denied by policy)."""
    raise AssertionError("a denied tool ran")


def _transfer_then_report(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            text="Transferring.",
            calls=[
                ScriptedCall("transfer", {"amount": 10, "to": "acct-1"}),
                ScriptedCall("wipe", {"seconds": 1}),  # as if injected by a tool result
                ScriptedCall("add", {"a": 1, "b": 1, "channel": "pager"}),
            ],
        )
    return ScriptedReply(
        text="Outcome: "
        + " | ".join(f"{m.name}: {m.content}" for m in view.messages if m.role == "tool")
    )


gatekeeper = Agent(
    name="test-gatekeeper",
    description="One gated, one denied and one constrained call.",
    system_prompt="Be careful.",
    tools=[transfer, wipe, add],
    policy={
        "transfer": ToolRule(action="require_approval", reason="moves money"),
        "wipe": "deny",
        "add": ToolRule(allowed_values={"channel": ["email"]}),
    },
    approvals=ApprovalSettings(
        approvers=["alice", "bob"],
        timeout=timedelta(hours=1),
        escalate_to=["oncall@example.com"],
        escalation_timeout=timedelta(days=1),
        on_timeout="reject",
    ),
)
TEST_SCRIPTS.add(gatekeeper, _transfer_then_report)


def _two_transfers(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            calls=[
                ScriptedCall("transfer", {"amount": 1, "to": "a"}),
                ScriptedCall("transfer", {"amount": 2, "to": "b"}),
            ]
        )
    return _transfer_then_report(view)


twin_gates = Agent(
    name="test-twin-gates",
    description="Two gated calls in one turn, each with its own approval.",
    system_prompt="Be careful.",
    tools=[transfer],
    policy={"transfer": "require_approval"},
    approvals=ApprovalSettings(timeout=timedelta(hours=2), on_timeout="approve"),
)
TEST_SCRIPTS.add(twin_gates, _two_transfers)

TEST_AGENTS += [gatekeeper, twin_gates]


def _ticket_round(view: ScriptView) -> ScriptedReply:
    if view.turn == 0:
        return ScriptedReply(
            text="Opening a ticket.",
            calls=[
                ScriptedCall(
                    "inventory__create_ticket", {"title": "Disk full", "body": "db-1 at 97%"}
                )
            ],
        )
    if view.turn == 1:
        [created] = view.results("inventory__create_ticket")
        ticket_id = created.content
        return ScriptedReply(
            text=f"Checking {ticket_id}.",
            calls=[
                ScriptedCall("inventory__get_ticket", {"ticket_id": ticket_id}),
                ScriptedCall("inventory__close_ticket", {"ticket_id": ticket_id}),
                ScriptedCall("inventory__explode", {}),  # as if injected: denied by policy
            ],
        )
    return ScriptedReply(
        text="Outcome: "
        + " | ".join(f"{m.name}: {m.content}" for m in view.messages if m.role == "tool")
    )


ticketing = Agent(
    name="test-ticketing",
    description="Uses the tools of the 'inventory' MCP server under policy and approval.",
    system_prompt="Handle the ticket.",
    mcp_servers=["inventory"],
    policy={
        "inventory__close_ticket": ToolRule(action="require_approval", reason="closes a ticket"),
        "inventory__explode": "deny",
    },
    approvals=ApprovalSettings(approvers=["alice"], timeout=timedelta(hours=1)),
)
TEST_SCRIPTS.add(ticketing, _ticket_round)

TEST_AGENTS += [ticketing]


class SizeArgs(BaseModel):
    size: int = Field(ge=0)


@tool(effect="read_only")
def blob(args: SizeArgs, ctx: ToolContext) -> str:
    """Return `size` bytes."""
    return "z" * args.size


bloater = Agent(
    name="test-bloater",
    description="Asks a tool for 3 MB, then for 3 KB.",
    system_prompt="Fetch.",
    tools=[blob],
)
TEST_SCRIPTS.add(
    bloater,
    sequence(
        ScriptedReply(calls=[ScriptedCall("blob", {"size": 3_000_000})]),
        ScriptedReply(calls=[ScriptedCall("blob", {"size": 3_000})]),
        ScriptedReply(text="done"),
    ),
)

TEST_AGENTS += [bloater]

from tests.composition_agents import COMPOSITION_AGENTS, COMPOSITION_SCRIPTS  # noqa: E402

TEST_AGENTS += COMPOSITION_AGENTS
TEST_SCRIPTS.update(COMPOSITION_SCRIPTS)

from tests.pattern_agents import PATTERN_AGENTS, PATTERN_SCRIPTS  # noqa: E402

TEST_AGENTS += PATTERN_AGENTS
TEST_SCRIPTS.update(PATTERN_SCRIPTS)

from tests.evaluator_agents import EVALUATOR_AGENTS, EVALUATOR_SCRIPTS  # noqa: E402

TEST_AGENTS += EVALUATOR_AGENTS
TEST_SCRIPTS.update(EVALUATOR_SCRIPTS)
