"""The ``load_agent`` activity: resolve an agent definition into the spec a run uses.

The workflow never imports agent code. It asks the worker once, at the start of a run, and the
answer (system prompt, tool schemas, model, limits) is recorded in history, so editing an agent
does not break the replay of runs already in flight, and an unknown agent fails the run with a
clear error instead of a workflow task that retries forever.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import split_model
from activities.providers.pricing import price_table, run_price
from durable_agents.agents import Agent, AgentRegistry
from durable_agents.contracts.agent_io import (
    FIXES,
    SUBAGENT_TOOL_PREFIX,
    AgentSpec,
    LoadedAgent,
    WorkerSettings,
)
from durable_agents.contracts.tools import ToolSchema

PROVIDER_PREFERENCE = ("anthropic", "openai", "compatible")
"""Order in which configured providers are chosen when neither run nor agent names a model."""

DEFAULT_MODEL_NAMES = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-4.1-mini",
}


class LoadAgentInput(BaseModel):
    agent: str
    model: str | None = None
    max_steps: int | None = None


def resolve_model(
    agent: Agent,
    requested: str | None,
    configured: Iterable[str],
    compatible_model: str | None,
    scripts: Container[str],
) -> str:
    """Pick the ``provider:model`` a run uses.

    An explicitly requested model must be served by a configured provider. Otherwise the agent's
    own model is used when its provider is configured, then the first configured real provider,
    and finally the offline ``scripted`` model. ``scripts`` holds the names of the agents the
    scripted model has a script for (a ``ScriptBook``); only those can run on it.
    """
    available = set(configured)
    if requested:
        provider, _ = split_model(requested)
        if provider not in available:
            raise ApplicationError(
                f"model {requested!r} needs provider {provider!r}, which is not configured on "
                f"this worker (configured: {', '.join(sorted(available))}); set its API key "
                "in the worker's environment",
                type="ProviderNotConfigured",
                non_retryable=True,
            )
        if provider == "scripted" and agent.name not in scripts:
            raise ApplicationError(
                f"agent {agent.name!r} has no script for the offline scripted model",
                type="NoScript",
                non_retryable=True,
            )
        return requested
    if agent.model and split_model(agent.model)[0] in available:
        return agent.model
    for provider in PROVIDER_PREFERENCE:
        if provider not in available:
            continue
        if provider == "compatible":
            if compatible_model:
                return f"compatible:{compatible_model}"
            continue
        return f"{provider}:{DEFAULT_MODEL_NAMES[provider]}"
    if agent.name not in scripts:
        raise ApplicationError(
            f"agent {agent.name!r} has no script and no model provider is configured; set "
            "ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_COMPATIBLE_BASE_URL on the worker",
            type="NoModelAvailable",
            non_retryable=True,
        )
    return "scripted"


def delegate_tool(agent: Agent) -> ToolSchema:
    """How sub-agent ``agent`` is offered to the model that may delegate to it."""
    return ToolSchema(
        name=f"{SUBAGENT_TOOL_PREFIX}{agent.name}",
        description=(
            f"Delegate a task to the {agent.name!r} agent ({agent.description}). It works on "
            "its own, with its own tools, and returns its answer."
        ),
        parameters={
            "type": "object",
            "properties": {
                "task": {
                    "type": "string",
                    "description": "What the agent should do, with everything it needs to know",
                }
            },
            "required": ["task"],
            "additionalProperties": False,
        },
        effect="idempotent",
    )


def build_spec(
    agent: Agent,
    model: str,
    max_steps: int | None,
    subagents: Sequence[Agent] = (),
) -> AgentSpec:
    rules = agent.rules()
    return AgentSpec(
        name=agent.name,
        description=agent.description,
        system_prompt=agent.system_prompt,
        model=model,
        max_steps=max_steps or agent.max_steps,
        max_tokens=agent.max_tokens,
        tools=[
            t
            for t in [*(t.schema() for t in agent.tools), *map(delegate_tool, subagents)]
            if t.name not in rules or rules[t.name].action != "deny"
        ],
        policy=rules,
        approvals=agent.approvals,
        context=agent.context,
        continue_as_new_after_steps=agent.continue_as_new_after_steps,
        mcp_servers=list(agent.mcp_servers),
        output_schema=agent.output_type.model_json_schema() if agent.output_type else None,
        output_name=agent.output_type.__name__ if agent.output_type else "final_answer",
        output_repairs=agent.output_repairs,
        subagents=[sub.name for sub in subagents],
        delegating_subagents=[sub.name for sub in subagents if sub.subagents],
        max_subagent_calls=agent.max_subagent_calls,
        max_depth=agent.max_depth,
        budget_usd=agent.budget_usd,
        budget_tokens=agent.budget_tokens,
    )


def _env_number(name: str, kind: type[float] | type[int]) -> Any:
    """A positive number from the environment, or None; a bad value is a clear error."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ApplicationError(
            f"{name}={raw!r} is not a number", type="BadWorkerSetting", non_retryable=True
        ) from None
    return value


class AgentCatalogActivities:
    def __init__(
        self,
        registry: AgentRegistry,
        configured_providers: Iterable[str],
        compatible_model: str | None = None,
        status_search_attribute: bool = False,
        max_request_bytes: int | None = None,
        scripts: Container[str] | None = None,
        model_task_queues: Mapping[str, str] | None = None,
    ) -> None:
        """``scripts``: the agents the ``scripted`` provider has a script for (its
        ``ScriptBook``); default: the registry's ``scripts``. ``model_task_queues``: provider
        -> its rate-limited queue (``runtime.rate_limits``), recorded with each run."""
        self._registry = registry
        self._scripts = scripts if scripts is not None else registry.scripts
        self._providers = frozenset(configured_providers)
        self._compatible_model = compatible_model
        self._status_search_attribute = status_search_attribute
        self._max_request_bytes = max_request_bytes
        self._model_task_queues = dict(model_task_queues or {})
        price_table()  # read now: a malformed DURABLE_AGENTS_PRICES file stops the worker

    @activity.defn(name="load_agent")
    async def load_agent(self, request: LoadAgentInput) -> LoadedAgent:
        if request.agent not in self._registry:
            known = ", ".join(a.name for a in self._registry.all())
            raise ApplicationError(
                f"unknown agent {request.agent!r}; this worker serves: {known}",
                type="UnknownAgent",
                non_retryable=True,
            )
        agent = self._registry.get(request.agent)
        model = resolve_model(
            agent, request.model, self._providers, self._compatible_model, self._scripts
        )
        unknown = [name for name in agent.subagents if name not in self._registry]
        if unknown:
            raise ApplicationError(
                f"agent {agent.name!r} delegates to {', '.join(map(repr, unknown))}, which this "
                "worker does not serve",
                type="UnknownSubagent",
                non_retryable=True,
            )
        spec = build_spec(
            agent, model, request.max_steps, [self._registry.get(n) for n in agent.subagents]
        )
        # Step models and fallbacks this worker can serve (others are left out, not failed).
        usable = [m for m in (*agent.step_models.values(), *agent.fallback_models)]
        usable = [m for m in usable if split_model(m)[0] in self._providers]
        spec = spec.model_copy(
            update={
                "step_models": {k: m for k, m in agent.step_models.items() if m in usable},
                "fallback_models": [m for m in agent.fallback_models if m in usable and m != model],
                "model_attempts": agent.model_attempts,
            }
        )
        return LoadedAgent(
            spec=spec,
            worker=WorkerSettings(
                max_request_bytes=self._max_request_bytes,
                status_search_attribute=self._status_search_attribute,
                cost_search_attributes=self._status_search_attribute,
                agent_search_attributes=self._status_search_attribute,
                default_budget_usd=_env_number("DURABLE_AGENTS_BUDGET_USD", float),
                default_budget_tokens=_env_number("DURABLE_AGENTS_BUDGET_TOKENS", int),
                model_task_queues=self._model_task_queues,
                fixes=FIXES,
                local_tools=True,
            ),
            price=run_price(model),
            prices={m: run_price(m) for m in usable},
        )
