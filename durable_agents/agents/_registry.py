"""Discovery of agent definitions.

Every ``Agent`` found at the top level of a module the application names, or of a module named
in the comma-separated ``DURABLE_AGENTS_MODULES`` environment variable, is registered. Every
``ScriptBook`` (``durable_agents.testing``) at the top level of those modules is merged into the
registry's ``scripts``, so a module brings its agents' offline scripts along with the agents.
Every ``Check`` (``durable_agents.checks``) at the top level is registered as a check.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeGuard

from durable_agents.agents._definition import Agent
from durable_agents.checks import Check

if TYPE_CHECKING:
    from durable_agents.testing import Script, ScriptBook


class UnknownAgentError(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown agent {name!r}; known agents: {', '.join(self.known)}")


class UnknownCheckError(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown check {name!r}; known checks: {', '.join(self.known) or 'none'}")


class AgentRegistry:
    def __init__(
        self,
        agents: Iterable[Agent] = (),
        scripts: Mapping[str, Script] | None = None,
        checks: Iterable[Check] = (),
    ) -> None:
        """``agents`` to serve, ``scripts`` (agent name -> script, e.g. a ``ScriptBook``) for
        the offline ``scripted`` model, copied into this registry's ``scripts``, and the
        deterministic ``checks`` its ``run_check`` activity runs."""
        self._agents: dict[str, Agent] = {}
        self._checks: dict[str, Check] = {}
        self._scripts: ScriptBook | None = None
        for agent in agents:
            self.register(agent)
        for check in checks:
            self.register_check(check)
        if scripts:
            self.scripts.update(scripts)

    def register(self, agent: Agent, *, replace: bool = False) -> Agent:
        if agent.name in self._agents and not replace and self._agents[agent.name] is not agent:
            raise ValueError(f"two agents are named {agent.name!r}")
        self._agents[agent.name] = agent
        return agent

    def register_check(self, check: Check, *, replace: bool = False) -> Check:
        current = self._checks.get(check.name)
        if current is not None and current is not check and not replace:
            raise ValueError(
                f"two checks are named {check.name!r}: {_where(current)} and {_where(check)}"
            )
        self._checks[check.name] = check
        return check

    @property
    def checks(self) -> Mapping[str, Check]:
        """The deterministic checks served, by name (read-only: add with ``register_check``)."""
        return MappingProxyType(self._checks)

    def get_check(self, name: str) -> Check:
        try:
            return self._checks[name]
        except KeyError:
            raise UnknownCheckError(name, self._checks) from None

    @property
    def scripts(self) -> ScriptBook:
        """Scripts for the offline ``scripted`` model, by agent name: those given to the
        constructor, those declared in discovered modules, and any added to it since."""
        if self._scripts is None:
            # Imported on first use: agent definitions and discovery work without the kit.
            from durable_agents.testing import ScriptBook

            self._scripts = ScriptBook()
        return self._scripts

    def get(self, name: str) -> Agent:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgentError(name, self._agents) from None

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def all(self) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda a: (a.order, a.name))

    def copy(self) -> AgentRegistry:
        """The same agents and checks and a copy of the scripts, to add to without changing
        this one."""
        return AgentRegistry(self._agents.values(), self._scripts, self._checks.values())

    def discover(self, module_names: Iterable[str]) -> None:
        for module_name in module_names:
            module = importlib.import_module(module_name)
            for value in vars(module).values():
                if isinstance(value, Agent):
                    self.register(value)
                elif isinstance(value, Check):
                    self.register_check(value)
                elif _is_script_book(value):
                    self.scripts.update(value)


def _where(check: Check) -> str:
    function = check.function
    module = getattr(function, "__module__", "?")
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


def _is_script_book(value: object) -> TypeGuard[ScriptBook]:
    # A module can only hold a ScriptBook once the testing kit is imported, so discovery never
    # needs to import it itself.
    kit = sys.modules.get("durable_agents.testing._book")
    return kit is not None and isinstance(value, kit.ScriptBook)


def extra_agent_modules() -> list[str]:
    """Module names in ``DURABLE_AGENTS_MODULES`` (comma-separated)."""
    raw = os.environ.get("DURABLE_AGENTS_MODULES", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


@cache
def default_registry(modules: tuple[str, ...] = ()) -> AgentRegistry:
    """The agents this process serves, with their scripts: those in ``modules`` (the
    application's own; this repository's worker and starter pass ``examples.AGENT_MODULES``) plus
    ``DURABLE_AGENTS_MODULES``. Shared and cached: ``copy()`` it before adding to it."""
    registry = AgentRegistry()
    registry.discover([*modules, *extra_agent_modules()])
    return registry
