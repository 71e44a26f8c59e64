"""``triage``: reads a complaint and decides, with typed output, whether it is a cloud-cost
question for the ``finops`` agent. Used by the ``BillReview`` example workflow."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView


class Triage(BaseModel):
    """Where a complaint goes."""

    route: Literal["finops", "none"]
    question: str = Field(description="The question to hand on, rephrased for that agent.")
    reason: str


triage = Agent(
    name="triage",
    order=20,
    description="Decides whether a complaint is a cloud-cost question (typed output).",
    system_prompt=(
        "You triage complaints. If one is about cloud spend, route it to 'finops' with a clear "
        "question for a FinOps agent; otherwise route it to 'none'. Answer with a Triage."
    ),
    output_type=Triage,
    max_steps=4,
)


def _triage(view: ScriptView) -> ScriptedReply:
    costly = any(word in view.task.lower() for word in ("bill", "cost", "spend", "spike"))
    answer = Triage(
        route="finops" if costly else "none",
        question=(
            "Our cloud bill spiked this week. Find out why, tell the owner, and stop anything "
            "idle that is burning money."
        ),
        reason="mentions the bill" if costly else "not about cloud spend",
    )
    return ScriptedReply(text=json.dumps(answer.model_dump()))


TRIAGE_SCRIPTS = ScriptBook({"triage": _triage})
