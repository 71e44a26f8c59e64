"""A local SQLite "cloud inventory": the world the FinOps agent observes and acts on.

The database stands in for a cloud provider's billing export, monitoring and control plane, so
the flagship agent does real reads and real, checkable side effects with no cloud account. It is
created and seeded on first use (``ensure_seeded``), so a fresh clone needs no setup step.

**"Today" is fixed.** Seed data is laid out around ``REFERENCE_DATE`` (2026-11-20) and the tools
treat that date as today: billing data is complete through the end of that day and utilization
samples cover its last 72 hours. A fixed date keeps the seed, the tools' answers and the scripted
run identical on every machine and every day.

Tables::

    teams(id, name, owner_name, owner_email, slack_channel)
    resources(id, kind, name, team_id, region, status, hourly_cost_usd, launched_on)
    daily_costs(resource_id, day, cost_usd)            -- last 28 days, through REFERENCE_DATE
    utilization(resource_id, hour, cpu_pct, gpu_pct)   -- hourly, last 72 h; gpu_pct NULL if no GPU
    notifications(id, idempotency_key UNIQUE, recipient, channel, subject, body, sent_at)
    actions(id, idempotency_key UNIQUE, resource_id, action, reason, performed_at)
    meta(key, value)                                   -- the seed marker

``notifications`` and ``actions`` are where the effects land: a row there *is* the effect (the
message sent, the cluster stopped), written in the same transaction as the state change and keyed
by the caller's idempotency key, so a retried tool call can find and return what it already did.
Count them with ``count_notifications`` / ``count_actions`` or directly, e.g.
``sqlite3 .data/inventory.db "SELECT count(*) FROM actions"``.

The seed: four teams and twelve resources whose costs are flat for four weeks, except
``gpu-train-7`` (ML Research, owner Priya Raman), a GPU Kubernetes cluster launched 2026-11-14
that burns $480/day at 1-3 % GPU/CPU, and ``analytics-warehouse``, which is busy and legitimately
~8 % more expensive this week.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from durable_agents.runtime.sqlite import enable_wal

REFERENCE_DATE = date(2026, 11, 20)
"""The date the inventory treats as today (see the module docstring)."""

COST_HISTORY_DAYS = 28
"""Days of ``daily_costs`` kept, ending with ``REFERENCE_DATE``."""

UTILIZATION_HOURS = 72
"""Hours of ``utilization`` samples kept, ending with the last hour of ``REFERENCE_DATE``."""

DEFAULT_PATH = Path(".data") / "inventory.db"
PATH_ENV = "INVENTORY_DB"

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock before SQLite gives up."""

SEED_VERSION = "1"

ResourceKind = Literal["k8s_cluster", "vm", "database", "bucket"]
ResourceStatus = Literal["running", "stopped"]

_TABLES = ("notifications", "actions", "utilization", "daily_costs", "resources", "teams", "meta")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    owner_email TEXT NOT NULL UNIQUE,
    slack_channel TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('k8s_cluster', 'vm', 'database', 'bucket')),
    name TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL REFERENCES teams(id),
    region TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'stopped')),
    hourly_cost_usd REAL NOT NULL,
    launched_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_costs (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    day TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    PRIMARY KEY (resource_id, day)
);
CREATE INDEX IF NOT EXISTS daily_costs_by_day ON daily_costs(day);
CREATE TABLE IF NOT EXISTS utilization (
    resource_id TEXT NOT NULL REFERENCES resources(id),
    hour TEXT NOT NULL,
    cpu_pct REAL NOT NULL,
    gpu_pct REAL,
    PRIMARY KEY (resource_id, hour)
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'slack')),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    resource_id TEXT NOT NULL REFERENCES resources(id),
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    performed_at TEXT NOT NULL
);
"""


def db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database file: ``path``, else ``$INVENTORY_DB``, else ``.data/inventory.db``.

    Relative paths are resolved against the current directory, so the worker and the starter
    share one file when run from the project root.
    """
    chosen = path if path is not None else os.environ.get(PATH_ENV) or DEFAULT_PATH
    return Path(chosen).resolve()


def connect(path: str | os.PathLike[str] | None = None) -> sqlite3.Connection:
    """Open the inventory (creating its directory) in WAL mode with a busy timeout.

    The connection is in autocommit mode: write with ``transaction(conn)`` so every effect and
    its record commit together. Rows come back as ``sqlite3.Row``. Close it when done.
    """
    file = db_path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit BEGINs, so the transactions we open are the only ones.
    conn = sqlite3.connect(file, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        enable_wal(conn, BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

    IMMEDIATE takes the write lock up front, so a check-then-write (is this key recorded? is the
    cluster running?) cannot interleave with another process doing the same.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def today() -> date:
    """The date the tools treat as today: ``REFERENCE_DATE``."""
    return REFERENCE_DATE


def ensure_seeded(path: str | os.PathLike[str] | None = None) -> bool:
    """Create the schema and seed data unless already there.

    Safe to call from many processes at once: the check is repeated under the write lock, so
    exactly one caller seeds and the others see its committed marker.

    Returns:
        True if this call seeded the database, False if it was already seeded.
    """
    with closing(connect(path)) as conn:
        if _is_seeded(conn):  # the common case, without taking the write lock
            return False
        with transaction(conn):
            if _is_seeded(conn):
                return False
            _create_schema(conn)
            _insert_seed(conn)
        return True


def reset(path: str | os.PathLike[str] | None = None) -> None:
    """Drop everything (including sent notifications and actions) and reseed; for tests/demos."""
    with closing(connect(path)) as conn, transaction(conn):
        for table in _TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        _create_schema(conn)
        _insert_seed(conn)


def count_notifications(
    path: str | os.PathLike[str] | None = None, *, recipient: str | None = None
) -> int:
    """How many notifications were sent (to ``recipient``, if given)."""
    sql, params = "SELECT count(*) FROM notifications", []
    if recipient is not None:
        sql, params = sql + " WHERE recipient = ?", [recipient]
    with closing(connect(path)) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def count_actions(
    path: str | os.PathLike[str] | None = None,
    *,
    resource_id: str | None = None,
    action: str | None = None,
) -> int:
    """How many actions were recorded (on ``resource_id`` / of kind ``action``, if given)."""
    clauses: list[str] = []
    params: list[str] = []
    if resource_id is not None:
        clauses.append("resource_id = ?")
        params.append(resource_id)
    if action is not None:
        clauses.append("action = ?")
        params.append(action)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    with closing(connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM actions{where}", params).fetchone()[0])


def _is_seeded(conn: sqlite3.Connection) -> bool:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'seed_version'").fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return False
        raise
    return row is not None


def _create_schema(conn: sqlite3.Connection) -> None:
    # executescript() would COMMIT the open transaction first; run the statements one by one so
    # the schema and the seed are created atomically with the marker.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


# --- seed data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Team:
    id: str
    name: str
    owner_name: str
    owner_email: str
    slack_channel: str


@dataclass(frozen=True)
class _Resource:
    kind: ResourceKind
    name: str
    """Also the resource's id: clusters, VMs and buckets are addressed by name in their account,
    and a readable id lets a reader check a run's tool calls at a glance."""
    team_id: str
    region: str
    hourly_cost_usd: float
    launched_on: date
    cpu_pct: float | None
    """Typical CPU utilization; None for resources without compute (buckets)."""
    gpu_pct: float | None = None
    """Typical GPU utilization; None for resources without GPUs."""
    recent_cost_factor: float = 1.0
    """Multiplier on daily cost over the last 7 days (a legitimate usage increase)."""


_TEAMS = (
    _Team("ml-research", "ML Research", "Priya Raman", "priya.raman@example.com", "#ml-infra"),
    _Team("data-platform", "Data Platform", "Marcus Chen", "marcus.chen@example.com", "#data-eng"),
    _Team("web-platform", "Web Platform", "Sofia Alvarez", "sofia.alvarez@example.com", "#web-ops"),
    _Team("payments", "Payments", "Kwame Mensah", "kwame.mensah@example.com", "#payments-eng"),
)

_LONG_AGO = date(2025, 1, 6)

_RESOURCES = (
    _Resource("k8s_cluster", "prod-web-1", "web-platform", "us-east-1", 9.60,
              date(2025, 3, 2), cpu_pct=55),
    _Resource("k8s_cluster", "staging-web", "web-platform", "us-east-1", 3.20,
              date(2025, 6, 18), cpu_pct=22),
    _Resource("k8s_cluster", "gpu-inference-2", "ml-research", "us-west-2", 14.00,
              date(2026, 2, 10), cpu_pct=41, gpu_pct=64),
    # The culprit: launched six days before the reference date for a training run that ended,
    # never scaled down; 8 GPUs at $20/h sitting at 1-3 %.
    _Resource("k8s_cluster", "gpu-train-7", "ml-research", "us-west-2", 20.00,
              REFERENCE_DATE - timedelta(days=6), cpu_pct=2, gpu_pct=2),
    # The legitimate increase: more queries this week, so ~8 % more spend, and busy.
    _Resource("database", "analytics-warehouse", "data-platform", "us-east-1", 12.50,
              _LONG_AGO, cpu_pct=72, recent_cost_factor=1.08),
    _Resource("database", "payments-db-primary", "payments", "eu-west-1", 5.40,
              _LONG_AGO, cpu_pct=38),
    _Resource("database", "payments-db-replica", "payments", "eu-west-1", 2.70,
              _LONG_AGO, cpu_pct=17),
    _Resource("vm", "etl-runner-01", "data-platform", "us-east-1", 1.90,
              date(2025, 8, 11), cpu_pct=47),
    # Idle but cheap and not a cluster: the agent must not treat "idle" alone as "stop it".
    _Resource("vm", "bastion-01", "web-platform", "us-east-1", 0.10,
              _LONG_AGO, cpu_pct=2),
    _Resource("vm", "ci-runner-pool", "web-platform", "us-east-1", 2.40,
              date(2025, 4, 22), cpu_pct=33),
    _Resource("bucket", "web-assets", "web-platform", "us-east-1", 0.45,
              _LONG_AGO, cpu_pct=None),
    _Resource("bucket", "ml-datasets", "ml-research", "us-west-2", 1.10,
              _LONG_AGO, cpu_pct=None),
)  # fmt: skip

_RECENT_DAYS = 7
_DAILY_NOISE = 0.01
"""Day-to-day cost jitter (±1 %), small enough that "flat" stays flat week over week."""


def _rng(*parts: object) -> random.Random:
    # A str seed is hashed with SHA-512 (not Python's randomized hash), so the sequence is the
    # same in every process and on every machine.
    return random.Random(":".join(str(p) for p in parts))


def _insert_seed(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO teams VALUES (?, ?, ?, ?, ?)",
        [(t.id, t.name, t.owner_name, t.owner_email, t.slack_channel) for t in _TEAMS],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO resources VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
        [
            (
                r.name,
                r.kind,
                r.name,
                r.team_id,
                r.region,
                r.hourly_cost_usd,
                r.launched_on.isoformat(),
            )
            for r in _RESOURCES
        ],
    )
    conn.executemany("INSERT OR IGNORE INTO daily_costs VALUES (?, ?, ?)", list(_daily_cost_rows()))
    conn.executemany(
        "INSERT OR IGNORE INTO utilization VALUES (?, ?, ?, ?)", list(_utilization_rows())
    )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('seed_version', ?)", (SEED_VERSION,))
    conn.execute(
        "INSERT OR REPLACE INTO meta VALUES ('reference_date', ?)", (REFERENCE_DATE.isoformat(),)
    )


def _daily_cost_rows() -> Iterator[tuple[str, str, float]]:
    first_day = REFERENCE_DATE - timedelta(days=COST_HISTORY_DAYS - 1)
    recent_from = REFERENCE_DATE - timedelta(days=_RECENT_DAYS - 1)
    for r in _RESOURCES:
        for offset in range(COST_HISTORY_DAYS):
            day = first_day + timedelta(days=offset)
            if day < r.launched_on:
                continue
            factor = r.recent_cost_factor if day >= recent_from else 1.0
            jitter = 1 + _rng("cost", r.name, day).uniform(-_DAILY_NOISE, _DAILY_NOISE)
            yield r.name, day.isoformat(), round(r.hourly_cost_usd * 24 * factor * jitter, 2)


def _utilization_rows() -> Iterator[tuple[str, str, float, float | None]]:
    end = datetime.combine(REFERENCE_DATE, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    for r in _RESOURCES:
        if r.cpu_pct is None:
            continue  # buckets report no CPU/GPU
        for back in range(UTILIZATION_HOURS, 0, -1):
            hour = end - timedelta(hours=back)
            rng = _rng("util", r.name, hour.isoformat())
            cpu = _sample(rng, r.cpu_pct)
            gpu = None if r.gpu_pct is None else _sample(rng, r.gpu_pct)
            yield r.name, hour.strftime("%Y-%m-%dT%H:%M:%SZ"), cpu, gpu


def _sample(rng: random.Random, typical: float) -> float:
    # Idle resources wobble by about a point (1-3 % around 2 %); busy ones by about 15 %.
    spread = 1.0 if typical < 5 else typical * 0.15
    return round(min(100.0, max(0.0, rng.uniform(typical - spread, typical + spread))), 1)


def main(argv: list[str] | None = None) -> int:
    """``python -m examples.finops.inventory reset|counts``: reseed the demo inventory or count
    effects."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m examples.finops.inventory", description=main.__doc__
    )
    parser.add_argument("action", choices=["reset", "counts"])
    args = parser.parse_args(argv)
    if args.action == "reset":
        reset()
        print(f"reseeded {db_path()}")
    else:
        ensure_seeded()
        print(f"notifications: {count_notifications()}, actions: {count_actions()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
