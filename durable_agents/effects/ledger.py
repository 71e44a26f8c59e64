"""The effects ledger: a side effect runs once per idempotency key, and a repeat gets its result.

Temporal runs an activity *at least once*: a retry after a timeout, or after a worker that was
presumed dead, runs the tool again. A side-effecting tool wraps its effect in
``ledger.run_once(ctx.idempotency_key, effect)``; the key is the tool call's idempotency key,
stable across retries and worker crashes and unique across runs, so the first attempt runs the
effect and every later attempt gets the recorded result back (``replayed=True``) instead of
acting again.

How a key moves through the ledger (one row per key in the ``effects`` table):

1. **Claim.** Insert the row in state ``started``; the insert fails if the key has a row, so of
   two workers running the same key at once only one claims it. The other finds the row and
   either returns the recorded result, or raises ``EffectInProgress`` (retryable: Temporal tries
   the activity again later) while the claim is younger than the *lease*.
2. **Run** the effect.
3. **Record** its result: the row becomes ``recorded``. If the effect raised, the claim is
   deleted instead (the effect is taken not to have happened) and the error propagates, so a
   retry runs it again.

Honest limits. Between "the effect happened" and "its result is recorded" there is a window: a
worker that crashes there, or loses its database, leaves a ``started`` claim and no result,
and nothing in the ledger can tell whether the effect happened. Once that claim is older than
the lease it is treated as abandoned and the next attempt runs the effect again. How much that
matters depends on where the effect lives. When it is a write to the same database as the
ledger, the window is *closed*: ``PostgresEffectLedger.transaction(key)`` and
``SqliteEffectLedger.join(conn, key)`` commit the effect and its ledger row in one transaction
(``tools.finops`` does this for the flagship's side effects). When the external system accepts
an idempotency key (a payment API's ``Idempotency-Key`` header, a queue's deduplication id),
the window is *narrowed*: pass ``key`` through and that system drops the repeat within its own
retention period. Otherwise a crash in the window means the effect may run again after the
lease: this is at-least-once with a lease, not magic. Three more consequences: the lease must
be longer than the effect can take (set it above the activity's start-to-close timeout),
because a claim still running when its lease expires is presumed dead and run again; an effect
that raises is taken *not* to have happened, so an effect that can fail ambiguously (a timeout after
the request went out) must pass ``key`` to the external system or return a result for that
case instead of raising; and a cancelled effect (any ``BaseException``) keeps its claim, like a
crash, so the lease decides. Claim ages are measured on the database server's clock
(PostgreSQL) or on the clocks of the processes sharing the SQLite file.

Exceptions::

    EffectLedgerError        the ledger could not do what was asked
    └── EffectInProgress     another attempt holds a live claim on the key: retry later

Neither is a ``ToolError``, so the ``run_tool`` activity lets them propagate and Temporal
retries the activity under the workflow's tool retry policy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import psycopg
from psycopg.rows import TupleRow

from durable_agents.runtime.sqlite import enable_wal

logger = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
"""How long a ``started`` claim is trusted to belong to a live attempt before it is taken over."""

DEFAULT_SQLITE_PATH = ".data/effects.db"
"""The SQLite ledger file when neither a path nor ``$EFFECTS_DB`` is given."""

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite statement waits for another process's write lock before failing."""

_CLAIM_ROUNDS = 3
"""Claim attempts before giving up; a round is lost only when another attempt deletes the row
between our read and our insert, which needs a failing effect at exactly that moment."""

EffectState = Literal["started", "recorded"]


class EffectLedgerError(Exception):
    """The ledger could not do what was asked."""


class EffectInProgress(EffectLedgerError):
    """Another attempt has claimed this key and its lease has not expired: retry later."""

    def __init__(self, key: str, claimed_at: datetime, lease: timedelta) -> None:
        self.key = key
        self.claimed_at = claimed_at
        """When the live claim was made (UTC)."""
        self.lease = lease
        super().__init__(
            f"effect {key!r} is in progress: claimed at {claimed_at.isoformat()} and its lease "
            f"of {lease} has not expired; retry later"
        )

    def __reduce__(self) -> tuple[type[EffectInProgress], tuple[str, datetime, timedelta]]:
        # Keeps the error intact across process boundaries (multiprocessing pickles it).
        return (EffectInProgress, (self.key, self.claimed_at, self.lease))


@dataclass(frozen=True)
class LedgerOutcome:
    """What ``run_once`` returns."""

    key: str
    result: str
    replayed: bool
    """True when ``result`` was recorded by an earlier attempt and this call ran nothing."""


@dataclass(frozen=True)
class _Entry:
    state: EffectState
    result: str | None
    claimed_at: datetime


class EffectLedger(ABC):
    """Runs each keyed side effect once and remembers its result.

    Subclasses provide five single-statement primitives; the claim/run/record protocol is here,
    once, for every backend. ``claimed_at`` as stored is the claim's token: it changes when a
    claim is taken over, so recording and releasing only touch the claim they belong to.
    """

    def __init__(self, *, lease: timedelta = DEFAULT_LEASE) -> None:
        if lease < timedelta(0):
            raise ValueError(f"lease must not be negative, got {lease!r}")
        self.lease = lease

    async def run_once(self, key: str, effect: Callable[[], Awaitable[str]]) -> LedgerOutcome:
        """Run ``effect`` unless ``key`` already has a recorded result; return the result.

        Raises:
            EffectInProgress: another attempt claimed ``key`` less than a lease ago.
            Exception: whatever ``effect`` raised; the claim is deleted first, so a retry runs it.
        """
        claim = await self._claim(key)
        if isinstance(claim, LedgerOutcome):
            return claim
        try:
            result = await effect()
        except Exception:
            await self._release(key, claim)
            raise
        if not isinstance(result, str):
            # The effect did happen, so its claim stays and the lease protects it from a rerun.
            raise TypeError(f"effect for {key!r} must return str, got {type(result).__name__}")
        if await self._record(key, claim, result):
            return LedgerOutcome(key, result, replayed=False)
        # Our claim outlived its lease, another attempt took it over and recorded first: the
        # effect has run twice. Everyone, this caller included, gets the first recorded result.
        entry = await self._read(key)
        logger.warning(
            "effect %r ran longer than its lease (%s) and ran again elsewhere; returning the "
            "result recorded first",
            key,
            self.lease,
        )
        if entry is None or entry.result is None:  # recorded rows are never deleted
            raise EffectLedgerError(f"effect {key!r}: recorded result vanished")
        return LedgerOutcome(key, entry.result, replayed=True)

    async def recorded(self, key: str) -> str | None:
        """The result recorded for ``key``, or None if it has none (yet)."""
        entry = await self._read(key)
        return entry.result if entry is not None and entry.state == "recorded" else None

    async def _claim(self, key: str) -> datetime | LedgerOutcome:
        """Claim ``key`` (returning the claim's token) or return its recorded outcome."""
        for _ in range(_CLAIM_ROUNDS):
            entry = await self._read(key)
            if entry is None:
                claimed_at = await self._insert_claim(key)
                if claimed_at is not None:
                    return claimed_at
                continue  # someone else inserted first: look at their row
            if entry.state == "recorded":
                assert entry.result is not None
                return LedgerOutcome(key, entry.result, replayed=True)
            claimed_at = await self._take_over(key)
            if claimed_at is None:
                raise EffectInProgress(key, entry.claimed_at, self.lease)
            logger.warning(
                "effect %r: taking over a claim older than the lease (%s); its attempt is "
                "presumed dead and the effect MAY already have happened; running it again",
                key,
                self.lease,
            )
            return claimed_at
        raise EffectLedgerError(f"could not claim effect {key!r}: its row kept changing")

    @abstractmethod
    async def _read(self, key: str) -> _Entry | None:
        """The row for ``key``."""

    @abstractmethod
    async def _insert_claim(self, key: str) -> datetime | None:
        """Insert a ``started`` row; its ``claimed_at``, or None if ``key`` has a row."""

    @abstractmethod
    async def _take_over(self, key: str) -> datetime | None:
        """Renew a ``started`` claim older than the lease; the new ``claimed_at``, or None."""

    @abstractmethod
    async def _record(self, key: str, claimed_at: datetime, result: str) -> bool:
        """Record ``result`` unless another attempt already has; True if this call recorded."""

    @abstractmethod
    async def _release(self, key: str, claimed_at: datetime) -> None:
        """Delete the claim made at ``claimed_at``, if it is still there."""


# --- SQLite --------------------------------------------------------------------------------------

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    key         TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('started', 'recorded')),
    result      TEXT,
    claimed_at  TEXT NOT NULL,  -- UTC, fixed-width ISO 8601, so text order is time order
    recorded_at TEXT
)
"""

_SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_SQLITE_TIME_FORMAT)


def _parse_sqlite_time(text: str) -> datetime:
    return datetime.strptime(text, _SQLITE_TIME_FORMAT).replace(tzinfo=UTC)


class SqliteEffectLedger(EffectLedger):
    """The ledger in a SQLite file: the default, for workers sharing one machine.

    Each operation opens its own connection in a worker thread (``asyncio.to_thread``), so the
    event loop never blocks on SQLite and any number of processes can share the file (WAL mode,
    with a busy timeout for the write lock).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, lease: timedelta = DEFAULT_LEASE
    ) -> None:
        """
        Args:
            path: The database file; defaults to ``$EFFECTS_DB``, else ``.data/effects.db``.
            lease: How long a claim is trusted before it is taken over as abandoned.
        """
        super().__init__(lease=lease)
        self.path = Path(
            path if path is not None else os.environ.get("EFFECTS_DB") or DEFAULT_SQLITE_PATH
        )
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so every statement below is its own transaction.
        conn = sqlite3.connect(
            self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not self._schema_ready:
                with self._schema_lock:
                    if not self._schema_ready:
                        enable_wal(conn, SQLITE_BUSY_TIMEOUT_MS)
                        conn.execute(_SQLITE_SCHEMA)
                        self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    async def _execute(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with closing(self._connect()) as conn:
                # fetchall: a RETURNING statement only finishes (and commits) once fully read.
                return conn.execute(sql, params).fetchall()

        return await asyncio.to_thread(run)

    async def _read(self, key: str) -> _Entry | None:
        rows = await self._execute(
            "SELECT state, result, claimed_at FROM effects WHERE key = ?", (key,)
        )
        if not rows:
            return None
        state, result, claimed_at = rows[0]
        return _Entry(state, result, _parse_sqlite_time(claimed_at))

    async def _insert_claim(self, key: str) -> datetime | None:
        now = _sqlite_time(datetime.now(UTC))
        rows = await self._execute(
            """INSERT INTO effects (key, state, claimed_at) VALUES (?, 'started', ?)
               ON CONFLICT (key) DO NOTHING RETURNING claimed_at""",
            (key, now),
        )
        return _parse_sqlite_time(rows[0][0]) if rows else None

    async def _take_over(self, key: str) -> datetime | None:
        now = datetime.now(UTC)
        rows = await self._execute(
            """UPDATE effects SET claimed_at = ?
               WHERE key = ? AND state = 'started' AND claimed_at < ?
               RETURNING claimed_at""",
            (_sqlite_time(now), key, _sqlite_time(now - self.lease)),
        )
        return _parse_sqlite_time(rows[0][0]) if rows else None

    async def _record(self, key: str, claimed_at: datetime, result: str) -> bool:
        # An upsert: the claim row is normally there, but a takeover that failed deletes it.
        rows = await self._execute(
            """INSERT INTO effects (key, state, result, claimed_at, recorded_at)
               VALUES (?, 'recorded', ?, ?, ?)
               ON CONFLICT (key) DO UPDATE
                   SET state = 'recorded', result = excluded.result,
                       recorded_at = excluded.recorded_at
                   WHERE effects.state = 'started'
               RETURNING key""",
            (key, result, _sqlite_time(claimed_at), _sqlite_time(datetime.now(UTC))),
        )
        return bool(rows)

    async def _release(self, key: str, claimed_at: datetime) -> None:
        await self._execute(
            "DELETE FROM effects WHERE key = ? AND state = 'started' AND claimed_at = ?",
            (key, _sqlite_time(claimed_at)),
        )

    def join(self, conn: sqlite3.Connection, key: str) -> SqliteEffectTransaction:
        """Hold ``key`` inside the caller's open write transaction on ``conn``.

        The SQLite counterpart of ``PostgresEffectLedger.transaction``, for an effect that is a
        write to a SQLite database: the ledger row lives in that same database (``conn`` must be
        a connection to *this* ledger's file) and commits or rolls back with the effect, which
        closes the window between "done" and "recorded"::

            with inventory.transaction(conn):          # BEGIN IMMEDIATE ... COMMIT
                tx = ledger.join(conn, ctx.idempotency_key)
                if tx.previous is not None:
                    return tx.previous
                conn.execute("UPDATE resources SET status = 'stopped' ...")
                tx.record(outcome)

        ``BEGIN IMMEDIATE`` takes SQLite's write lock, so a concurrent attempt with the same key
        waits for the commit and then sees ``previous``.

        Raises:
            EffectLedgerError: ``conn`` has no open transaction, or is not on this ledger's file.
            EffectInProgress: ``run_once`` holds a live claim on ``key`` in this file.
        """
        if not conn.in_transaction:
            raise EffectLedgerError(
                f"join({key!r}) needs an open write transaction on conn (BEGIN IMMEDIATE first)"
            )
        files = [Path(row[2]).resolve() for row in conn.execute("PRAGMA database_list")]
        if self.path.resolve() not in files:
            raise EffectLedgerError(
                f"join({key!r}): conn is not connected to this ledger's file {str(self.path)!r}"
            )
        conn.execute(_SQLITE_SCHEMA)
        row = conn.execute(
            "SELECT state, result, claimed_at FROM effects WHERE key = ?", (key,)
        ).fetchone()
        if row is not None:
            state, result, claimed_at = row
            if state == "recorded":
                return SqliteEffectTransaction(key, conn, previous=cast(str, result))
            claimed = _parse_sqlite_time(claimed_at)
            if claimed > datetime.now(UTC) - self.lease:
                raise EffectInProgress(key, claimed, self.lease)
        return SqliteEffectTransaction(key, conn, previous=None)


@dataclass
class SqliteEffectTransaction:
    """A key held inside a caller's SQLite transaction; see ``SqliteEffectLedger.join``."""

    key: str
    connection: sqlite3.Connection
    previous: str | None
    """The result an earlier attempt recorded for ``key``; if set, do not act again."""

    def record(self, result: str) -> None:
        """Write ``result`` for the key in the caller's transaction: it commits with the effect."""
        if self.previous is not None:
            raise EffectLedgerError(
                f"effect {self.key!r} is already recorded; return tx.previous instead of acting"
            )
        now = _sqlite_time(datetime.now(UTC))
        # An upsert: an abandoned run_once claim on the same key may still be there.
        self.connection.execute(
            """INSERT INTO effects (key, state, result, claimed_at, recorded_at)
               VALUES (?, 'recorded', ?, ?, ?)
               ON CONFLICT (key) DO UPDATE
                   SET state = 'recorded', result = excluded.result,
                       recorded_at = excluded.recorded_at""",
            (self.key, result, now, now),
        )


# --- PostgreSQL ----------------------------------------------------------------------------------

_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    key         text PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('started', 'recorded')),
    result      text,
    claimed_at  timestamptz NOT NULL,
    recorded_at timestamptz
)
"""

_POSTGRES_RECORD = """
INSERT INTO effects (key, state, result, claimed_at, recorded_at)
VALUES (%s, 'recorded', %s, %s, now())
ON CONFLICT (key) DO UPDATE
    SET state = 'recorded', result = EXCLUDED.result, recorded_at = EXCLUDED.recorded_at
    WHERE effects.state = 'started'
RETURNING key
"""

PgConnection = psycopg.AsyncConnection[TupleRow]


@dataclass
class EffectTransaction:
    """An open PostgreSQL transaction that holds one effect key; see ``transaction``."""

    key: str
    connection: PgConnection
    """The transaction's connection: write the effect through it."""
    previous: str | None
    """The result an earlier attempt recorded for ``key``; if set, do not act again."""
    _result: str | None = field(default=None, init=False, repr=False)

    def record(self, result: str) -> None:
        """Record ``result`` for the key; it is written and committed with the effect."""
        if self.previous is not None:
            raise EffectLedgerError(
                f"effect {self.key!r} is already recorded; return tx.previous instead of acting"
            )
        self._result = result


class PostgresEffectLedger(EffectLedger):
    """The ledger in PostgreSQL (``$EFFECTS_DSN``): for workers on many machines.

    The ``effects`` table is created if missing. Each operation uses its own short-lived
    connection (psycopg 3, async); claim ages are measured on the server's clock, one clock for
    every worker.
    """

    def __init__(self, dsn: str, *, lease: timedelta = DEFAULT_LEASE) -> None:
        """
        Args:
            dsn: A libpq connection string or URI, e.g. ``postgresql://user@host/db``.
            lease: How long a claim is trusted before it is taken over as abandoned.
        """
        super().__init__(lease=lease)
        self._dsn = dsn
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self, key: str) -> AsyncIterator[EffectTransaction]:
        """One transaction for an effect in this database and its ledger row.

        Use it when the effect is a write to this same database: both commit together or not
        at all, which closes the window between "done" and "recorded"::

            async with ledger.transaction(ctx.idempotency_key) as tx:
                if tx.previous is not None:
                    return tx.previous
                await tx.connection.execute("INSERT INTO shipments ...", ...)
                tx.record("shipment 42 created")

        The key is held (a row lock) until the transaction ends, so a concurrent attempt with
        the same key waits and then sees ``previous``. An exception in the block rolls back
        both; leaving the block without ``tx.record`` (and with no ``previous``) rolls back and
        raises ``EffectLedgerError``.

        Raises:
            EffectInProgress: ``run_once`` holds a live claim on ``key``.
        """
        await self._ensure_schema()
        async with (
            await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn,
            conn.transaction(),
        ):
            tx = EffectTransaction(key, conn, await self._hold_key(conn, key))
            yield tx
            if tx.previous is None:
                if tx._result is None:
                    raise EffectLedgerError(
                        f"transaction({key!r}) ended without tx.record(result); rolled back"
                    )
                # We hold the key's row (inserted or locked by _hold_key): it is ours to set.
                await conn.execute(
                    """UPDATE effects SET state = 'recorded', result = %s, recorded_at = now()
                       WHERE key = %s""",
                    (tx._result, key),
                )

    async def _hold_key(self, conn: PgConnection, key: str) -> str | None:
        """Inside ``conn``'s transaction: lock ``key``'s row; its recorded result, if any."""
        for _ in range(_CLAIM_ROUNDS):
            # Our uncommitted row holds the key: a concurrent insert of it waits for our commit.
            cursor = await conn.execute(
                """INSERT INTO effects (key, state, claimed_at) VALUES (%s, 'started', now())
                   ON CONFLICT (key) DO NOTHING RETURNING key""",
                (key,),
            )
            if await cursor.fetchone() is not None:
                return None
            cursor = await conn.execute(
                """SELECT state, result, claimed_at, claimed_at < now() - %s
                   FROM effects WHERE key = %s FOR UPDATE""",
                (self.lease, key),
            )
            row = await cursor.fetchone()
            if row is None:
                continue  # released by a failed run_once in between
            state, result, claimed_at, abandoned = row
            if state == "recorded":
                return cast(str, result)
            if not abandoned:
                raise EffectInProgress(key, claimed_at, self.lease)
            logger.warning(
                "effect %r: taking over a claim older than the lease (%s); the effect MAY "
                "already have happened outside this transaction",
                key,
                self.lease,
            )
            await conn.execute("UPDATE effects SET claimed_at = now() WHERE key = %s", (key,))
            return None
        raise EffectLedgerError(f"could not hold effect {key!r}: its row kept changing")

    async def _ensure_schema(self) -> None:
        async with self._schema_lock:
            if self._schema_ready:
                return
            async with (
                await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn,
                conn.transaction(),
            ):
                # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog; an
                # advisory lock makes workers starting together take turns.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('effects ledger'))")
                await conn.execute(_POSTGRES_SCHEMA)
            self._schema_ready = True

    async def _fetch(self, sql: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        await self._ensure_schema()
        async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone() if cursor.description is not None else None

    async def _read(self, key: str) -> _Entry | None:
        row = await self._fetch(
            "SELECT state, result, claimed_at FROM effects WHERE key = %s", (key,)
        )
        return _Entry(row[0], row[1], row[2]) if row is not None else None

    async def _insert_claim(self, key: str) -> datetime | None:
        row = await self._fetch(
            """INSERT INTO effects (key, state, claimed_at) VALUES (%s, 'started', now())
               ON CONFLICT (key) DO NOTHING RETURNING claimed_at""",
            (key,),
        )
        return cast(datetime, row[0]) if row is not None else None

    async def _take_over(self, key: str) -> datetime | None:
        # One statement: of two attempts taking over at once, the second re-checks the row
        # after the first commits, finds a fresh claim and updates nothing.
        row = await self._fetch(
            """UPDATE effects SET claimed_at = now()
               WHERE key = %s AND state = 'started' AND claimed_at < now() - %s
               RETURNING claimed_at""",
            (key, self.lease),
        )
        return cast(datetime, row[0]) if row is not None else None

    async def _record(self, key: str, claimed_at: datetime, result: str) -> bool:
        return await self._fetch(_POSTGRES_RECORD, (key, result, claimed_at)) is not None

    async def _release(self, key: str, claimed_at: datetime) -> None:
        await self._fetch(
            "DELETE FROM effects WHERE key = %s AND state = 'started' AND claimed_at = %s",
            (key, claimed_at),
        )


def ledger_from_env() -> EffectLedger:
    """``PostgresEffectLedger($EFFECTS_DSN)`` if set, else ``SqliteEffectLedger($EFFECTS_DB)``."""
    dsn = os.environ.get("EFFECTS_DSN")
    if dsn:
        return PostgresEffectLedger(dsn)
    return SqliteEffectLedger()
