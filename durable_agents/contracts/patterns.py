"""Inputs and results of the multi-agent pattern workflows (``workflows/``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from durable_agents.contracts.agent_io import RunStatus
from durable_agents.contracts.budget import Budget


class Branch(BaseModel):
    agent: str = Field(min_length=1)
    task: str = Field(min_length=1)


class Quorum(BaseModel):
    quorum: int = Field(ge=1)
    """Done as soon as this many branches have succeeded; the rest are cancelled."""


ParallelPolicy = Literal["all", "best_effort"] | Quorum
"""``"all"``: any branch failing fails the whole (the others are cancelled). ``"best_effort"``:
wait for every branch, synthesize what succeeded, list what failed and why. ``{"quorum": k}``:
done once k branches succeed; the rest are cancelled, and the result says so."""


class ParallelInput(BaseModel):
    """``ParallelAgentsWorkflow``'s input."""

    branches: list[Branch] = Field(min_length=1)
    policy: ParallelPolicy = "all"
    branch_timeout: float | None = Field(default=None, gt=0)
    """Seconds a branch may run; beyond it the branch is cancelled and counts as failed."""
    synthesizer: str | None = None
    """An agent that turns the succeeded branches' outputs into one answer (run inline)."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Most the whole fan-out may spend (branches and synthesizer), USD at recorded prices."""
    budget_tokens: int | None = Field(default=None, ge=0)
    branch_budget_usd: float | None = Field(default=None, ge=0)
    """Each branch's slice of the budget, granted first come first served until the budget is
    spent (later branches get what is left, possibly nothing, and end ``budget_exhausted``).
    Default: what is left, split evenly between the branches of a wave."""
    branch_budget_tokens: int | None = Field(default=None, ge=0)

    @field_validator("policy", mode="before")
    @classmethod
    def _quorum_object(cls, value: object) -> object:
        return Quorum.model_validate(value) if isinstance(value, dict) else value


BranchStatus = RunStatus | Literal["timed_out", "not_started"]


class BranchResult(BaseModel):
    index: int
    agent: str
    task: str
    workflow_id: str
    status: BranchStatus = "not_started"
    output: str = ""
    output_json: object = None
    cost_usd: float = 0.0
    error: str | None = None
    """Why the branch failed, timed out or was cancelled."""


class ParallelResult(BaseModel):
    """``ParallelAgentsWorkflow``'s result: every branch with its status, output and cost."""

    status: Literal["completed", "failed"]
    policy: str
    output: str
    """The synthesizer's answer, else the succeeded branches' outputs, one per paragraph."""
    branches: list[BranchResult]
    succeeded: int
    failed: int
    cancelled: int
    """Branches cancelled by the policy (quorum reached, or ``all`` after a failure)."""
    cost_usd: float
    error: str | None = None
    budget: Budget | None = None
    """Spent / reserved / limit, per branch."""


class RouterInput(BaseModel):
    """``RouterWorkflow``'s input."""

    router: str = Field(min_length=1)
    """The agent that picks the route (typed output: ``{"label": ..., "reason": ...}``)."""
    routes: dict[str, str] = Field(min_length=1)
    """Label -> the agent that handles it."""
    task: str = Field(min_length=1)
    default: str | None = None
    """The agent for a decision that names no known label; without it such a run fails."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Most the run may spend, its agents included (USD at the recorded model prices)."""
    budget_tokens: int | None = Field(default=None, ge=0)


class RouterResult(BaseModel):
    """``RouterWorkflow``'s result: the decision and the routed agent's answer."""

    label: str | None
    """The label the router chose (``None`` if it gave no valid decision)."""
    reason: str = ""
    agent: str
    """The agent that handled the task (the route's, or the default)."""
    used_default: bool = False
    status: RunStatus
    output: str
    output_json: object = None
    workflow_id: str
    """The routed agent's child workflow."""
    cost_usd: float


# -- PipelineWorkflow -----------------------------------------------------------------------


class Stage(BaseModel):
    agent: str = Field(min_length=1)
    output_schema: dict[str, Any] | None = None
    """A JSON object schema this stage's answer must match (validated at the edge, with the
    agent's repairs); default: the agent's own ``output_type``, if any."""


class PipelineInput(BaseModel):
    """``PipelineWorkflow``'s input: each stage's (typed) output is the next stage's input."""

    stages: list[Stage] = Field(min_length=1)
    task: str = Field(min_length=1)
    budget_usd: float | None = Field(default=None, ge=0)
    """Most the run may spend, its agents included (USD at the recorded model prices)."""
    budget_tokens: int | None = Field(default=None, ge=0)


class StageResult(BaseModel):
    index: int
    agent: str
    workflow_id: str
    status: BranchStatus = "not_started"
    input: str = ""
    """What this stage was given: the task, or the previous stage's output."""
    output: str = ""
    output_json: object = None
    cost_usd: float = 0.0
    error: str | None = None


class PipelineResult(BaseModel):
    """``PipelineWorkflow``'s result. ``status`` is ``completed``, or the status of the stage
    that stopped the pipeline (``invalid_output`` when its answer failed the schema after its
    repairs), named by ``failed_stage`` and ``error``."""

    status: RunStatus
    output: str
    """The last stage's answer (or the stopping stage's partial one)."""
    output_json: object = None
    stages: list[StageResult]
    failed_stage: int | None = None
    cost_usd: float
    error: str | None = None


# -- SupervisorWorkflow ---------------------------------------------------------------------


class SupervisorInput(BaseModel):
    """``SupervisorWorkflow``'s input."""

    supervisor: str = Field(min_length=1)
    """The agent that decides each round (typed output, see ``RoutingDecision``)."""
    workers: list[str] = Field(min_length=1)
    task: str = Field(min_length=1)
    max_rounds: int = Field(default=5, ge=1, le=100)
    """Worker runs at most; then the supervisor is asked once more for its final answer."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Most the run may spend, its agents included (USD at the recorded model prices)."""
    budget_tokens: int | None = Field(default=None, ge=0)


class RoutingDecision(BaseModel):
    """The supervisor's typed answer each round."""

    action: Literal["delegate", "finish"]
    worker: str | None = None
    """With ``delegate``: one of the workers."""
    task: str = ""
    """With ``delegate``: the sub-task for the worker."""
    answer: str = ""
    """With ``finish``: the final answer."""
    reason: str = ""


class SupervisorRound(BaseModel):
    round: int
    decision: RoutingDecision
    workflow_id: str | None = None
    """The worker's child workflow (``None`` for the finishing round)."""
    status: BranchStatus = "not_started"
    output: str = ""
    cost_usd: float = 0.0
    """The supervisor's and the worker's cost this round."""
    error: str | None = None


class SupervisorResult(BaseModel):
    """``SupervisorWorkflow``'s result: the final answer and every round's routing decision.
    ``status`` is ``completed`` when the supervisor finished, ``max_steps`` when ``max_rounds``
    ran out (the answer is then the supervisor's best after the last round)."""

    status: RunStatus
    output: str
    rounds: list[SupervisorRound]
    cost_usd: float
    error: str | None = None


# -- EvaluatorOptimizerWorkflow ---------------------------------------------------------------


class Evaluation(BaseModel):
    """An evaluator's verdict on one candidate: an evaluator agent's typed output, or what a
    deterministic check (an activity) returns."""

    score: float
    accept: bool
    feedback: str = ""


class CheckRef(BaseModel):
    check: str = Field(min_length=1)
    """A deterministic check registered on the worker (``durable_agents.checks``)."""


class CheckInput(BaseModel):
    """What a deterministic check (``durable_agents.checks``) is given: one candidate to judge.
    Also the ``run_check`` activity's input."""

    check: str = Field(min_length=1)
    """The check's registered name."""
    candidate: str
    """The generator's answer, as text."""
    candidate_json: object = None
    """The generator's typed answer (a JSON object), when it has an output type."""
    task: str
    """The task the candidate answers."""
    iteration: int = Field(ge=1)
    """Which iteration of the loop produced the candidate (1 for the first)."""


class EvaluatorOptimizerInput(BaseModel):
    """``EvaluatorOptimizerWorkflow``'s input. ``evaluator`` is an agent name (typed output
    ``Evaluation``) or ``{"check": name}`` for a check run as an activity."""

    generator: str = Field(min_length=1)
    evaluator: str | CheckRef
    task: str = Field(min_length=1)
    max_iterations: int = Field(default=3, ge=1, le=50)
    accept_score: float | None = None
    """When set, a candidate is accepted once its score reaches it (whatever ``accept`` says);
    otherwise when the evaluator says ``accept``."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Most the run may spend, its agents included (USD at the recorded model prices)."""
    budget_tokens: int | None = Field(default=None, ge=0)

    @field_validator("evaluator", mode="before")
    @classmethod
    def _check_object(cls, value: object) -> object:
        return CheckRef.model_validate(value) if isinstance(value, dict) else value


class Iteration(BaseModel):
    index: int
    candidate: str
    candidate_json: object = None
    generator_workflow_id: str | None = None
    evaluator_workflow_id: str | None = None
    """The evaluator agent's child workflow (``None`` with a check, or when not evaluated)."""
    evaluation: Evaluation | None = None
    """``None`` when the generator or the evaluator failed this iteration (see ``error``)."""
    accepted: bool = False
    cost_usd: float = 0.0
    error: str | None = None


class EvaluatorOptimizerResult(BaseModel):
    """``EvaluatorOptimizerWorkflow``'s result: the best-scoring candidate so far and every
    iteration's score. ``status``: ``completed`` (a candidate was accepted) or ``max_steps``
    (``max_iterations`` ran out: ``output`` is the best candidate, not an accepted one)."""

    status: RunStatus
    accepted: bool
    output: str
    output_json: object = None
    best_iteration: int | None
    best_score: float | None
    iterations: list[Iteration]
    cost_usd: float
    error: str | None = None
