"""The price table: what each hosted model costs, as data, with the date it was checked.

The built-in table is ``prices.json`` next to this module: USD per million tokens for input,
output, cache writes and cache reads, per model, with the table's ``as_of`` date and the pages
it was read from. Prices are the standard tier, below any long-context surcharge threshold.
Anthropic's cache write price is the 5-minute ``ephemeral`` cache. OpenAI caches prompts
automatically and charges nothing extra to write them, so its cache write price is the input
price. The offline ``scripted`` model has a nominal price (claude-haiku-4-5's) so budgets can be
exercised offline; it is not a real bill.

``DURABLE_AGENTS_PRICES=/path/prices.json`` (same format) adds models to the table or replaces
entries of it; its entries name the file as their ``source``. The table is read once per worker
process, when the worker starts (``AgentCatalogActivities``), so a malformed file stops the worker
with an error naming the file instead of failing model calls later.

A model missing from the table has no price: ``price_for`` returns ``None`` and its cost is
unknown (a response says ``priced=False``), never silently $0. ``load_agent`` records the price a
run starts with in the run's history (``LoadedAgent.price``), so replays and audits agree after
the table changes.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from activities.providers.base import split_model
from durable_agents.contracts.messages import Usage
from durable_agents.contracts.pricing import ModelPrice

PRICES_FILE = Path(__file__).with_name("prices.json")
PRICES_ENV = "DURABLE_AGENTS_PRICES"
"""Names a price file whose entries override or extend the built-in table."""
BUILTIN_SOURCE = "builtin"
SCRIPTED_MODEL = "scripted"
"""The table entry of the offline scripted model."""

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)")
"""What may follow a table entry in a model name priced as that entry: a dated snapshot
(``-20250929``, ``-2024-07-18``) or ``-latest``. Anything else (``gpt-5.5`` after ``gpt-5``,
``claude-sonnet-5-5`` after ``claude-sonnet-5``) is a different model, priced only if listed."""


class PriceTableError(ValueError):
    """A price file cannot be used; the message names the file and what is wrong with it."""


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    as_of: str | None = None
    """When this entry was checked, if not the file's ``as_of``."""
    note: str = ""
    """For readers of the file; not used."""

    @field_validator("as_of")
    @classmethod
    def _as_of_is_a_date(cls, value: str | None) -> str | None:
        return _iso_date(value)


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: str
    """The date the prices were checked (``YYYY-MM-DD``)."""
    currency: str = "USD per million tokens"
    sources: list[str] = Field(default_factory=list)
    """Where the prices were read."""
    models: dict[str, _PriceEntry]

    @field_validator("as_of")
    @classmethod
    def _as_of_is_a_date(cls, value: str) -> str:
        _iso_date(value)
        return value

    @field_validator("currency")
    @classmethod
    def _usd_per_million(cls, value: str) -> str:
        if value != "USD per million tokens":
            raise ValueError(f"prices must be in 'USD per million tokens', not {value!r}")
        return value


def _iso_date(value: str | None) -> str | None:
    if value is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"{value!r} is not a YYYY-MM-DD date")
        date.fromisoformat(value)  # a real date: raises on 2026-13-45
    return value


def read_price_file(path: Path, source: str) -> dict[str, ModelPrice]:
    """The entries of one price file, each with its ``as_of`` and ``source``.

    Raises:
        PriceTableError: The file cannot be read or is not a valid price file.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise PriceTableError(f"price file {str(path)!r}: cannot read it ({err})") from None
    try:
        table = _PriceFile.model_validate_json(text)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in err.errors()
        )
        raise PriceTableError(f"price file {str(path)!r}: {problems}") from None
    return {
        name: ModelPrice(
            model=name,
            input=entry.input,
            output=entry.output,
            cache_read=entry.cache_read,
            cache_write=entry.cache_write,
            as_of=entry.as_of or table.as_of,
            source=source,
        )
        for name, entry in table.models.items()
    }


def load_prices(override: Path | None = None) -> dict[str, ModelPrice]:
    """The built-in table, with the entries of ``override`` added or replacing its own."""
    prices = read_price_file(PRICES_FILE, BUILTIN_SOURCE)
    if override is not None:
        prices |= read_price_file(override, str(override))
    return prices


@functools.cache
def price_table() -> Mapping[str, ModelPrice]:
    """This process's price table: built in, overridden by the file ``DURABLE_AGENTS_PRICES``
    names. Read once; ``price_table.cache_clear()`` makes the next call read it again."""
    override = os.environ.get(PRICES_ENV)
    return MappingProxyType(load_prices(Path(override) if override else None))


def price_for(model_name: str, table: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of ``model_name``: its entry, else the longest entry it extends with a snapshot
    suffix (``claude-sonnet-4-5-20250929``, ``gpt-4o-mini-2024-07-18``, ``...-latest``); ``None``
    when the table does not know it.

    Only snapshot suffixes match, so a newer model named like an older one (``gpt-5.5``) is
    unknown rather than priced as its elder.
    """
    table = price_table() if table is None else table
    if model_name in table:
        return table[model_name].model_copy()
    matches = [
        name
        for name in table
        if model_name.startswith(name) and _SNAPSHOT_SUFFIX.fullmatch(model_name[len(name) :])
    ]
    return table[max(matches, key=len)].model_copy() if matches else None


def run_price(model: str) -> ModelPrice | None:
    """The price of a run's ``provider:model`` (``scripted`` for the offline model)."""
    provider, name = split_model(model)
    return price_for(SCRIPTED_MODEL if provider == SCRIPTED_MODEL else name)


def cost_usd(model_name: str, usage: Usage) -> float | None:
    """What ``usage`` cost on ``model_name``, in USD; ``None`` when the model has no price
    (a local model behind an OpenAI-compatible server, a model newer than the table)."""
    price = price_for(model_name)
    return price.cost(usage) if price is not None else None
