"""Inputs and results of the multi-agent pattern workflows (``workflows/``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from durable_agents.contracts.agent_io import RunStatus


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


class RouterInput(BaseModel):
    """``RouterWorkflow``'s input."""

    router: str = Field(min_length=1)
    """The agent that picks the route (typed output: ``{"label": ..., "reason": ...}``)."""
    routes: dict[str, str] = Field(min_length=1)
    """Label -> the agent that handles it."""
    task: str = Field(min_length=1)
    default: str | None = None
    """The agent for a decision that names no known label; without it such a run fails."""


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
