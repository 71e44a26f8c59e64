"""``ScriptBook``: which script the offline ``scripted`` model plays for which agent."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, TypeVar

from durable_agents.testing.scripting import Script, ScriptedReply, ScriptView

S = TypeVar("S", bound=Callable[[ScriptView], ScriptedReply])


class Named(Protocol):
    """Anything with a ``name``, such as an ``Agent``."""

    @property
    def name(self) -> str: ...


def _name(agent: str | Named) -> str:
    return agent if isinstance(agent, str) else agent.name


class ScriptBook(Mapping[str, Script]):
    """Scripts by agent name, kept apart from the agents they drive.

    A ``ScriptBook`` at the top level of a module that discovery loads (``AgentRegistry.discover``:
    the application's agent modules and ``DURABLE_AGENTS_MODULES``) is merged into the registry's
    book, as the module's ``Agent`` values are registered. A test builds its own and passes it to
    ``AgentRegistry(agents, scripts=book)`` or straight to ``ScriptedProvider(book)``::

        SCRIPTS = ScriptBook({"weather": sequence(ScriptedReply(text="Sunny."))})
        SCRIPTS.add(finops, finops_script)  # an agent or its name

        @SCRIPTS.for_agent("soak")
        def soak_script(view: ScriptView) -> ScriptedReply: ...

    An agent has at most one script: adding a different one for the same name raises
    ``ValueError`` unless ``replace=True``.
    """

    def __init__(self, scripts: Mapping[str, Script] | None = None) -> None:
        self._scripts: dict[str, Script] = {}
        if scripts is not None:
            self.update(scripts)

    def add(self, agent: str | Named, script: Script, *, replace: bool = False) -> Script:
        """Attach ``script`` to ``agent`` (an ``Agent`` or an agent name); returns the script."""
        name = _name(agent)
        current = self._scripts.get(name)
        if current is not None and current is not script and not replace:
            raise ValueError(f"two scripts for agent {name!r}")
        self._scripts[name] = script
        return script

    def for_agent(self, agent: str | Named) -> Callable[[S], S]:
        """Decorator form of ``add``: the decorated function is ``agent``'s script."""

        def attach(script: S) -> S:
            self.add(agent, script)
            return script

        return attach

    def update(self, scripts: Mapping[str, Script]) -> None:
        """Add every script of ``scripts``; nothing is added if one conflicts."""
        clashes = sorted(
            name
            for name, script in scripts.items()
            if name in self._scripts and self._scripts[name] is not script
        )
        if clashes:
            raise ValueError(f"two scripts for agents {clashes!r}")
        self._scripts.update(scripts)

    def copy(self) -> ScriptBook:
        return ScriptBook(self)

    def __getitem__(self, name: str) -> Script:
        return self._scripts[name]

    def __contains__(self, name: object) -> bool:
        return name in self._scripts

    def __iter__(self) -> Iterator[str]:
        return iter(self._scripts)

    def __len__(self) -> int:
        return len(self._scripts)

    def __repr__(self) -> str:
        return f"ScriptBook({sorted(self._scripts)!r})"
