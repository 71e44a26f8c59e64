"""FinOps tools over the local cloud inventory (``tools.inventory``).

Four read-only tools find and explain a cost spike; two side-effect tools act on it. Each
side-effect tool holds its idempotency key in the effects ledger *inside* the inventory's own
transaction (``SqliteEffectLedger.join``): the effect and its ledger row commit together, so a
retried call (same key) returns what the first attempt did instead of doing it again, even if
the first attempt's worker died right after committing.

All dates are relative to ``inventory.REFERENCE_DATE``, which the tools treat as today.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from durable_agents.effects import SqliteEffectLedger, SqliteEffectTransaction
from durable_agents.tools._registry import ToolContext, ToolError, tool
from examples.finops import inventory

IDLE_THRESHOLD_PCT = 5.0
"""A resource is idle when its average CPU and (if it has GPUs) average GPU are below this."""

TOP_ENTRIES = 5
"""How many resources ``cost_breakdown`` lists; enough to show the driver and what's next."""

_seeded: set[Path] = set()
_seed_lock = threading.Lock()


def _connect() -> sqlite3.Connection:
    """Open the inventory named by ``$INVENTORY_DB``, seeding it on first use in this process."""
    path = inventory.db_path()
    if path not in _seeded:
        # Tools run in worker threads; the lock keeps one process from seeding twice in parallel
        # (ensure_seeded itself is what makes concurrent *processes* safe).
        with _seed_lock:
            if path not in _seeded:
                inventory.ensure_seeded(path)
                _seeded.add(path)
    return inventory.connect(path)


def _hold_key(conn: sqlite3.Connection, ctx: ToolContext) -> SqliteEffectTransaction:
    """The call's idempotency key, held in the effects ledger inside conn's open transaction."""
    return SqliteEffectLedger(inventory.db_path()).join(conn, ctx.idempotency_key)


def _replay(tx: SqliteEffectTransaction) -> dict[str, Any] | None:
    """What an earlier attempt of this call returned, marked as a suppressed duplicate."""
    if tx.previous is None:
        return None
    outcome: dict[str, Any] = json.loads(tx.previous)
    return outcome | {"duplicate_suppressed": True}


def _now() -> str:
    # Wall-clock time of the effect: when it really happened, unlike the fixed billing "today".
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        """SELECT r.*, t.name AS team_name
           FROM resources r JOIN teams t ON t.id = r.team_id
           WHERE r.id = ?""",
        (resource_id,),
    ).fetchone()
    if row is None:
        raise ToolError(
            f"unknown resource {resource_id!r}; resource ids look like 'prod-web-1' and are listed "
            "by cost_breakdown"
        )
    return row


def _pct(change: float, base: float) -> float | None:
    return round(100 * change / base, 1) if base else None


ResourceId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="Inventory id of the resource, e.g. 'prod-web-1' (cost_breakdown lists them).",
    ),
]


# --- read-only -----------------------------------------------------------------------------------


class CostBreakdownArgs(BaseModel):
    window_days: int = Field(
        default=7,
        ge=1,
        le=14,
        description="Length in days of the window to compare: the last N days (ending today) "
        "against the N days before them.",
    )


@tool(effect="read_only")
def cost_breakdown(args: CostBreakdownArgs, ctx: ToolContext) -> dict[str, Any]:
    """Compare cloud spend over the last N days with the N days before, per resource and in total.

    Returns the total for both windows and the resources whose cost changed most, sorted by
    increase in USD (largest first), each with id, name, kind, team, current_usd, previous_usd,
    change_usd and change_pct (null when the resource did not exist in the previous window).
    Start here to find what is driving a cost spike.
    """
    n = args.window_days
    end = inventory.today()
    current_start = end - timedelta(days=n - 1)
    previous_start = current_start - timedelta(days=n)
    previous_end = current_start - timedelta(days=1)
    with closing(_connect()) as conn:
        rows = conn.execute(
            """SELECT r.id, r.name, r.kind, t.name AS team, r.status,
                      COALESCE(SUM(CASE WHEN c.day >= :cur THEN c.cost_usd END), 0) AS current,
                      COALESCE(SUM(CASE WHEN c.day < :cur THEN c.cost_usd END), 0) AS previous
               FROM resources r
               JOIN teams t ON t.id = r.team_id
               LEFT JOIN daily_costs c
                 ON c.resource_id = r.id AND c.day BETWEEN :prev AND :end
               GROUP BY r.id""",
            {
                "cur": current_start.isoformat(),
                "prev": previous_start.isoformat(),
                "end": end.isoformat(),
            },
        ).fetchall()
    entries = []
    for row in rows:
        current, previous = round(float(row["current"]), 2), round(float(row["previous"]), 2)
        change = round(current - previous, 2)
        entries.append(
            {
                "resource_id": row["id"],
                "name": row["name"],
                "kind": row["kind"],
                "team": row["team"],
                "status": row["status"],
                "current_usd": current,
                "previous_usd": previous,
                "change_usd": change,
                "change_pct": _pct(change, previous),
            }
        )
    # By USD, not percent: a new $3k/week cluster matters more than a $1 bucket doubling.
    entries.sort(key=lambda e: (-e["change_usd"], e["resource_id"]))
    total_current = round(sum(e["current_usd"] for e in entries), 2)
    total_previous = round(sum(e["previous_usd"] for e in entries), 2)
    total_change = round(total_current - total_previous, 2)
    return {
        "today": end.isoformat(),
        "window_days": n,
        "current_window": {"start": current_start.isoformat(), "end": end.isoformat()},
        "previous_window": {"start": previous_start.isoformat(), "end": previous_end.isoformat()},
        "total_current_usd": total_current,
        "total_previous_usd": total_previous,
        "total_change_usd": total_change,
        "total_change_pct": _pct(total_change, total_previous),
        "resource_count": len(entries),
        "top": entries[:TOP_ENTRIES],
    }


class ResourceArgs(BaseModel):
    resource_id: ResourceId


@tool(effect="read_only")
def describe_resource(args: ResourceArgs, ctx: ToolContext) -> dict[str, Any]:
    """Describe one resource: kind, name, team, region, status, hourly and daily cost, launch date.

    Use it to check what a resource is (e.g. whether it is a Kubernetes cluster) before acting.
    """
    with closing(_connect()) as conn:
        row = _resource(conn, args.resource_id)
    launched = date.fromisoformat(row["launched_on"])
    return {
        "resource_id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "team_id": row["team_id"],
        "team": row["team_name"],
        "region": row["region"],
        "status": row["status"],
        "hourly_cost_usd": row["hourly_cost_usd"],
        "daily_cost_usd": round(row["hourly_cost_usd"] * 24, 2),
        "launched_on": row["launched_on"],
        "age_days": (inventory.today() - launched).days,
    }


class UtilizationArgs(BaseModel):
    resource_id: ResourceId
    hours: int = Field(
        default=inventory.UTILIZATION_HOURS,
        ge=1,
        le=inventory.UTILIZATION_HOURS,
        description="How many of the most recent hours to summarize (monitoring keeps 72).",
    )


@tool(effect="read_only")
def resource_utilization(args: UtilizationArgs, ctx: ToolContext) -> dict[str, Any]:
    """Summarize a resource's recent CPU and GPU utilization (hourly samples).

    Returns average and maximum CPU and GPU percent over the window (GPU fields are null for
    resources without GPUs) and `idle`: true when average CPU and average GPU are both below 5%,
    null when the resource reports no utilization (buckets).
    """
    with closing(_connect()) as conn:
        row = _resource(conn, args.resource_id)
        samples = conn.execute(
            """SELECT cpu_pct, gpu_pct FROM utilization WHERE resource_id = ?
               ORDER BY hour DESC LIMIT ?""",
            (args.resource_id, args.hours),
        ).fetchall()
    summary: dict[str, Any] = {
        "resource_id": row["id"],
        "name": row["name"],
        "kind": row["kind"],
        "hours": args.hours,
        "samples": len(samples),
        "idle_rule": f"average CPU and GPU below {IDLE_THRESHOLD_PCT:g}%",
    }
    if not samples:
        return summary | {"idle": None, "note": f"a {row['kind']} reports no CPU/GPU metrics"}
    cpu = [s["cpu_pct"] for s in samples]
    gpu = [s["gpu_pct"] for s in samples if s["gpu_pct"] is not None]
    avg_cpu = round(sum(cpu) / len(cpu), 1)
    avg_gpu = round(sum(gpu) / len(gpu), 1) if gpu else None
    idle = avg_cpu < IDLE_THRESHOLD_PCT and (avg_gpu is None or avg_gpu < IDLE_THRESHOLD_PCT)
    return summary | {
        "avg_cpu_pct": avg_cpu,
        "max_cpu_pct": max(cpu),
        "avg_gpu_pct": avg_gpu,
        "max_gpu_pct": max(gpu) if gpu else None,
        "idle": idle,
    }


@tool(effect="read_only")
def find_owner(args: ResourceArgs, ctx: ToolContext) -> dict[str, Any]:
    """Find who owns a resource: team, owner's name and email, and the team's Slack channel."""
    with closing(_connect()) as conn:
        row = _resource(conn, args.resource_id)
        team = conn.execute("SELECT * FROM teams WHERE id = ?", (row["team_id"],)).fetchone()
    return {
        "resource_id": row["id"],
        "resource_name": row["name"],
        "team_id": team["id"],
        "team": team["name"],
        "owner_name": team["owner_name"],
        "owner_email": team["owner_email"],
        "slack_channel": team["slack_channel"],
    }


# --- side effects --------------------------------------------------------------------------------


class NotifyOwnerArgs(BaseModel):
    recipient_email: str = Field(
        min_length=3,
        max_length=254,
        description="Email of a resource owner, as returned by find_owner.",
    )
    subject: str = Field(min_length=1, max_length=200, description="One-line subject.")
    message: str = Field(
        min_length=1,
        max_length=4000,
        description="Plain-text message: what you found (with the numbers) and what you will do.",
    )
    channel: Literal["email", "slack"] = Field(
        default="email",
        description="'email' to the owner, or 'slack' for a direct message to the same person.",
    )


def _notification(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "notification_id": row["id"],
        "recipient": row["recipient"],
        "channel": row["channel"],
        "subject": row["subject"],
        "sent_at": row["sent_at"],
        "duplicate_suppressed": False,
    }


@tool(effect="side_effect", enforces_key=True)
def notify_owner(args: NotifyOwnerArgs, ctx: ToolContext) -> dict[str, Any]:
    """Send a notification to a resource owner by email or Slack direct message.

    Only owners listed by find_owner can be notified. Tell the owner what you found and what you
    are about to do before you act on their resource.
    """
    with closing(_connect()) as conn, inventory.transaction(conn):
        tx = _hold_key(conn, ctx)
        replayed = _replay(tx)
        if replayed is not None:
            # A retry of a call that already sent: report that send, do not send again.
            return replayed
        # A model can hallucinate an address; only people the inventory knows get messages.
        owner = conn.execute(
            "SELECT owner_name FROM teams WHERE owner_email = ? COLLATE NOCASE",
            (args.recipient_email,),
        ).fetchone()
        if owner is None:
            known = [r[0] for r in conn.execute("SELECT owner_email FROM teams ORDER BY id")]
            raise ToolError(
                f"unknown recipient {args.recipient_email!r}; owners are: {', '.join(known)} "
                "(use find_owner)"
            )
        # The row is the sent message (this inventory's outbox), committed with its key.
        cursor = conn.execute(
            """INSERT INTO notifications
                   (idempotency_key, recipient, channel, subject, body, sent_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                ctx.idempotency_key,
                args.recipient_email.lower(),
                args.channel,
                args.subject,
                args.message,
                _now(),
            ),
        )
        sent = conn.execute(
            "SELECT * FROM notifications WHERE id = ?", (cursor.lastrowid,)
        ).fetchone()
        outcome = _notification(sent) | {"owner_name": owner["owner_name"]}
        tx.record(json.dumps(outcome))
        return outcome


class StopClusterArgs(BaseModel):
    cluster_id: str = Field(
        min_length=1,
        max_length=64,
        description="Inventory id of the Kubernetes cluster to stop, e.g. 'staging-web'.",
    )
    reason: str = Field(
        min_length=10,
        max_length=1000,
        description="Why it is being stopped, citing its utilization and cost; recorded in the "
        "audit log the owner sees.",
    )


_STOP = "stop"
_STOP_NOOP = "stop_noop_already_stopped"


def _stop_outcome(resource: sqlite3.Row, action: sqlite3.Row) -> dict[str, Any]:
    stopped_now = action["action"] == _STOP
    return {
        "cluster_id": resource["id"],
        "name": resource["name"],
        "status": "stopped",
        "stopped_by_this_call": stopped_now,
        "already_stopped": not stopped_now,
        "duplicate_suppressed": False,
        "action_id": action["id"],
        "performed_at": action["performed_at"],
        "reason": action["reason"],
        # Savings are what this call's stop saves; a no-op saves nothing new.
        "savings_per_day_usd": round(resource["hourly_cost_usd"] * 24, 2) if stopped_now else 0.0,
    }


@tool(effect="side_effect", enforces_key=True)
def stop_cluster(args: StopClusterArgs, ctx: ToolContext) -> dict[str, Any]:
    """Stop (scale to zero) a running Kubernetes cluster. Nothing is deleted; it can be restarted.

    Only resources of kind k8s_cluster can be stopped. Stop a cluster only when it is idle and
    its owner has been notified. Returns the savings per day.
    """
    with closing(_connect()) as conn, inventory.transaction(conn):
        tx = _hold_key(conn, ctx)
        replayed = _replay(tx)
        if replayed is not None:
            # A retry of a call that already acted: return its outcome, act on nothing.
            return replayed
        cluster = _resource(conn, args.cluster_id)
        if cluster["kind"] != "k8s_cluster":
            raise ToolError(
                f"{cluster['name']!r} ({cluster['id']}) is a {cluster['kind']}, not a "
                "k8s_cluster; stop_cluster only stops Kubernetes clusters"
            )
        action = _STOP_NOOP
        if cluster["status"] == "running":
            conn.execute("UPDATE resources SET status = 'stopped' WHERE id = ?", (cluster["id"],))
            action = _STOP
        # The no-op is recorded too, so a retry of this call gets this same answer even if
        # someone restarts the cluster in between.
        cursor = conn.execute(
            """INSERT INTO actions (idempotency_key, resource_id, action, reason, performed_at)
               VALUES (?, ?, ?, ?, ?)""",
            (ctx.idempotency_key, cluster["id"], action, args.reason, _now()),
        )
        row = conn.execute("SELECT * FROM actions WHERE id = ?", (cursor.lastrowid,)).fetchone()
        outcome = _stop_outcome(cluster, row)
        tx.record(json.dumps(outcome))
        return outcome


FINOPS_TOOLS = (
    cost_breakdown,
    describe_resource,
    resource_utilization,
    find_owner,
    notify_owner,
    stop_cluster,
)

__all__ = [
    "FINOPS_TOOLS",
    "IDLE_THRESHOLD_PCT",
    "cost_breakdown",
    "describe_resource",
    "find_owner",
    "notify_owner",
    "resource_utilization",
    "stop_cluster",
]
