"""The testing kit: scripts attached to agents from outside, found by discovery, used by the
scripted model and by model resolution."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types

import pytest
from temporalio.exceptions import ApplicationError

from activities.agent_catalog import resolve_model
from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import Agent, AgentRegistry
from durable_agents.contracts.messages import UserMessage
from durable_agents.contracts.model import ModelRequest
from durable_agents.testing import ScriptBook, ScriptedReply, ScriptView, sequence

plain = Agent(name="plain", description="d", system_prompt="s")
hello = sequence(ScriptedReply(text="hello"))


def test_agents_carry_no_script() -> None:
    assert "script" not in {f.name for f in dataclasses.fields(Agent)}


def test_book_attaches_by_name_or_agent_and_refuses_a_second_script() -> None:
    book = ScriptBook({"a": hello})
    book.add(plain, hello)

    @book.for_agent("b")
    def b_script(view: ScriptView) -> ScriptedReply:
        return ScriptedReply(text=view.task)

    assert sorted(book) == ["a", "b", "plain"]
    assert "plain" in book and "other" not in book
    assert book.get("b") is b_script and book.get("other") is None
    book.add("a", hello)  # the same script again is fine
    with pytest.raises(ValueError, match="two scripts"):
        book.add("a", b_script)
    book.add("a", b_script, replace=True)
    with pytest.raises(ValueError, match="two scripts"):
        book.update({"new": hello, "b": hello})
    assert "new" not in book, "a conflicting update adds nothing"
    copy = book.copy()
    copy.add("c", hello)
    assert "c" not in book


def test_discovery_brings_the_scripts_declared_next_to_the_agents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = AgentRegistry()
    registry.discover(["examples.finops.agent", "examples.soak"])
    assert {"finops", "soak"} <= set(registry.scripts)

    module = types.ModuleType("kit_clash")
    module.SCRIPTS = ScriptBook({"finops": hello})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kit_clash", module)
    with pytest.raises(ValueError, match="two scripts"):
        registry.discover(["kit_clash"])


def test_registries_copy_their_scripts() -> None:
    book = ScriptBook({"plain": hello})
    registry = AgentRegistry([plain], scripts=book)
    registry.copy().scripts.add("other", hello)
    registry.scripts.add("more", hello)
    assert set(registry.scripts) == {"plain", "more"}
    assert set(book) == {"plain"}


def test_resolve_model_asks_the_book() -> None:
    assert resolve_model(plain, None, ["scripted"], None, ScriptBook({"plain": hello})) == (
        "scripted"
    )
    with pytest.raises(ApplicationError) as no_model:
        resolve_model(plain, None, ["scripted"], None, ScriptBook())
    assert no_model.value.type == "NoModelAvailable"
    with pytest.raises(ApplicationError) as no_script:
        resolve_model(plain, "scripted", ["scripted"], None, ScriptBook())
    assert no_script.value.type == "NoScript"


async def test_scripted_provider_plays_the_book() -> None:
    request = ModelRequest(
        agent="plain",
        model="scripted",
        system="s",
        messages=[UserMessage(text="task")],
        idempotency_key="k",
        step=1,
    )
    response = await ScriptedProvider(ScriptBook({"plain": hello})).complete(request, "")
    assert response.text == "hello"
    with pytest.raises(ApplicationError) as err:
        await ScriptedProvider(ScriptBook()).complete(request, "")
    assert err.value.type == "NoScript"


def test_agent_definitions_do_not_load_the_testing_kit() -> None:
    code = (
        "import sys, durable_agents.agents as a\n"
        "r = a.AgentRegistry([a.Agent(name='x', description='d', system_prompt='s')])\n"
        "assert 'durable_agents.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
