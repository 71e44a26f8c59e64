"""The FinOps tools and the flagship script against a real SQLite inventory, without Temporal.

Every test gets its own database file (``INVENTORY_DB`` in ``tmp_path``), and effects are checked
by counting rows in that database: the system that performs them, not the tool's own answer.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from durable_agents.testing import ScriptView
from durable_agents.tools import Tool, ToolContext, ToolError
from examples.finops import inventory
from examples.finops.agent import FINOPS_SCRIPTS, STANDARD_TASK, finops
from examples.finops.tools import (
    cost_breakdown,
    describe_resource,
    find_owner,
    notify_owner,
    resource_utilization,
    stop_cluster,
)

CULPRIT = "gpu-train-7"
WAREHOUSE = "analytics-warehouse"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "inventory.db"
    monkeypatch.setenv(inventory.PATH_ENV, str(path))
    yield path


def ctx(key: str = "run-1/tool/0/call_0") -> ToolContext:
    return ToolContext(agent="finops", call_id="call_0", idempotency_key=key, step=0, attempt=1)


async def call(tool: Tool, key: str = "run-1/tool/0/call_0", **arguments: Any) -> Any:
    """Validate ``arguments`` as the run_tool activity does, run the tool, parse its JSON."""
    return json.loads(await tool.invoke(tool.args_model(**arguments), ctx(key)))


def query(path: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    with closing(inventory.connect(path)) as conn:
        return list(conn.execute(sql, params).fetchall())


def resource_id(path: Path, name: str) -> str:
    inventory.ensure_seeded(path)  # tests may look ids up before any tool has seeded the file
    return str(query(path, "SELECT id FROM resources WHERE name = ?", name)[0]["id"])


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("teams", "resources", "daily_costs", "utilization")
    return {t: [tuple(r) for r in query(path, f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}


# --- the inventory -------------------------------------------------------------------------------


def test_seed_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    """Two fresh databases seed identically, and seeding again changes nothing."""
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    assert inventory.ensure_seeded(first) is True
    assert inventory.ensure_seeded(first) is False
    assert inventory.ensure_seeded(second) is True
    assert dump(first) == dump(second)
    counts = {table: len(rows) for table, rows in dump(first).items()}
    # 4 teams, 12 resources, 28 days of costs (the culprit only since its launch), 72h of
    # utilization for the 10 resources that report it.
    assert counts == {"teams": 4, "resources": 12, "daily_costs": 11 * 28 + 7, "utilization": 720}


def test_concurrent_seeding_from_several_processes_seeds_once(tmp_path: Path) -> None:
    """Processes racing on a fresh file: exactly one seeds, none fails, no row is doubled."""
    path = tmp_path / "raced.db"
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        seeded = list(pool.map(inventory.ensure_seeded, [path] * 8))
    assert seeded.count(True) == 1
    assert dump(path) == dump(_seeded_copy(tmp_path))


def _seeded_copy(tmp_path: Path) -> Path:
    path = tmp_path / "reference.db"
    inventory.ensure_seeded(path)
    return path


def test_reset_restores_the_seed_and_clears_effects(db: Path) -> None:
    """reset() undoes stops and forgets notifications and actions (for demos and tests)."""
    inventory.ensure_seeded()
    with closing(inventory.connect()) as conn, inventory.transaction(conn):
        conn.execute("UPDATE resources SET status = 'stopped'")
        conn.execute(
            "INSERT INTO actions (idempotency_key, resource_id, action, reason, performed_at) "
            "VALUES ('k', 'prod-web-1', 'stop', 'test', 'now')"
        )
    inventory.reset()
    assert inventory.count_actions() == 0
    assert {r["status"] for r in query(db, "SELECT status FROM resources")} == {"running"}


# --- read-only tools -----------------------------------------------------------------------------


async def test_cost_breakdown_finds_the_gpu_cluster_as_the_top_increase(db: Path) -> None:
    """The fresh cluster drives the spike; the warehouse is the only other real increase."""
    result = await call(cost_breakdown, window_days=7)
    assert dump(db)["resources"], "the first tool call creates and seeds the database"
    top = result["top"]
    assert top[0]["name"] == CULPRIT
    assert top[0]["previous_usd"] == 0 and top[0]["change_pct"] is None
    assert 3300 < top[0]["current_usd"] < 3400  # ~$480/day for 7 days
    assert top[1]["name"] == WAREHOUSE and 6 <= top[1]["change_pct"] <= 10
    assert all(abs(e["change_pct"]) < 2 for e in top[2:])  # the rest is flat
    assert result["total_change_usd"] == pytest.approx(
        result["total_current_usd"] - result["total_previous_usd"], abs=0.01
    )
    assert 30 < result["total_change_pct"] < 50
    assert result["today"] == inventory.REFERENCE_DATE.isoformat()


async def test_utilization_marks_the_culprit_idle_and_the_warehouse_busy(db: Path) -> None:
    """idle is computed from the samples: ~2% GPU/CPU is idle, ~70% CPU is not."""
    idle = await call(resource_utilization, resource_id=resource_id(db, CULPRIT))
    busy = await call(resource_utilization, resource_id=resource_id(db, WAREHOUSE))
    assert idle["idle"] is True and idle["samples"] == 72
    assert idle["avg_gpu_pct"] < 5 and idle["avg_cpu_pct"] < 5 and idle["max_gpu_pct"] <= 3
    assert busy["idle"] is False and busy["avg_cpu_pct"] > 50 and busy["avg_gpu_pct"] is None
    recent = await call(resource_utilization, resource_id=resource_id(db, WAREHOUSE), hours=6)
    assert recent["samples"] == 6


async def test_describe_and_find_owner_return_the_inventory_rows(db: Path) -> None:
    """The culprit is ML Research's running cluster, owned by Priya Raman."""
    culprit = resource_id(db, CULPRIT)
    described = await call(describe_resource, resource_id=culprit)
    owner = await call(find_owner, resource_id=culprit)
    assert described["kind"] == "k8s_cluster" and described["status"] == "running"
    assert described["daily_cost_usd"] == 480.0 and described["age_days"] == 6
    assert owner["owner_name"] == "Priya Raman" and owner["team"] == "ML Research"
    assert owner["owner_email"] == "priya.raman@example.com"


async def test_unknown_resource_is_a_tool_error_the_model_can_read(db: Path) -> None:
    """A made-up id is reported to the model by name, with a hint where ids come from."""
    for tool in (describe_resource, resource_utilization, find_owner):
        with pytest.raises(ToolError, match=r"unknown resource 'gpu-train-99'.*cost_breakdown"):
            await call(tool, resource_id="gpu-train-99")


# --- side effects --------------------------------------------------------------------------------


async def test_stop_cluster_twice_with_the_same_key_stops_once(db: Path) -> None:
    """A retried stop (same idempotency key) returns the recorded outcome and acts once."""
    culprit = resource_id(db, CULPRIT)
    args = {"cluster_id": culprit, "reason": "idle at 2% GPU for 72h, $480/day"}
    first = await call(stop_cluster, "run-1/tool/3/call_0", **args)
    again = await call(stop_cluster, "run-1/tool/3/call_0", **args)
    assert first["stopped_by_this_call"] is True and first["duplicate_suppressed"] is False
    assert first["savings_per_day_usd"] == 480.0
    assert again["duplicate_suppressed"] is True
    assert {k: v for k, v in again.items() if k != "duplicate_suppressed"} == {
        k: v for k, v in first.items() if k != "duplicate_suppressed"
    }
    assert inventory.count_actions(resource_id=culprit) == 1
    assert query(db, "SELECT status FROM resources WHERE id = ?", culprit)[0]["status"] == "stopped"


async def test_stop_cluster_with_a_new_key_on_a_stopped_cluster_is_a_no_op(db: Path) -> None:
    """A second, distinct stop succeeds without acting and saves nothing new."""
    culprit = resource_id(db, CULPRIT)
    await call(stop_cluster, "run-1/tool/3/call_0", cluster_id=culprit, reason="idle for 72 hours")
    second = await call(
        stop_cluster, "run-2/tool/3/call_0", cluster_id=culprit, reason="idle for 72 hours"
    )
    assert second["already_stopped"] is True and second["stopped_by_this_call"] is False
    assert second["savings_per_day_usd"] == 0.0 and second["duplicate_suppressed"] is False
    assert inventory.count_actions(resource_id=culprit, action="stop") == 1
    assert query(db, "SELECT status FROM resources WHERE id = ?", culprit)[0]["status"] == "stopped"


async def test_stop_cluster_refuses_anything_but_a_cluster(db: Path) -> None:
    """Databases, VMs and buckets cannot be stopped; the refusal changes nothing."""
    warehouse = resource_id(db, WAREHOUSE)
    with pytest.raises(ToolError, match="is a database, not a k8s_cluster"):
        await call(stop_cluster, cluster_id=warehouse, reason="trying to stop a database")
    assert inventory.count_actions() == 0
    assert query(db, "SELECT status FROM resources WHERE id = ?", warehouse)[0]["status"] == (
        "running"
    )


async def test_notify_owner_dedupes_by_idempotency_key(db: Path) -> None:
    """Same key: one message, and the retry gets the original back. New key: a new message."""
    args = {"recipient_email": "priya.raman@example.com", "subject": "s", "message": "m"}
    first = await call(notify_owner, "run-1/tool/2/call_0", **args)
    again = await call(notify_owner, "run-1/tool/2/call_0", **args)
    assert first["duplicate_suppressed"] is False and again["duplicate_suppressed"] is True
    assert again["notification_id"] == first["notification_id"]
    assert inventory.count_notifications() == 1
    await call(notify_owner, "run-2/tool/2/call_0", **args)
    assert inventory.count_notifications(recipient="priya.raman@example.com") == 2


async def test_notify_owner_only_reaches_known_owners(db: Path) -> None:
    """An address the inventory does not know is refused and nothing is sent."""
    with pytest.raises(ToolError, match=r"unknown recipient 'ceo@example\.com'"):
        await call(notify_owner, recipient_email="ceo@example.com", subject="s", message="m")
    assert inventory.count_notifications() == 0


def test_every_argument_is_described_for_the_model() -> None:
    """The JSON schema the LLM sees has a description for every tool and every argument."""
    for tool in finops.tools:
        schema = tool.schema()
        assert schema.description
        for name, prop in schema.parameters["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert {t.name: t.effect for t in finops.tools if t.effect != "read_only"} == {
        "notify_owner": "side_effect",
        "stop_cluster": "side_effect",
    }


# --- the script, end to end on the real tools ----------------------------------------------------

Tamper = Callable[[ToolCall], str | None]
"""Returns an error to report instead of running the call, or None to run it."""


async def run_script(tamper: Tamper | None = None) -> list[Message]:
    """Drive finops_script as the workflow would: reply, run each call as a tool, repeat."""
    messages: list[Message] = [UserMessage(text=STANDARD_TASK)]
    script = FINOPS_SCRIPTS["finops"]
    for step in range(finops.max_steps):
        view = ScriptView(messages=list(messages))
        reply = script(view)
        assert script(view) == reply, "a re-issued turn must give the same reply"
        calls = [
            ToolCall(
                id=f"call_{step}_{i}",
                name=c.name,
                arguments=c.arguments
                if isinstance(c.arguments, str)
                else json.dumps(dict(c.arguments)),
            )
            for i, c in enumerate(reply.calls)
        ]
        messages.append(AssistantMessage(text=reply.text, tool_calls=calls))
        if not calls:
            return messages
        for tool_call in calls:
            tool = finops.tool(tool_call.name)
            assert tool is not None, tool_call.name
            error = tamper(tool_call) if tamper else None
            if error is None:
                try:
                    args = tool.args_model(**json.loads(tool_call.arguments))
                    key = f"run-1/tool/{step}/{tool_call.id}"
                    content = await tool.invoke(args, ctx(key))
                except ToolError as err:
                    error = str(err)
            messages.append(
                ToolResultMessage(
                    tool_call_id=tool_call.id,
                    name=tool_call.name,
                    content=error if error is not None else content,
                    is_error=error is not None,
                )
            )
    raise AssertionError(f"the script did not finish in {finops.max_steps} steps")


def calls_by_turn(messages: list[Message]) -> list[list[str]]:
    return [[c.name for c in m.tool_calls] for m in messages if isinstance(m, AssistantMessage)]


def all_calls(messages: list[Message]) -> list[str]:
    return [name for turn in calls_by_turn(messages) for name in turn]


def final_text(messages: list[Message]) -> str:
    last = messages[-1]
    assert isinstance(last, AssistantMessage) and not last.tool_calls
    return last.text


async def test_script_finds_notifies_stops_and_reports_on_the_real_tools(db: Path) -> None:
    """The scripted run picks the culprit from the data, tells its owner, stops it, reports."""
    messages = await run_script()
    assert calls_by_turn(messages) == [
        ["cost_breakdown"],
        ["describe_resource", "resource_utilization", "find_owner"],
        ["notify_owner"],
        ["stop_cluster"],
        [],
    ]
    culprit = resource_id(db, CULPRIT)
    stop_call = next(
        c
        for m in messages
        if isinstance(m, AssistantMessage)
        for c in m.tool_calls
        if c.name == "stop_cluster"
    )
    assert json.loads(stop_call.arguments)["cluster_id"] == culprit
    assert query(db, "SELECT status FROM resources WHERE id = ?", culprit)[0]["status"] == "stopped"
    assert inventory.count_actions() == 1 and inventory.count_notifications() == 1
    sent = query(db, "SELECT recipient, body FROM notifications")[0]
    assert sent["recipient"] == "priya.raman@example.com"
    assert "$480.00/day" in sent["body"] and "2.0% (max 3.0%)" in sent["body"]
    report = final_text(messages)
    for expected in ("Priya Raman", CULPRIT, "$480.00/day", "+39.5%", "analytics-warehouse"):
        assert expected in report, f"{expected!r} missing from report:\n{report}"


async def test_script_follows_the_data_not_a_hard_coded_name(db: Path) -> None:
    """Make a different cluster the spike: the script investigates and stops that one instead."""
    inventory.ensure_seeded()
    staging = resource_id(db, "staging-web")
    with closing(inventory.connect()) as conn, inventory.transaction(conn):
        conn.execute(
            "UPDATE daily_costs SET cost_usd = cost_usd * 20 WHERE resource_id = ? "
            "AND day >= '2026-11-14'",
            (staging,),
        )
        conn.execute("UPDATE utilization SET cpu_pct = 1.0 WHERE resource_id = ?", (staging,))
    messages = await run_script()
    assert calls_by_turn(messages)[-2] == ["stop_cluster"]
    assert inventory.count_actions(resource_id=staging, action="stop") == 1
    assert inventory.count_actions(resource_id=resource_id(db, CULPRIT)) == 0
    assert "Sofia Alvarez" in final_text(messages)


async def test_script_does_not_stop_a_busy_culprit(db: Path) -> None:
    """If the top increase is in use, the run reports honestly and touches nothing."""
    inventory.ensure_seeded()
    culprit = resource_id(db, CULPRIT)
    with closing(inventory.connect()) as conn, inventory.transaction(conn):
        conn.execute("UPDATE utilization SET gpu_pct = 85 WHERE resource_id = ?", (culprit,))
    messages = await run_script()
    assert "notify_owner" not in all_calls(messages)
    assert "stop_cluster" not in all_calls(messages)
    assert inventory.count_actions() == 0 and inventory.count_notifications() == 0
    assert "not idle" in final_text(messages)


async def test_script_skips_every_effect_when_the_owner_lookup_fails(db: Path) -> None:
    """A failed read means missing evidence: no notification, no stop, and the report says why."""

    def owner_lookup_fails(call: ToolCall) -> str | None:
        return "owner directory unavailable" if call.name == "find_owner" else None

    messages = await run_script(owner_lookup_fails)
    assert calls_by_turn(messages)[-1] == []
    assert inventory.count_actions() == 0 and inventory.count_notifications() == 0
    report = final_text(messages)
    assert "find_owner failed: owner directory unavailable" in report
    assert CULPRIT in report


async def test_script_does_not_stop_when_the_notification_fails(db: Path) -> None:
    """The owner must hear first: if notify_owner errors, the cluster keeps running."""

    def notify_fails(call: ToolCall) -> str | None:
        return "mail relay down" if call.name == "notify_owner" else None

    messages = await run_script(notify_fails)
    assert "stop_cluster" not in all_calls(messages)
    assert inventory.count_actions() == 0
    assert "notify_owner failed: mail relay down" in final_text(messages)
