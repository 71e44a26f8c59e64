"""Input, result and status of ``AgentWorkflow``: the contract users rely on.

Fields are only ever added (with defaults), never renamed, so running workflows keep decoding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, model_validator

from durable_agents.contracts.approvals import (
    ApprovalRecord,
    ApprovalSettings,
    PolicyRecord,
    ToolRule,
)
from durable_agents.contracts.budget import Budget
from durable_agents.contracts.context import ContextPolicy, ContextState
from durable_agents.contracts.messages import Message, ToolCall, Usage
from durable_agents.contracts.model import StorageHint
from durable_agents.contracts.pricing import ModelPrice
from durable_agents.contracts.tools import ToolOutcome, ToolSchema

OutputT = TypeVar("OutputT", bound=BaseModel)

SUBAGENT_TOOL_PREFIX = "delegate_to_"
"""A sub-agent ``x`` is offered to the model as the tool ``delegate_to_x``."""

RunStatus = Literal[
    "running",
    "completed",
    "max_steps",
    "cancelled",
    "failed",
    "invalid_output",
    "budget_exhausted",
]
"""``invalid_output``: the final answer still failed the output schema after its repairs.
``budget_exhausted``: the next model call's worst case did not fit in the budget; the run
ended with its partial output."""
Phase = Literal["starting", "calling_model", "running_tools", "awaiting_approval", "finished"]


class AgentInput(BaseModel):
    """What a starter sends: ``{"agent": "finops", "task": "..."}`` is enough."""

    agent: str = Field(min_length=1)
    task: str = Field(min_length=1)
    model: str | None = None
    """``provider:model-name`` (``scripted``, ``anthropic:...``, ``openai:...``,
    ``compatible:...``). Default: the agent's model if its provider is configured on the worker,
    otherwise the offline ``scripted`` model."""
    max_steps: int | None = Field(default=None, ge=1, le=100_000)
    """Upper bound on model calls; default: the agent's own limit."""
    context: ContextPolicy | None = None
    """Context-window strategy for this run; default: the agent's own."""
    continue_as_new_after_steps: int | None = Field(default=None, ge=1)
    """Start a fresh history after this many steps; default: the agent's setting, else only
    when Temporal suggests it (history near 4 MiB / 4,096 events)."""
    output_schema: dict[str, Any] | None = None
    """A JSON schema the final answer must match (typed output from the Temporal CLI); default:
    the agent's ``output_type``, if any."""
    depth: int = Field(default=0, ge=0)
    """Set by a parent that delegates to this agent: how deep it is (0: a top-level run)."""
    subagent_calls_granted: int | None = Field(default=None, ge=0)
    """Set by a delegating parent: the sub-agent calls this run may make, at most (its share of
    the parent's)."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Most this run (its sub-agents included) may spend, in USD at the recorded model price;
    the tightest of this, the agent's and the worker's default applies. A parent sets it to the
    slice it grants."""
    budget_tokens: int | None = Field(default=None, ge=0)
    """Most tokens (input, output and cache) this run and its sub-agents may use."""
    carry: CarriedRun | None = None
    """Set by the workflow itself when it continues as new; starters leave it out."""
    history: list[Message] | None = None
    """Set by ``starter.py fork``: the conversation to start from (the original run's as it
    stood after ``forked_from.step``, possibly edited) instead of ``task`` alone. The agent is
    loaded as usual, so policy, approvals and ``model`` apply afresh; ``task`` is its first user
    message."""
    forked_from: ForkOrigin | None = None
    """Set with ``history``: the run this one was forked from; its steps continue from there."""
    stream: bool = Field(default=False, exclude_if=lambda v: not v)
    """Publish the model's text as it is generated and each step as it starts on the run's
    workflow stream (``starter.py run --stream``; docs/streaming.md). Off: the run has no
    stream, and its input and history are what they always were."""
    stream_state: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    """Set by a streamed run when it continues as new: its stream's offsets and latest items
    (``WorkflowStreamState``), so subscribers go on where they were."""

    @property
    def payload_storage_hint(self) -> StorageHint | None:
        """A continue-as-new or fork input carries a conversation: it leaves history from 2 KiB
        on. A starter's input follows the general rule (inline unless large)."""
        return "offload" if self.carry is not None or self.history is not None else None


class ForkOrigin(BaseModel):
    """Where a fork (``starter.py fork``) came from: the original run, at one of its steps."""

    workflow_id: str
    run_id: str
    """The run of the original's continue-as-new chain that made step ``step``."""
    step: int = Field(ge=0)
    """The fork starts from the conversation as it stood after this step (0: the first
    request); its own steps are numbered from ``step + 1``."""


class ToolCallRecord(BaseModel):
    """One executed (or refused) tool call, kept in the result."""

    step: int
    call_id: str
    name: str
    arguments: str
    is_error: bool
    result_preview: str = ""
    """The first few hundred characters of what the tool returned (or the error)."""
    idempotency_key: str | None = None
    """``None`` when the call never reached a tool activity (for instance an unknown tool)."""


class StepView(BaseModel):
    """One model turn as the status query shows it: what the model said and the calls it made."""

    step: int
    text: str
    model: str = ""
    """The model that answered (a step model or a fallback, when not the run's own)."""
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)


class PendingApproval(BaseModel):
    """A gated tool call waiting for a human decision."""

    id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    requested_at: datetime
    deadline: datetime | None = None
    step: int = 0
    call_id: str = ""
    escalated: bool = False
    """True once the first deadline passed and the escalation list was notified."""
    approvers: list[str] = Field(default_factory=list)
    """Who may decide; empty means anyone."""
    workflow_id: str | None = None
    """Set when the approval belongs to a sub-agent's child workflow: decide it there, or here
    by its id (``<label>/<approval id>``), which this run forwards."""


class AgentSpec(BaseModel):
    """An agent definition resolved by the worker, recorded in history at the start of a run."""

    name: str
    description: str
    system_prompt: str
    model: str
    max_steps: int
    max_tokens: int = 4096
    tools: list[ToolSchema]
    """The tools offered to the model (denied tools are left out)."""
    policy: dict[str, ToolRule] = Field(default_factory=dict)
    """Tool name -> rule; tools not listed are allowed."""
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    context: ContextPolicy = Field(default_factory=ContextPolicy)
    continue_as_new_after_steps: int | None = None
    mcp_servers: list[str] = Field(default_factory=list)
    """MCP servers (by name, configured on the worker) whose tools the run lists at its start."""
    output_schema: dict[str, Any] | None = None
    """JSON schema the final answer must match (from the agent's ``output_type`` or the run's
    ``output_schema``); ``None``: free text."""
    output_name: str = "final_answer"
    output_repairs: int = 2
    """How many times a final answer that fails ``output_schema`` is sent back for repair."""
    subagents: list[str] = Field(default_factory=list)
    """Agents this one may delegate to, each offered as a tool ``delegate_to_<name>`` whose call
    runs it as a child workflow."""
    max_subagent_calls: int = 8
    """Sub-agent calls this run may make, its sub-agents' own calls included (they draw from
    it); beyond it the model gets a tool error."""
    max_depth: int = 3
    budget_usd: float | None = None
    budget_tokens: int | None = None
    step_models: dict[str, str] = Field(default_factory=dict)
    """Step kind (``summary``, ``repair``) -> the model for it (providers the worker has)."""
    fallback_models: list[str] = Field(default_factory=list)
    model_attempts: int = 3
    """How deep delegation may go below a top-level run."""
    delegating_subagents: list[str] = Field(default_factory=list)
    """The sub-agents that may delegate in turn: only they are granted calls of this run's."""


WORKER_SETTING_FIELDS = ("max_request_bytes", "status_search_attribute")


FIXES = 2
"""The level of ``WorkerSettings.fixes`` a worker records with the runs it starts."""


class WorkerSettings(BaseModel):
    """Settings of the worker that started a run, not of the agent: recorded with the run (in
    ``load_agent``'s result, carried across continue-as-new) so replays and continuations make
    the same decisions."""

    max_request_bytes: int | None = None
    """Set when the worker keeps payloads in history (no external storage): a model request
    (or continue-as-new input) larger than this would exceed Temporal's payload limit, so the
    run fails with a clear error instead. ``None``: large payloads are offloaded."""
    status_search_attribute: bool = False
    """Whether the server has the ``AgentStatus`` search attribute for the run to keep current."""
    default_budget_usd: float | None = None
    """The worker's budget for runs that set none (``DURABLE_AGENTS_BUDGET_USD``)."""
    default_budget_tokens: int | None = None
    """``DURABLE_AGENTS_BUDGET_TOKENS``."""
    agent_search_attributes: bool = False
    """Whether the server has ``AgentName`` and ``AgentModel`` for the run to set."""
    cost_search_attributes: bool = False
    """Whether the server has ``AgentCostUSD`` and ``AgentTokens`` for the run to keep current."""
    fixes: int = 0
    """Behaviour fixes that change what a run does, recorded with the run so that runs recorded
    before a fix replay unchanged (``FIXES`` is the current level):
    1 — a decision signalled to a continued run before it re-opened its approvals is held and
    applied (was: ignored); cancelling a run during a model call ends it ``cancelled`` (was:
    failed with ``ModelCallFailed``), and never moves the call to a fallback model.
    2 — a search attribute is upserted only when its value changes, and the run's first
    ``AgentStatus`` / ``AgentName`` / ``AgentModel`` in one upsert (was: every value every
    time, ``AgentStatus`` ``running`` again on every step)."""
    local_tools: bool = False
    """Whether tools whose schema says ``local`` run as local activities (runs recorded before
    local tools ran every tool as a regular activity: they replay unchanged)."""
    model_task_queues: dict[str, str] = Field(default_factory=dict)
    """Provider (``anthropic``, ``openai``, ...) -> the task queue its model calls go to, where a
    queue-wide rate limit applies to every worker; providers not listed use the run's queue."""


def _settings_from_recorded_spec(spec: object) -> dict[str, Any]:
    """Runs recorded before the split kept these settings inside the agent spec."""
    if not isinstance(spec, dict):
        return {}
    return {k: spec[k] for k in WORKER_SETTING_FIELDS if k in spec}


class LoadedAgent(BaseModel):
    """What ``load_agent`` returns: the agent as resolved, and the worker's settings."""

    spec: AgentSpec
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    price: ModelPrice | None = None
    """The price of the run's model from the worker's price table, recorded with the run;
    ``None``: not in the table (its cost is unknown)."""
    prices: dict[str, ModelPrice | None] = Field(default_factory=dict)
    """The same for every model the run may use (its step models and fallbacks)."""

    @model_validator(mode="before")
    @classmethod
    def _from_bare_spec(cls, data: Any) -> Any:
        # Histories recorded before the split hold a bare AgentSpec (settings inside).
        if isinstance(data, dict) and "spec" not in data:
            return {"spec": data, "worker": _settings_from_recorded_spec(data)}
        return data


class AgentResult(BaseModel):
    status: RunStatus
    output: str
    """The final answer; on ``max_steps`` or ``cancelled`` the latest partial output."""
    steps: int
    """Model calls made."""
    usage: Usage
    cost_usd: float
    agent: str
    model: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    """The latest tool calls (at most ``RECORDS_KEPT``), oldest first; all are in history."""
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    policy_decisions: list[PolicyRecord] = Field(default_factory=list)
    error: str | None = None
    tool_calls_total: int = 0
    """Tool calls over the whole run, including those no longer listed in ``tool_calls``."""
    runs: int = 1
    """Workflow runs in the continue-as-new chain that produced this result."""
    output_json: Any = None
    """With typed output: the validated final answer (a JSON object); else ``None``."""
    output_repairs: int = 0
    """With typed output: how many repairs the final answer took."""
    warnings: list[str] = Field(default_factory=list)
    """What the run ignored, e.g. unknown input fields (a typo, or a newer starter's field)."""
    subagent_calls: int = 0
    """Sub-agent calls made by this run and, through them, by its sub-agents."""
    budget: Budget | None = None
    """Spend (this run's model calls and its children's) against the limits, if any, with a
    per-child breakdown; why it stopped when ``budget_exhausted``."""
    cost_by_model: dict[str, float] = Field(default_factory=dict)
    """This run's own model calls' cost by the model that answered them."""

    def output_as(self, output_type: type[OutputT]) -> OutputT:
        """The validated final answer as ``output_type`` (the agent's or run's output type).

        Raises:
            ValueError: The run has no typed output (status other than ``completed``, or no
                output schema).
        """
        if self.output_json is None:
            raise ValueError(f"the run ended {self.status!r} without a typed output")
        return output_type.model_validate(self.output_json)


class AgentRunInfo(BaseModel):
    """One agent run of a workflow that runs several (``AgentHost``), as ``status`` lists it."""

    label: str
    """Unique in the workflow (``planner-1``); scopes the run's keys and ids."""
    agent: str
    status: RunStatus = "running"
    steps: int = 0
    workflow_id: str | None = None
    """Set when the agent runs as a child workflow: where to look at it."""


class AgentStatusView(BaseModel):
    """Answer of the ``status`` query."""

    payload_storage_hint: ClassVar[StorageHint] = "inline"
    """Query answers never enter history: kept inline so ``temporal workflow query`` reads it."""

    status: RunStatus
    phase: Phase
    agent: str
    model: str | None
    steps: int
    max_steps: int | None
    output: str
    usage: Usage
    cost_usd: float
    running_tools: list[str] = Field(default_factory=list)
    recent_steps: list[StepView] = Field(default_factory=list)
    """The latest steps (at most ``RECENT_STEPS_SHOWN``), oldest first."""
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    runs: int = 1
    """Workflow runs so far in this run's continue-as-new chain."""
    agents: list[AgentRunInfo] = Field(default_factory=list)
    """In a workflow that runs several agents (``AgentHost``): each of them, inline or child."""
    warnings: list[str] = Field(default_factory=list)
    """What the run ignored, e.g. unknown input fields."""
    budget: Budget | None = None
    """Spent / reserved / limit for the whole workflow, per child."""


class ResumeStep(BaseModel):
    """A step whose tool calls were in progress when the run continued as new."""

    calls: list[ToolCall]
    """Every call the model asked for at this step."""
    outcomes: list[ToolOutcome] = Field(default_factory=list)
    """Outcomes of the calls that had finished."""
    pending: list[PendingApproval] = Field(default_factory=list)
    """The other calls' approvals, still waiting for a human, with their original deadlines."""


class CarriedRun(BaseModel):
    """Everything a run hands to its continuation: the run goes on as if nothing happened."""

    spec: AgentSpec
    """The agent as loaded (and its MCP tools as listed) at the start of the first run."""
    messages: list[Message]
    """The conversation still needed (messages folded into the summary are dropped)."""
    context: ContextState = Field(default_factory=ContextState)
    steps: int
    usage: Usage
    cost_usd: float
    output: str = ""
    recent_steps: list[StepView] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    tool_calls_total: int = 0
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    policy_decisions: list[PolicyRecord] = Field(default_factory=list)
    mcp_tools: list[str] = Field(default_factory=list)
    runs: int = 1
    """Runs in the chain so far, this one included."""

    @model_validator(mode="before")
    @classmethod
    def _settings_from_spec(cls, data: Any) -> Any:
        # Continuations written before the split carry the settings inside the spec.
        if isinstance(data, dict) and "worker" not in data:
            return {**data, "worker": _settings_from_recorded_spec(data.get("spec"))}
        return data

    resume: ResumeStep | None = None
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    output_repairs: int = 0
    warnings: list[str] = Field(default_factory=list)
    depth: int = 0
    subagent_calls: int = 0
    subagent_calls_granted: int | None = None
    price: ModelPrice | None = None
    budget: Budget | None = None
    prices: dict[str, ModelPrice | None] = Field(default_factory=dict)
    cost_by_model: dict[str, float] = Field(default_factory=dict)


AgentInput.model_rebuild()
