"""The effects ledger against real stores: a SQLite file and a real PostgreSQL server.

Every behaviour test runs on both backends. Executions are counted by the effect itself (a
counter, or lines appended to a file when the effect runs in other processes), never by asking
the ledger, and several ledger instances on one store stand for several workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.tools import ToolActivities
from durable_agents import effects
from durable_agents.agents import AgentRegistry
from durable_agents.contracts.tools import ToolRequest
from durable_agents.effects import (
    DEFAULT_LEASE,
    EffectInProgress,
    EffectLedger,
    EffectLedgerError,
    LedgerOutcome,
    PostgresEffectLedger,
    SqliteEffectLedger,
)
from tests.agents_for_tests import TRANSFERS
from tests.postgres import postgres_dsn  # noqa: F401  (the fixture, found by pytest by name)

RETRY_DEADLINE_S = 30.0
"""How long a test keeps retrying ``EffectInProgress`` before it gives up."""


@dataclass(frozen=True)
class Store:
    """Where a ledger lives; picklable, so child processes can open the same one."""

    backend: Literal["sqlite", "postgres"]
    location: str
    """The SQLite file, or the PostgreSQL DSN."""

    def ledger(self, lease: timedelta = DEFAULT_LEASE) -> EffectLedger:
        if self.backend == "sqlite":
            return SqliteEffectLedger(self.location, lease=lease)
        return PostgresEffectLedger(self.location, lease=lease)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store("sqlite", str(tmp_path / "effects.db"))
    # Looked up only for this parameter, so SQLite tests never start PostgreSQL.
    return Store("postgres", request.getfixturevalue("postgres_dsn"))


@pytest.fixture
def key() -> str:
    """A fresh idempotency key: the PostgreSQL database is shared by the whole session."""
    return f"run-{uuid.uuid4()}/tool/0/call_0"


class CountingEffect:
    """An effect that counts its executions, optionally slow or failing."""

    def __init__(self, result: str = "sent", *, delay: float = 0.0, fail: bool = False) -> None:
        self.result, self.delay, self.fail = result, delay, fail
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("mail server refused the message")
        return self.result


async def until_done(
    ledger: EffectLedger, key: str, effect: Callable[[], Awaitable[str]]
) -> tuple[LedgerOutcome, int]:
    """``run_once``, retried on ``EffectInProgress`` as Temporal would; (outcome, retries)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_DEADLINE_S
    retries = 0
    while True:
        try:
            return await ledger.run_once(key, effect), retries
        except EffectInProgress:
            if loop.time() > deadline:
                raise
            retries += 1
            await asyncio.sleep(0.05)


# --- the basic contract --------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    """Proves the package exports exactly the documented names."""
    assert effects.__all__ == [
        "DEFAULT_LEASE",
        "EffectInProgress",
        "EffectLedger",
        "EffectLedgerError",
        "EffectState",
        "EffectTransaction",
        "LedgerOutcome",
        "PostgresEffectLedger",
        "SqliteEffectLedger",
        "SqliteEffectTransaction",
        "ledger_from_env",
    ]


async def test_first_run_executes_and_records(store: Store, key: str) -> None:
    """Proves a key seen for the first time runs the effect once and records its result."""
    ledger = store.ledger()
    effect = CountingEffect("message 1 sent")

    outcome = await ledger.run_once(key, effect)

    assert outcome == LedgerOutcome(key, "message 1 sent", replayed=False)
    assert effect.calls == 1
    assert await ledger.recorded(key) == "message 1 sent"


async def test_same_key_returns_recorded_result_without_executing(store: Store, key: str) -> None:
    """Proves a retry with the same key, on this worker or another, gets the recorded result
    back and does not run its effect."""
    first, retry = CountingEffect("message 1 sent"), CountingEffect("message 2 sent")
    await store.ledger().run_once(key, first)

    same_worker = await store.ledger().run_once(key, retry)
    other_worker = await store.ledger().run_once(key, retry)

    assert same_worker == other_worker == LedgerOutcome(key, "message 1 sent", replayed=True)
    assert (first.calls, retry.calls) == (1, 0)


async def test_different_keys_each_execute(store: Store, key: str) -> None:
    """Proves the ledger deduplicates per key only: two calls with two keys both act."""
    ledger, effect = store.ledger(), CountingEffect()

    one = await ledger.run_once(f"{key}-a", effect)
    two = await ledger.run_once(f"{key}-b", effect)

    assert effect.calls == 2
    assert not one.replayed and not two.replayed


async def test_failed_effect_leaves_no_record_and_retry_executes(store: Store, key: str) -> None:
    """Proves an effect that raises releases its claim: nothing is recorded, the error reaches
    the caller, and the next attempt runs the effect at once (no lease to wait out)."""
    ledger = store.ledger()
    failing, working = CountingEffect(fail=True), CountingEffect("sent on retry")

    with pytest.raises(ConnectionError, match="refused"):
        await ledger.run_once(key, failing)
    assert await ledger.recorded(key) is None

    outcome = await ledger.run_once(key, working)

    assert outcome == LedgerOutcome(key, "sent on retry", replayed=False)
    assert (failing.calls, working.calls) == (1, 1)


# --- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_attempts_execute_once(store: Store, key: str) -> None:
    """Proves 20 simultaneous attempts at one key run the effect exactly once: the others get
    the recorded result or EffectInProgress, and after retrying all see the same result."""
    effect = CountingEffect("cluster stopped", delay=0.3)
    ledgers = [store.ledger() for _ in range(20)]  # one per "worker"

    first_round = await asyncio.gather(
        *(ledger.run_once(key, effect) for ledger in ledgers), return_exceptions=True
    )

    assert effect.calls == 1
    for answer in first_round:
        assert isinstance(answer, LedgerOutcome | EffectInProgress), answer
    assert sum(isinstance(a, LedgerOutcome) and not a.replayed for a in first_round) == 1
    assert any(isinstance(a, EffectInProgress) for a in first_round)

    retried = await asyncio.gather(
        *(
            until_done(ledger, key, effect)
            for ledger, answer in zip(ledgers, first_round, strict=True)
            if isinstance(answer, EffectInProgress)
        )
    )
    outcomes = [a for a in first_round if isinstance(a, LedgerOutcome)]
    outcomes += [outcome for outcome, _ in retried]

    assert len(outcomes) == 20
    assert {outcome.result for outcome in outcomes} == {"cluster stopped"}
    assert effect.calls == 1


def _attempt_in_process(
    store: Store, key: str, executions: str, answers: str, barrier: Barrier, attempts: int
) -> None:
    """A worker process: once all are ready, ``attempts`` concurrent tries at ``key``; writes
    one ``result<TAB>replayed`` line per attempt to ``answers``."""

    async def effect() -> str:
        with open(executions, "a") as log:  # O_APPEND: one whole line per execution
            log.write(f"{os.getpid()}\n")
        await asyncio.sleep(0.5)
        return "message sent once"

    async def main() -> list[LedgerOutcome]:
        ledgers = [store.ledger() for _ in range(attempts)]
        done = await asyncio.gather(*(until_done(ledger, key, effect) for ledger in ledgers))
        return [outcome for outcome, _ in done]

    barrier.wait(timeout=60)
    outcomes = asyncio.run(main())
    Path(answers).write_text("".join(f"{o.result}\t{o.replayed}\n" for o in outcomes))


def test_concurrent_attempts_in_separate_processes_execute_once(
    store: Store, key: str, tmp_path: Path
) -> None:
    """Proves 4 worker processes, 5 attempts each, all released at once, run the effect exactly
    once between them, and every attempt ends with the same result."""
    executions = tmp_path / "executions.log"
    executions.touch()
    context = multiprocessing.get_context("spawn")  # fresh interpreters, like real workers
    barrier = context.Barrier(4)
    workers = [
        context.Process(
            target=_attempt_in_process,
            args=(store, key, str(executions), str(tmp_path / f"answers-{n}"), barrier, 5),
        )
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    answers = [
        line.split("\t")
        for n in range(4)
        for line in (tmp_path / f"answers-{n}").read_text().splitlines()
    ]
    assert len(executions.read_text().splitlines()) == 1
    assert len(answers) == 20
    assert {result for result, _ in answers} == {"message sent once"}
    assert [replayed for _, replayed in answers].count("False") == 1


def _claim_then_crash(store: Store, key: str) -> None:
    """A worker that claims ``key`` and dies inside the effect, before anything is recorded."""

    async def effect() -> str:
        os._exit(17)  # no cleanup, no exception handling: a killed worker

    asyncio.run(store.ledger().run_once(key, effect))


async def test_abandoned_claim_is_run_again_after_the_lease(store: Store, key: str) -> None:
    """Proves a claim left by a worker that crashed between claim and record blocks retries
    while it is younger than the lease (EffectInProgress), and is taken over and the effect
    run again once it is older: at-least-once, as the module docstring says."""
    crashed = multiprocessing.get_context("spawn").Process(
        target=_claim_then_crash, args=(store, key)
    )
    crashed.start()
    await asyncio.to_thread(crashed.join, 60)
    assert crashed.exitcode == 17

    effect = CountingEffect("sent after takeover")
    with pytest.raises(EffectInProgress) as in_progress:
        await store.ledger().run_once(key, effect)  # 5-minute lease: the claim looks alive
    assert in_progress.value.key == key
    assert effect.calls == 0 and await store.ledger().recorded(key) is None

    lease = timedelta(milliseconds=300)
    await asyncio.sleep(lease.total_seconds())  # the claim was made before the crash
    outcome = await store.ledger(lease=lease).run_once(key, effect)

    assert outcome == LedgerOutcome(key, "sent after takeover", replayed=False)
    assert effect.calls == 1
    assert await store.ledger().run_once(key, effect) == LedgerOutcome(
        key, "sent after takeover", replayed=True
    )


async def test_effect_slower_than_its_lease_runs_twice_but_all_agree(
    store: Store, key: str
) -> None:
    """Proves the documented cost of a lease shorter than the effect: a live attempt is taken
    over and the effect runs twice, but the first result recorded is the one every caller,
    the overtaken attempt included, gets back."""
    lease = timedelta(milliseconds=200)
    slow, fast = CountingEffect("slow attempt", delay=0.6), CountingEffect("second attempt")

    overtaken = asyncio.create_task(store.ledger(lease=lease).run_once(key, slow))
    await asyncio.sleep(0.4)  # the slow attempt's claim is now older than its lease
    second = await store.ledger(lease=lease).run_once(key, fast)

    assert second == LedgerOutcome(key, "second attempt", replayed=False)
    assert await overtaken == LedgerOutcome(key, "second attempt", replayed=True)
    assert (slow.calls, fast.calls) == (1, 1)


# --- PostgreSQL: effect and ledger row in one transaction ----------------------------------------


@pytest.fixture
async def pg(request: pytest.FixtureRequest) -> tuple[PostgresEffectLedger, str]:
    """A PostgreSQL ledger and its DSN, with a ``shipments`` table standing for the effect."""
    dsn: str = request.getfixturevalue("postgres_dsn")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS shipments (
                   id serial PRIMARY KEY, idempotency_key text NOT NULL, item text NOT NULL)"""
        )
    return PostgresEffectLedger(dsn), dsn


async def ship(ledger: PostgresEffectLedger, key: str, item: str) -> str:
    """A tool whose effect is a row in the ledger's own database."""
    async with ledger.transaction(key) as tx:
        if tx.previous is not None:
            return tx.previous
        cursor = await tx.connection.execute(
            "INSERT INTO shipments (idempotency_key, item) VALUES (%s, %s) RETURNING id",
            (key, item),
        )
        row = await cursor.fetchone()
        assert row is not None
        result = f"shipment {row[0]} of {item}"
        tx.record(result)
        return result


async def shipments(dsn: str, key: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM shipments WHERE idempotency_key = %s", (key,)
        )
        row = await cursor.fetchone()
        assert row is not None
        count: int = row[0]
        return count


async def test_transaction_commits_effect_and_record_together(
    pg: tuple[PostgresEffectLedger, str], key: str
) -> None:
    """Proves the same-transaction path commits the effect row and the ledger row together,
    and a repeat (by transaction or by run_once) sees the record and adds no second effect."""
    ledger, dsn = pg

    result = await ship(ledger, key, "GPU quota")

    assert await shipments(dsn, key) == 1
    assert await ledger.recorded(key) == result
    assert await ship(ledger, key, "GPU quota") == result
    assert await ledger.run_once(key, CountingEffect()) == LedgerOutcome(key, result, True)
    assert await shipments(dsn, key) == 1


async def test_crash_inside_transaction_leaves_neither(
    pg: tuple[PostgresEffectLedger, str], key: str
) -> None:
    """Proves an exception after the effect was written and recorded, but before commit, rolls
    back both, so the retry starts clean and acts exactly once."""
    ledger, dsn = pg

    with pytest.raises(RuntimeError, match="worker died"):
        async with ledger.transaction(key) as tx:
            await tx.connection.execute(
                "INSERT INTO shipments (idempotency_key, item) VALUES (%s, 'GPU quota')", (key,)
            )
            tx.record("shipment of GPU quota")
            raise RuntimeError("worker died before commit")

    assert await shipments(dsn, key) == 0
    assert await ledger.recorded(key) is None
    await ship(ledger, key, "GPU quota")
    assert await shipments(dsn, key) == 1


async def test_concurrent_transactions_on_one_key_act_once(
    pg: tuple[PostgresEffectLedger, str], key: str
) -> None:
    """Proves two simultaneous transactions on one key serialize on it: the second waits for
    the first to commit, then sees its result as ``previous``."""
    ledger, dsn = pg

    results = await asyncio.gather(*(ship(ledger, key, "GPU quota") for _ in range(2)))

    assert results[0] == results[1]
    assert await shipments(dsn, key) == 1


async def test_transaction_without_record_rolls_back(
    pg: tuple[PostgresEffectLedger, str], key: str
) -> None:
    """Proves a block that writes an effect but forgets ``tx.record`` commits nothing."""
    ledger, dsn = pg

    with pytest.raises(EffectLedgerError, match=r"without tx\.record"):
        async with ledger.transaction(key) as tx:
            await tx.connection.execute(
                "INSERT INTO shipments (idempotency_key, item) VALUES (%s, 'GPU quota')", (key,)
            )

    assert await shipments(dsn, key) == 0
    assert await ledger.recorded(key) is None


# --- the same-transaction path in SQLite -----------------------------------------------------


def sqlite_ship(ledger: SqliteEffectLedger, key: str, item: str, *, crash: bool = False) -> str:
    """An effect in the ledger's own SQLite file, recorded in the same transaction."""
    with closing(sqlite3.connect(ledger.path, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS shipments (id INTEGER PRIMARY KEY, item TEXT)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tx = ledger.join(conn, key)
            if tx.previous is not None:
                conn.execute("COMMIT")
                return tx.previous
            cursor = conn.execute("INSERT INTO shipments (item) VALUES (?)", (item,))
            result = f"shipment {cursor.lastrowid} of {item}"
            tx.record(result)
            if crash:
                raise RuntimeError("worker died before commit")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result


def sqlite_shipments(ledger: SqliteEffectLedger) -> int:
    with closing(sqlite3.connect(ledger.path)) as conn:
        count: int = conn.execute("SELECT count(*) FROM shipments").fetchone()[0]
        return count


async def test_sqlite_join_commits_effect_and_record_together(tmp_path: Path, key: str) -> None:
    """Proves ``join`` records the key inside the caller's transaction: a crash before commit
    leaves neither effect nor record, the retry acts once, and every later attempt (by join or
    by run_once) gets the recorded result."""
    ledger = SqliteEffectLedger(tmp_path / "shop.db")

    with pytest.raises(RuntimeError, match="worker died"):
        sqlite_ship(ledger, key, "GPU quota", crash=True)
    assert sqlite_shipments(ledger) == 0
    assert await ledger.recorded(key) is None

    result = sqlite_ship(ledger, key, "GPU quota")
    assert sqlite_ship(ledger, key, "GPU quota") == result
    assert await ledger.run_once(key, CountingEffect()) == LedgerOutcome(key, result, True)
    assert sqlite_shipments(ledger) == 1


def test_sqlite_join_refuses_misuse(tmp_path: Path, key: str) -> None:
    """Proves ``join`` refuses a connection with no open transaction (the record would commit
    on its own) and a connection to another database file (it would not commit with it)."""
    ledger = SqliteEffectLedger(tmp_path / "shop.db")
    with closing(sqlite3.connect(ledger.path, isolation_level=None)) as conn:
        with pytest.raises(EffectLedgerError, match="open write transaction"):
            ledger.join(conn, key)
    with closing(sqlite3.connect(tmp_path / "other.db", isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(EffectLedgerError, match="not connected to this ledger's file"):
            ledger.join(conn, key)


async def test_sqlite_join_waits_out_a_live_run_once_claim(tmp_path: Path, key: str) -> None:
    """Proves a live ``run_once`` claim on the key makes ``join`` raise EffectInProgress rather
    than act alongside it."""
    ledger = SqliteEffectLedger(tmp_path / "shop.db")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    running = asyncio.create_task(ledger.run_once(key, slow))
    await started.wait()
    with pytest.raises(EffectInProgress):
        sqlite_ship(ledger, key, "GPU quota")
    release.set()
    await running


# --- the ledger inside run_tool -----------------------------------------------------------------


async def test_run_tool_runs_a_side_effect_tool_once_per_key(
    tmp_path: Path, registry: AgentRegistry
) -> None:
    """Proves ``run_tool`` wraps a side-effect tool that does not enforce its key (the test
    ``transfer``) in the ledger: a second activity attempt with the same idempotency key (a
    retry after a crash) returns the first result and moves no money; a new key acts."""
    TRANSFERS.clear()
    activities = ToolActivities(registry, SqliteEffectLedger(tmp_path / "effects.db"))
    env = ActivityEnvironment()

    def request(key: str) -> ToolRequest:
        return ToolRequest(
            agent="test-gatekeeper",
            call_id="call_0",
            name="transfer",
            arguments='{"amount": 10, "to": "acct-1"}',
            idempotency_key=key,
            step=1,
        )

    first = await env.run(activities.run_tool, request("wf/run/tool/1/call_0"))
    retry = await env.run(activities.run_tool, request("wf/run/tool/1/call_0"))
    other = await env.run(activities.run_tool, request("wf/run/tool/2/call_0"))

    assert first.content == retry.content == other.content == "sent 10 to acct-1"
    assert [entry[0] for entry in TRANSFERS] == ["wf/run/tool/1/call_0", "wf/run/tool/2/call_0"]
