"""Agents for the pipeline and supervisor tests, with their scripts (registered by
``tests.agents_for_tests``).

The scripts read what they are given: the pipeline stages parse the previous stage's JSON out of
the hand-off (``workflows.pipeline.hand_off``), the supervisors parse the earlier rounds out of
their prompt (``workflows.supervisor.supervisor_prompt``), the workers compute from the numbers in
their sub-task. So a test that checks a final answer checks the hand-offs that produced it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from durable_agents.agents import Agent
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView

PATTERN_SCRIPTS = ScriptBook()
PATTERN_AGENTS: list[Agent] = []


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", text)]


def reply_json(value: object) -> ScriptedReply:
    return ScriptedReply(text=json.dumps(value))


# -- pipeline stages ------------------------------------------------------------------------


def read_hand_off(text: str) -> tuple[str, Any]:
    """The pipeline task and the previous stage's JSON answer, from a stage's input."""
    header, _, payload = text.partition("\n\n")
    task_line = header.splitlines()[0]
    assert task_line.startswith("Pipeline task: "), text
    return json.loads(task_line.removeprefix("Pipeline task: ")), json.loads(payload)


class Numbers(BaseModel):
    numbers: list[int]


class Squares(BaseModel):
    task: str
    squares: list[int]


class Total(BaseModel):
    task: str
    total: int


extractor = Agent(
    name="pipe-extractor",
    description="Stage: the numbers in the task, as JSON.",
    system_prompt="List the numbers in the task.",
    output_type=Numbers,
)
PATTERN_SCRIPTS.add(extractor, lambda view: reply_json({"numbers": numbers_in(view.task)}))


def _square(view: ScriptView) -> ScriptedReply:
    task, previous = read_hand_off(view.task)
    return reply_json({"task": task, "squares": [n * n for n in previous["numbers"]]})


squarer = Agent(
    name="pipe-squarer",
    description="Stage: squares the previous stage's numbers.",
    system_prompt="Square the numbers.",
    output_type=Squares,
)
PATTERN_SCRIPTS.add(squarer, _square)


def _sum(view: ScriptView) -> ScriptedReply:
    task, previous = read_hand_off(view.task)
    return reply_json({"task": task, "total": sum(previous["squares"])})


summer = Agent(
    name="pipe-summer",
    description="Stage: adds up the previous stage's squares.",
    system_prompt="Add up the squares.",
    output_type=Total,
)
PATTERN_SCRIPTS.add(summer, _sum)


def _report(view: ScriptView) -> ScriptedReply:
    _, previous = read_hand_off(view.task)
    total = sum(previous["squares"])
    if view.turn == 0:  # prose first: only the schema the pipeline gives turns it into JSON
        return ScriptedReply(text=f"The squares add up to {total}.")
    return reply_json({"summary": f"the squares add up to {total}", "total": total})


reporter = Agent(
    name="pipe-reporter",
    description="Stage without an output type: prose, unless a schema is asked for.",
    system_prompt="Report on the squares.",
)
PATTERN_SCRIPTS.add(reporter, _report)

PATTERN_AGENTS += [extractor, squarer, summer, reporter]


# -- supervisor and workers -----------------------------------------------------------------


def prompt_line(prompt: str, prefix: str) -> str:
    return next(line for line in prompt.splitlines() if line.startswith(prefix))


def read_rounds(prompt: str) -> list[dict[str, Any]]:
    """The earlier rounds, from a supervisor prompt (a JSON line, or ``none``)."""
    lines = prompt.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Rounds so far"))
    shown = lines[start + 1]
    return [] if shown == "none" else list(json.loads(shown))


def delegate(worker: str, task: str, reason: str = "") -> ScriptedReply:
    return reply_json({"action": "delegate", "worker": worker, "task": task, "reason": reason})


def finish(answer: str, reason: str = "") -> ScriptedReply:
    return reply_json({"action": "finish", "answer": answer, "reason": reason})


sup_squarer = Agent(
    name="sup-squarer",
    description="Worker: squares the numbers in its task.",
    system_prompt="Square the numbers.",
)
PATTERN_SCRIPTS.add(
    sup_squarer,
    lambda view: ScriptedReply(
        text="squares: " + ", ".join(str(n * n) for n in numbers_in(view.task))
    ),
)

sup_summer = Agent(
    name="sup-summer",
    description="Worker: adds up the numbers in its task.",
    system_prompt="Add up the numbers.",
)
PATTERN_SCRIPTS.add(
    sup_summer, lambda view: ScriptedReply(text=f"total: {sum(numbers_in(view.task))}")
)


def _boss(view: ScriptView) -> ScriptedReply:
    """Squares first, then adds the squares up, then answers from both workers' outputs."""
    done = {r["worker"]: r["output"] for r in read_rounds(view.task) if r["status"] == "completed"}
    if "sup-summer" in done:
        return finish(f"{done['sup-squarer']}; {done['sup-summer']}", "both workers reported")
    if "sup-squarer" in done:
        return delegate("sup-summer", f"add up {done['sup-squarer']}", "now the sum")
    task = prompt_line(view.task, "Task: ").removeprefix("Task: ")
    return delegate("sup-squarer", f"square the numbers in: {task}", "squares first")


boss = Agent(
    name="sup-boss",
    description="Supervisor: squarer, then summer, then the answer.",
    system_prompt="Supervise.",
)
PATTERN_SCRIPTS.add(boss, _boss)


def _rerouter(view: ScriptView) -> ScriptedReply:
    """Tries the first worker listed; when it fails, gives the same job to sup-squarer."""
    rounds = read_rounds(view.task)
    first = prompt_line(view.task, "Workers: ").removeprefix("Workers: ").split(", ")[0]
    job = "square 6 and 7"
    if not rounds:
        return delegate(first, job)
    last = rounds[-1]
    if last["status"] != "completed":
        return delegate("sup-squarer", job, f"{last['worker']} {last['status']}")
    return finish(f"{rounds[0]['worker']} {rounds[0]['status']}; {last['output']}")


rerouter = Agent(
    name="sup-rerouter",
    description="Supervisor: reroutes the job when its first worker fails.",
    system_prompt="Supervise.",
)
PATTERN_SCRIPTS.add(rerouter, _rerouter)


def _endless(view: ScriptView) -> ScriptedReply:
    """Always delegates to the first worker listed; only a repair (the final ask allows
    nothing but ``finish``) makes it answer, from the outputs so far."""
    rounds = read_rounds(view.task)
    if view.turn == 0:
        worker = prompt_line(view.task, "Workers: ").removeprefix("Workers: ").split(", ")[0]
        return delegate(worker, f"square {len(rounds) + 1}")
    return finish(f"stopped after {len(rounds)} rounds: " + "; ".join(r["output"] for r in rounds))


endless = Agent(
    name="sup-endless",
    description="Supervisor that would delegate forever.",
    system_prompt="Supervise.",
)
PATTERN_SCRIPTS.add(endless, _endless)


def _sloppy(view: ScriptView) -> ScriptedReply:
    """Forgets the sub-task at first; corrects itself after reading why that round failed."""
    rounds = read_rounds(view.task)
    if not rounds:
        return reply_json({"action": "delegate", "worker": "sup-squarer"})
    if len(rounds) == 1:
        return delegate("sup-squarer", "square 8", f"round 1: {rounds[0]['error']}")
    return finish(rounds[-1]["output"])


sloppy = Agent(
    name="sup-sloppy",
    description="Supervisor whose first delegation has no sub-task.",
    system_prompt="Supervise.",
)
PATTERN_SCRIPTS.add(sloppy, _sloppy)

confused = Agent(
    name="sup-confused",
    description="Supervisor whose decision never names a worker it has.",
    system_prompt="Supervise.",
)
PATTERN_SCRIPTS.add(confused, lambda view: delegate("nobody", "anything"))

PATTERN_AGENTS += [sup_squarer, sup_summer, boss, rerouter, endless, sloppy, confused]
