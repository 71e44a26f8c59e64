"""Discovery of agent definitions.

Every ``Agent`` found at the top level of a module the application names, or of a module named
in the comma-separated ``DURABLE_AGENTS_MODULES`` environment variable, is registered.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from functools import cache

from durable_agents.agents._definition import Agent


class UnknownAgentError(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown agent {name!r}; known agents: {', '.join(self.known)}")


class AgentRegistry:
    def __init__(self, agents: Iterable[Agent] = ()) -> None:
        self._agents: dict[str, Agent] = {}
        for agent in agents:
            self.register(agent)

    def register(self, agent: Agent, *, replace: bool = False) -> Agent:
        if agent.name in self._agents and not replace and self._agents[agent.name] is not agent:
            raise ValueError(f"two agents are named {agent.name!r}")
        self._agents[agent.name] = agent
        return agent

    def get(self, name: str) -> Agent:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgentError(name, self._agents) from None

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def all(self) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda a: (a.order, a.name))

    def discover(self, module_names: Iterable[str]) -> None:
        for module_name in module_names:
            module = importlib.import_module(module_name)
            for value in vars(module).values():
                if isinstance(value, Agent):
                    self.register(value)


def extra_agent_modules() -> list[str]:
    """Module names in ``DURABLE_AGENTS_MODULES`` (comma-separated)."""
    raw = os.environ.get("DURABLE_AGENTS_MODULES", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


@cache
def default_registry(modules: tuple[str, ...] = ()) -> AgentRegistry:
    """The agents this process serves: those in ``modules`` (the application's own; this
    repository's worker and starter pass ``examples.AGENT_MODULES``) plus
    ``DURABLE_AGENTS_MODULES``."""
    registry = AgentRegistry()
    registry.discover([*modules, *extra_agent_modules()])
    return registry
