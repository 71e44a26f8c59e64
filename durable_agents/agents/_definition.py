"""How users define an agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from durable_agents.contracts.approvals import ApprovalSettings, PolicyAction, ToolRule
from durable_agents.contracts.context import ContextPolicy
from durable_agents.tools import Tool


@dataclass(frozen=True)
class Agent:
    """An agent: who it is, what it may use, and its limits.

    Define one at module level in a module under ``agents/`` (or in a module named by
    ``DURABLE_AGENTS_MODULES``) and the worker discovers it. What it does under the offline
    ``scripted`` model is not part of the definition: a ``ScriptBook`` (``durable_agents.testing``)
    attaches a script to it from outside.
    """

    name: str
    description: str
    system_prompt: str
    tools: Sequence[Tool] = ()
    model: str | None = None
    """Preferred ``provider:model-name``; used when that provider is configured on the worker."""
    max_steps: int = 20
    """Default upper bound on model calls per run; a run's input may lower or raise it."""
    max_tokens: int = 4096
    """Upper bound on tokens per model reply."""
    order: int = 100
    """Position in ``starter.py agents`` (lowest first)."""
    policy: Mapping[str, ToolRule | PolicyAction] = field(default_factory=dict)
    """Tool name -> ``"allow"``, ``"deny"``, ``"require_approval"`` or a ``ToolRule`` with
    argument allowlists. Tools not listed are allowed; denied tools are not offered to the model
    and a call to one is refused without running anything."""
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    """Approvers, deadlines, escalation and the default for gated calls."""
    context: ContextPolicy = field(default_factory=ContextPolicy)
    """How much of the conversation each model call sends (see ``ContextPolicy``)."""
    continue_as_new_after_steps: int | None = None
    """Start a fresh workflow history every this many steps (it also happens whenever Temporal
    suggests it); the run carries on unchanged."""
    output_type: type[BaseModel] | None = None
    """A pydantic model the final answer must match (typed output): the model is asked for it
    the way its provider supports best, the reply is validated, and a reply that fails goes back
    to the model with the validation error, up to ``output_repairs`` times."""
    output_repairs: int = 2
    """Repairs allowed for a final answer that fails ``output_type`` before the run ends with
    status ``invalid_output``."""
    subagents: Sequence[str] = ()
    """Names of agents this one may delegate to. Each is offered to the model as a tool,
    ``delegate_to_<name>(task)``, whose call runs that agent as a child workflow and returns its
    (typed) output; its approvals show in this run's ``status``."""
    max_subagent_calls: int = 8
    """Sub-agent calls a run may make, counting its sub-agents' own (a child may use at most
    half of what its parent has left; unspent calls come back when it ends)."""
    max_depth: int = 3
    """How many levels deep delegation may go below a top-level run."""
    budget_usd: float | None = None
    """Most a run of this agent (its sub-agents included) may spend, in USD at the model's
    recorded price; checked before each model call against its worst case."""
    budget_tokens: int | None = None
    """Most tokens (input, output, cache) a run of this agent and its sub-agents may use."""
    step_models: Mapping[str, str] = field(default_factory=dict)
    """A model per step kind, instead of ``model``: ``"summary"`` (context-window summaries) and
    ``"repair"`` (typed-output repairs), e.g. a cheap model for both; models whose provider the
    worker lacks are ignored."""
    fallback_models: Sequence[str] = ()
    """Tried in order when a step's model fails for good on a transient error (overloaded,
    5xx, timeouts, rate limits past their retries; never on a 4xx like a bad request), after
    ``model_attempts`` attempts each; only those whose provider the worker has."""
    model_attempts: int = 3
    """Attempts on one model before the next fallback (when there are fallbacks)."""
    mcp_servers: Sequence[str] = ()
    """Names of MCP servers configured on the worker (``MCP_SERVERS``, see
    ``mcp_tools.servers_from_env``) whose tools this agent gets, as ``<server>__<tool>``. They
    are listed once at the start of each run and recorded; ``policy`` applies to them by that
    name."""

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"agent {self.name!r} lists tools more than once: {duplicates!r}")

    def rules(self) -> dict[str, ToolRule]:
        return {
            name: rule if isinstance(rule, ToolRule) else ToolRule(action=rule)
            for name, rule in self.policy.items()
        }

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)
