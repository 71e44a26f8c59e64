"""The multi-agent patterns as the command line offers them: names, inputs, examples, results.

``starter.py patterns`` lists them; ``starter.py run <pattern> '<input JSON>'`` starts one (the
input is validated here first, so a typo is a clear error, not a failed workflow) and follows
it. Every example runs on the offline ``scripted`` model with the agents this repository serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel

from durable_agents.contracts.patterns import (
    EvaluatorOptimizerInput,
    EvaluatorOptimizerResult,
    ParallelInput,
    ParallelResult,
    PipelineInput,
    PipelineResult,
    RouterInput,
    RouterResult,
    SupervisorInput,
    SupervisorResult,
)

SUMMARY_TASK_CHARS = 100


@dataclass(frozen=True)
class Pattern:
    name: str
    workflow_type: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    description: str
    example: dict[str, Any]

    def parse(self, raw: str) -> BaseModel:
        """The input, validated; ``ValueError`` saying what is wrong."""
        try:
            return self.input_model.model_validate_json(raw)
        except pydantic.ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}"
                for e in err.errors(include_url=False)
            )
            raise ValueError(f"invalid {self.workflow_type} input: {problems}") from None

    def agents(self, value: BaseModel) -> list[str]:
        """The agents an input names (to check them before starting)."""
        data = value.model_dump()
        names: list[str] = []
        for key in ("supervisor", "router", "generator", "synthesizer", "default"):
            if isinstance(data.get(key), str):
                names.append(data[key])
        if isinstance(data.get("evaluator"), str):
            names.append(data["evaluator"])
        names += data.get("workers", [])
        names += list(data.get("routes", {}).values())
        names += [item["agent"] for item in data.get("branches", []) + data.get("stages", [])]
        return names


PATTERNS = [
    Pattern(
        "parallel",
        "ParallelAgentsWorkflow",
        ParallelInput,
        ParallelResult,
        "fan out agents as child workflows; policy all | best_effort | {quorum: k}; "
        "branch_timeout; optional synthesizer",
        {
            "branches": [
                {"agent": "finops", "task": "Why did the cloud bill spike this week?"},
                {"agent": "triage", "task": "Our invoice doubled, is that a cost question?"},
            ],
            "policy": "best_effort",
            "branch_timeout": 300,
        },
    ),
    Pattern(
        "pipeline",
        "PipelineWorkflow",
        PipelineInput,
        PipelineResult,
        "stages in sequence; each stage's (typed) output, validated at the edge, is the next "
        "stage's input",
        {
            "stages": [{"agent": "triage"}, {"agent": "finops"}],
            "task": "Our cloud bill doubled this week, what happened?",
        },
    ),
    Pattern(
        "supervisor",
        "SupervisorWorkflow",
        SupervisorInput,
        SupervisorResult,
        "a supervisor agent routes sub-tasks to worker agents round by round until it "
        "finishes (max_rounds)",
        {
            "supervisor": "coordinator",
            "workers": ["triage", "finops"],
            "task": "Our cloud bill doubled this week: find out why and who should act.",
            "max_rounds": 3,
        },
    ),
    Pattern(
        "router",
        "RouterWorkflow",
        RouterInput,
        RouterResult,
        "a router agent's typed decision picks the agent for the task (default for unknown labels)",
        {
            "router": "dispatcher",
            "routes": {"cost": "finops", "other": "triage"},
            "task": "Why did the cloud bill spike?",
        },
    ),
    Pattern(
        "evaluator-optimizer",
        "EvaluatorOptimizerWorkflow",
        EvaluatorOptimizerInput,
        EvaluatorOptimizerResult,
        "a generator improves its answer on an evaluator's feedback (an agent, or "
        '{"check": name} run as an activity) until accepted or max_iterations',
        {
            "generator": "drafter",
            "evaluator": "reviewer",
            "task": "Write the cost report for the finance team.",
            "max_iterations": 3,
        },
    ),
]

BY_NAME = {p.name: p for p in PATTERNS} | {p.workflow_type: p for p in PATTERNS}


def find(name: str) -> Pattern | None:
    return BY_NAME.get(name)


def summary(pattern: Pattern, value: BaseModel) -> tuple[str, str]:
    """The run's summary and details (Markdown) in the Web UI: pattern and task."""
    data = value.model_dump(mode="json")
    task = str(data.get("task") or "; ".join(b["task"] for b in data.get("branches", [])))
    excerpt = " ".join(task.split())
    if len(excerpt) > SUMMARY_TASK_CHARS:
        excerpt = excerpt[: SUMMARY_TASK_CHARS - 1] + "…"
    details = f"**Pattern:** {pattern.workflow_type}\n\n**Input:**\n\n```json\n"
    details += json.dumps(data, indent=2)[:4000] + "\n```"
    return f"{pattern.name}: {excerpt}", details


def result_text(result: dict[str, Any]) -> str:
    """A pattern's result for people: status, answer, and one line per part."""
    lines = ["", "-" * 72, f"status:  {result.get('status')}"]
    if result.get("error"):
        lines.append(f"error:   {result['error']}")
    lines.append(f"cost:    ${float(result.get('cost_usd') or 0):.4f}")
    for branch in result.get("branches", []):
        lines.append(
            f"  branch {branch['index']} {branch['agent']}: {branch['status']}"
            + (f" ({branch['error']})" if branch.get("error") else "")
        )
    for stage in result.get("stages", []):
        lines.append(
            f"  stage {stage['index']} {stage['agent']}: {stage['status']}"
            + (f" ({stage['error']})" if stage.get("error") else "")
        )
    for item in result.get("rounds", []):
        decision = item["decision"]
        what = (
            f"{decision['worker']} <- {decision['task']!r}"
            if decision["action"] == "delegate"
            else "finish"
        )
        lines.append(f"  round {item['round']}: {what} [{item['status']}]")
    for item in result.get("iterations", []):
        evaluation = item.get("evaluation") or {}
        score = evaluation.get("score")
        lines.append(
            f"  iteration {item['index']}: score {score if score is not None else '-'}"
            + (" accepted" if item.get("accepted") else "")
            + (f" ({item['error']})" if item.get("error") else "")
        )
    if "label" in result:
        lines.append(f"  routed: {result.get('label') or 'default'} -> {result.get('agent')}")
    lines += ["", str(result.get("output", ""))]
    return "\n".join(lines)
