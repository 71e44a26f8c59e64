"""The price table: data with an as-of date, overridable from a file, recorded with each run;
an unknown model's cost is reported as unknown, never as $0."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.agent_catalog import DEFAULT_MODEL_NAMES, AgentCatalogActivities
from activities.providers.anthropic_provider import AnthropicProvider
from activities.providers.base import ModelProvider
from activities.providers.openai_provider import OpenAIProvider
from activities.providers.pricing import (
    BUILTIN_SOURCE,
    PRICES_ENV,
    PriceTableError,
    cost_usd,
    price_for,
    price_table,
    run_price,
)
from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.contracts.agent_io import LoadedAgent
from durable_agents.contracts.messages import Usage, UserMessage
from durable_agents.contracts.model import ModelRequest
from durable_agents.contracts.pricing import ModelPrice
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, Reply


@pytest.fixture(autouse=True)
def fresh_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads the table anew, from the built-in file unless it sets an override; the
    next test (and the rest of the session) gets the built-in table again."""
    monkeypatch.delenv(PRICES_ENV, raising=False)
    price_table.cache_clear()
    yield
    price_table.cache_clear()


def write_prices(path: Path, content: dict[str, Any] | str) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def request(agent: str = "tester", model: str = "scripted") -> ModelRequest:
    return ModelRequest(
        agent=agent,
        model=model,
        system="You are terse.",
        messages=[UserMessage(text="Hello")],
        max_tokens=256,
        idempotency_key="run-1:step-1",
        step=1,
    )


# -- the built-in table ---------------------------------------------------------------------------


def test_builtin_table_covers_both_vendors_with_an_as_of_date() -> None:
    """The shipped table prices current Anthropic and OpenAI models, the defaults a run falls back
    to and the offline model, each entry dated and marked as built in."""
    table = price_table()
    assert {
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
        "gpt-5",
        "gpt-5-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
        "scripted",
    } <= set(table)
    for name in DEFAULT_MODEL_NAMES.values():
        assert name in table
    for name, price in table.items():
        assert price.model == name and price.source == BUILTIN_SOURCE
        date.fromisoformat(price.as_of)
        assert price.input > 0 and price.output >= price.input
        assert price.cache_read <= price.input <= price.cache_write


def test_scripted_model_has_a_nominal_price() -> None:
    """The offline model is priced (at claude-haiku-4-5's rates), so budgets work offline."""
    scripted, haiku = price_for("scripted"), price_for("claude-haiku-4-5")
    assert scripted is not None and haiku is not None
    assert scripted.model_dump(exclude={"model"}) == haiku.model_dump(exclude={"model"})
    assert run_price("scripted") == scripted


def test_snapshots_take_their_family_price_and_the_longest_entry_wins() -> None:
    """Dated snapshots and ``-latest`` aliases are priced as their entry; the longest entry wins,
    so ``gpt-4o-mini-...`` is not priced as ``gpt-4o``."""
    sonnet = price_for("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.model == "claude-sonnet-4-5"
    assert price_for("claude-3-5-haiku-latest") == price_for("claude-3-5-haiku")
    mini = price_for("gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.model == "gpt-4o-mini"
    assert price_for("gpt-4.1-2025-04-14") == price_for("gpt-4.1")
    assert run_price("openai:gpt-4.1-mini") == price_for("gpt-4.1-mini")


def test_a_newer_model_named_like_an_older_one_is_unknown() -> None:
    """Only snapshot suffixes extend an entry: a model missing from the table is not priced as
    its elder (``gpt-5.9`` is not ``gpt-5``, ``claude-sonnet-4-9`` not ``claude-sonnet-4``)."""
    assert price_for("gpt-5.9") is None
    assert price_for("gpt-5-turbo-ultra") is None
    assert price_for("claude-sonnet-4-9") is None
    assert price_for("llama3.2") is None
    assert cost_usd("llama3.2", Usage(input_tokens=10**6)) is None
    assert run_price("compatible:llama3.2") is None


def test_cost_prices_every_kind_of_token() -> None:
    """Input, output, cache reads and cache writes are each charged at their own price."""
    usage = Usage(
        input_tokens=1000, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=500
    )
    expected = (1000 * 1 + 200 * 5 + 3000 * 0.10 + 500 * 1.25) / 1_000_000
    assert cost_usd("claude-haiku-4-5-20251001", usage) == pytest.approx(expected)


# -- the override file ----------------------------------------------------------------------------


def test_override_file_changes_a_price_and_adds_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DURABLE_AGENTS_PRICES`` entries replace built-in ones and add new ones, carry the file's
    as-of date and name the file as their source; the other entries stay built in."""
    path = write_prices(
        tmp_path / "prices.json",
        {
            "as_of": "2027-01-15",
            "models": {
                "gpt-4.1": {"input": 1.0, "output": 4.0, "cache_write": 1.0, "cache_read": 0.25},
                "llama3.2": {
                    "input": 0.01,
                    "output": 0.02,
                    "cache_write": 0.01,
                    "cache_read": 0.0,
                    "as_of": "2027-01-10",
                    "note": "our GPU cost, amortised",
                },
            },
        },
    )
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert price_for("gpt-4.1-2025-04-14") == ModelPrice(
        model="gpt-4.1",
        input=1.0,
        output=4.0,
        cache_write=1.0,
        cache_read=0.25,
        as_of="2027-01-15",
        source=str(path),
    )
    local = price_for("llama3.2")
    assert local is not None and (local.input, local.as_of) == (0.01, "2027-01-10")
    assert run_price("compatible:llama3.2") == local
    mini = price_for("gpt-4.1-mini")
    assert mini is not None and mini.source == BUILTIN_SOURCE and mini.input == 0.40


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "Invalid JSON"),
        ({"models": {}}, "as_of: Field required"),
        ({"as_of": "last tuesday", "models": {}}, "as_of: Value error, 'last tuesday' is not"),
        (
            {"as_of": "2027-01-15", "models": {"m": {"input": 1, "output": 2, "cache_read": 0}}},
            "models.m.cache_write: Field required",
        ),
        (
            {
                "as_of": "2027-01-15",
                "models": {"m": {"input": -1, "output": 2, "cache_read": 0, "cache_write": 1}},
            },
            "models.m.input: Input should be greater than or equal to 0",
        ),
        (
            {
                "as_of": "2027-01-15",
                "models": {
                    "m": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 1, "cached": 0}
                },
            },
            "models.m.cached: Extra inputs are not permitted",
        ),
        (
            {"as_of": "2027-01-15", "currency": "EUR per million tokens", "models": {}},
            "currency",
        ),
    ],
    ids=["syntax", "no-as-of", "bad-date", "missing-price", "negative", "typo", "currency"],
)
def test_malformed_override_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: dict[str, Any] | str, problem: str
) -> None:
    """A bad override file fails with an error naming the file and what is wrong in it."""
    path = write_prices(tmp_path / "prices.json", content)
    monkeypatch.setenv(PRICES_ENV, str(path))
    with pytest.raises(PriceTableError) as raised:
        price_table()
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


def test_malformed_override_stops_the_worker_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: AgentRegistry
) -> None:
    """The catalog reads the table when the worker is built, so a bad file (or a missing one)
    stops the worker there, not in the middle of a run."""
    monkeypatch.setenv(PRICES_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(PriceTableError, match=r"missing\.json.*cannot read it"):
        AgentCatalogActivities(registry, ["scripted"])
    monkeypatch.setenv(PRICES_ENV, str(write_prices(tmp_path / "bad.json", "[]")))
    price_table.cache_clear()
    with pytest.raises(PriceTableError, match=r"bad\.json"):
        AgentCatalogActivities(registry, ["scripted"])


# -- providers ------------------------------------------------------------------------------------


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def hosted_provider(api: str, server: FakeLLMServer) -> ModelProvider:
    if api == "anthropic":
        return AnthropicProvider(
            anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
        )
    return OpenAIProvider(
        openai.AsyncOpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0)
    )


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_unknown_model_response_is_flagged_unpriced(
    api: str, llm_server: FakeLLMServer
) -> None:
    """A model the table does not know answers with ``priced=False`` (cost unknown, not free);
    a known one with ``priced=True`` and its cost."""
    provider = hosted_provider(api, llm_server)
    llm_server.enqueue(Reply(model="brand-new-model-9", input_tokens=1000, output_tokens=100))
    unknown = await provider.complete(request(model=f"{api}:x"), "brand-new-model-9")
    assert (unknown.priced, unknown.cost_usd) == (False, 0.0)

    known_model = "claude-haiku-4-5" if api == "anthropic" else "gpt-4.1-mini"
    llm_server.enqueue(Reply(model=known_model, input_tokens=1000, output_tokens=100))
    known = await provider.complete(request(model=f"{api}:x"), known_model)
    assert known.priced and known.cost_usd == pytest.approx(cost_usd(known_model, known.usage))


async def test_scripted_model_reports_a_nominal_cost(registry: AgentRegistry) -> None:
    """Offline answers are priced at the ``scripted`` entry, so a run's cost is not $0."""
    response = await ScriptedProvider(registry.scripts).complete(request("test-adder"), "")
    assert response.priced and response.cost_usd > 0
    assert response.cost_usd == pytest.approx(cost_usd("scripted", response.usage))


# -- the price recorded with a run ----------------------------------------------------------------


async def test_run_records_its_price_in_history(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``load_agent``'s result in the run's history carries the price of the run's model with
    its as-of date, and the run's cost is its usage at that price."""
    async with running_worker(client, task_queue, registry):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task="add"),
            id=f"test-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        result = await handle.result()
    # load_agent is a local activity: its result is in the run's first marker.
    [marker] = [
        e.marker_recorded_event_attributes
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and b'"activity_type":"load_agent"'
        in e.marker_recorded_event_attributes.details["data"].payloads[0].data
    ]
    result_payloads = marker.details["result"].payloads
    [loaded] = await client.data_converter.decode(result_payloads, [LoadedAgent])
    assert isinstance(loaded, LoadedAgent)
    assert loaded.price is not None
    assert loaded.price.model == "scripted" and loaded.price.source == BUILTIN_SOURCE
    date.fromisoformat(loaded.price.as_of)
    assert result.cost_usd > 0
    assert result.cost_usd == pytest.approx(loaded.price.cost(result.usage))
