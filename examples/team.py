"""A small team for the pattern examples (``starter.py patterns``), runnable offline.

- ``dispatcher`` routes a task to a labelled route (``RouterWorkflow``);
- ``coordinator`` supervises ``triage`` and ``finops`` round by round (``SupervisorWorkflow``);
- ``drafter`` writes a cost report and ``reviewer`` judges it (``EvaluatorOptimizerWorkflow``):
  the report needs a Cause, an Owner and an Action section; the reviewer's feedback names the
  missing ones and the drafter adds them, so the loop converges in a few iterations.

Their offline scripts read what they are given (the routes offered, the rounds so far, the
reviewer's feedback), so changing the input changes what they do.
"""

from __future__ import annotations

import json
import re

from durable_agents.agents import Agent
from durable_agents.contracts.patterns import Evaluation
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView

TEAM_SCRIPTS = ScriptBook()

COST_WORDS = ("bill", "cost", "spend", "spike", "invoice", "budget")

dispatcher = Agent(
    name="dispatcher",
    order=30,
    description="Routes a task to one of the routes offered (RouterWorkflow).",
    system_prompt=(
        "You route tasks. Pick the one route that fits the task best and say why, briefly."
    ),
    max_steps=4,
)


def _dispatch(view: ScriptView) -> ScriptedReply:
    offered = re.search(r"Choose one route: (.+)\.", view.task)
    routes = [r.strip() for r in offered.group(1).split(",")] if offered else []
    costly = any(word in view.task.lower() for word in COST_WORDS)
    cost_routes = [r for r in routes if any(w in r.lower() for w in ("cost", "finops", "bill"))]
    if costly and cost_routes:
        label, reason = cost_routes[0], "the task is about cloud spend"
    else:
        others = [r for r in routes if r not in cost_routes] or routes or ["none"]
        label, reason = others[0], "the task is not about cloud spend"
    return ScriptedReply(text=json.dumps({"label": label, "reason": reason}))


TEAM_SCRIPTS.add(dispatcher, _dispatch)

SECTIONS = ("Cause", "Owner", "Action")

drafter = Agent(
    name="drafter",
    order=31,
    description="Writes a short cost report; revises it on a reviewer's feedback.",
    system_prompt=(
        "You write short cost reports for a finance team. When given feedback on an earlier "
        "draft, revise the draft to address all of it."
    ),
    max_steps=4,
)


def _draft(view: ScriptView) -> ScriptedReply:
    prompt = view.task
    present = {s for s in SECTIONS if f"## {s}" in prompt}
    missing = re.findall(r"missing sections?: ([A-Za-z, ]+)", prompt)
    wanted = {"Cause"} | present | {s.strip() for m in missing for s in m.split(",")}
    body = {
        "Cause": "GPU cluster gpu-train-7 ran idle all week after its training job ended.",
        "Owner": "The ml-platform team owns gpu-train-7.",
        "Action": "Stop the idle cluster and add an idle-shutdown policy.",
    }
    draft = "\n\n".join(f"## {s}\n{body[s]}" for s in SECTIONS if s in wanted)
    return ScriptedReply(text=f"# Weekly cost report\n\n{draft}")


TEAM_SCRIPTS.add(drafter, _draft)

reviewer = Agent(
    name="reviewer",
    order=32,
    description="Scores a cost report: it needs Cause, Owner and Action sections (typed).",
    system_prompt=(
        "You review cost reports. A good report has a Cause, an Owner and an Action section. "
        "Score 0-10, accept only a complete report, and say what is missing."
    ),
    output_type=Evaluation,
    max_steps=4,
)


def _review(view: ScriptView) -> ScriptedReply:
    text = view.task
    found = [s for s in SECTIONS if f"## {s}" in text]
    missing = [s for s in SECTIONS if s not in found]
    verdict = Evaluation(
        score=round(10 * len(found) / len(SECTIONS), 1),
        accept=not missing,
        feedback="complete" if not missing else f"missing sections: {', '.join(missing)}",
    )
    return ScriptedReply(text=verdict.model_dump_json())


TEAM_SCRIPTS.add(reviewer, _review)

coordinator = Agent(
    name="coordinator",
    order=33,
    description="Supervises workers: triage first, then the specialist it points to.",
    system_prompt=(
        "You supervise a team. Each round, give one worker a sub-task or finish with the answer. "
        "Have the task triaged first, then hand the triaged question to the specialist."
    ),
    max_steps=4,
)


def _rounds(prompt: str) -> list[dict[str, object]]:
    lines = prompt.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Rounds so far") and i + 1 < len(lines) and lines[i + 1] != "none":
            rounds: list[dict[str, object]] = json.loads(lines[i + 1])
            return rounds
    return []


def _coordinate(view: ScriptView) -> ScriptedReply:
    prompt = view.task
    workers_line = next((ln for ln in prompt.splitlines() if ln.startswith("Workers: ")), "")
    workers = workers_line.removeprefix("Workers: ").split(", ")
    task_line = next((ln for ln in prompt.splitlines() if ln.startswith("Task: ")), "Task: ")
    task = task_line.removeprefix("Task: ")
    done = [r for r in _rounds(prompt) if r.get("status") == "completed"]
    asked = {str(r.get("worker")) for r in done}
    may_delegate = "Worker runs left: 0" not in prompt
    specialists = [w for w in workers if w != "triage"]
    if may_delegate and "triage" in workers and "triage" not in asked:
        decision = {"action": "delegate", "worker": "triage", "task": task, "reason": "triage"}
    elif may_delegate and specialists and not asked & set(specialists):
        question = task
        for r in done:
            try:
                question = str(json.loads(str(r.get("output"))).get("question") or task)
            except (ValueError, AttributeError):
                pass
        decision = {
            "action": "delegate",
            "worker": specialists[0],
            "task": question,
            "reason": "triaged; the specialist answers",
        }
    else:
        answer = str(done[-1]["output"]) if done else "No worker could answer."
        decision = {"action": "finish", "answer": answer, "reason": "the specialist answered"}
    return ScriptedReply(text=json.dumps(decision))


TEAM_SCRIPTS.add(coordinator, _coordinate)
