"""The flagship agent: a FinOps operator over the local cloud inventory (``tools.inventory``).

Given ``STANDARD_TASK`` it finds what drives a cost spike, identifies and notifies the owner,
stops the culprit if it is an idle Kubernetes cluster, and reports. With a real model the system
prompt drives that; under the offline ``scripted`` model ``finops_script`` does, and the script
does the real work too: which resource it investigates, whom it notifies and what it stops all
come from earlier tool results, never from names written into the script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from durable_agents.agents._definition import Agent
from durable_agents.contracts.approvals import ApprovalSettings, ToolRule
from durable_agents.testing import ScriptBook, ScriptedCall, ScriptedReply, ScriptView
from examples.finops.inventory import REFERENCE_DATE, UTILIZATION_HOURS
from examples.finops.tools import (
    FINOPS_TOOLS,
    IDLE_THRESHOLD_PCT,
)

STANDARD_TASK = (
    "Our cloud bill spiked this week. Find out why, tell the owner, and stop anything idle that "
    "is burning money."
)

WINDOW_DAYS = 7
"""The script compares the last week with the week before, as the standard task asks."""

MAX_SCRIPT_TURNS = 8
"""The happy path takes 5 replies; past this many the script reports instead of calling tools,
so a conversation that somehow never gets a result cannot loop until ``max_steps``."""

SYSTEM_PROMPT = f"""\
You are the FinOps operations agent for our cloud inventory. You find what is driving cloud \
spend, tell the people who own it, and stop waste, with evidence for every step.

Today is {REFERENCE_DATE.isoformat()} (the inventory's reference date). "This week" means the \
last 7 days ending today; compare it with the 7 days before.

How to work:
1. Call cost_breakdown (window_days=7 unless asked otherwise). The driver of a spike is the \
resource with the largest increase in USD, not in percent.
2. For that resource call describe_resource, resource_utilization and find_owner together, in \
one reply.
3. A resource is idle when resource_utilization reports idle=true (average CPU and GPU below \
{IDLE_THRESHOLD_PCT:g}% over the last {UTILIZATION_HOURS} hours). Busy resources are \
legitimate spend: report them, do not act on them.
4. Before acting on a resource, notify its owner with notify_owner at the owner_email from \
find_owner. Put the numbers in the message (cost this week and the week before, cost per day, \
average and maximum utilization), say what you are about to do, and how to undo it.
5. Stop something only when all of these hold: it is a k8s_cluster, it is running, it is idle, \
and its owner was notified successfully. Use stop_cluster with a reason that cites its \
utilization and cost. Never stop databases, VMs or buckets, and never act on a resource you \
have not checked in this conversation.
6. If a tool returns an error, read it and correct the call once. If you still cannot get what \
you need, do not act: report what is missing.
7. Do each side effect once. Do not resend a notification or stop a cluster again to make \
sure; the tool results already tell you what happened.

Finish with a short plain-text report: the spike (total this week and the week before, in $ and \
%), the driver (name, id, kind, team, cost), its utilization, the owner, the notification sent, \
the action taken with the savings per day, and anything you deliberately did not do and why. \
Use only numbers that came from tool results."""

_INVESTIGATION = ("describe_resource", "resource_utilization", "find_owner")


# --- reading earlier results ---------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _usd(amount: Any) -> str:
    return f"${float(amount):,.2f}" if isinstance(amount, int | float) else "$?"


def _signed_usd(amount: Any) -> str:
    if not isinstance(amount, int | float):
        return "$?"
    return f"{'-' if amount < 0 else '+'}${abs(float(amount)):,.2f}"


def _pct(value: Any) -> str:
    return f"{float(value):+.1f}%" if isinstance(value, int | float) else "new this window"


def _label(entry: dict[str, Any]) -> str:
    """A resource's name, plus its id when the two differ."""
    name, rid = entry.get("name"), entry.get("resource_id")
    return str(name) if name == rid or rid is None else f"{name} ({rid})"


def _last_error(view: ScriptView, tool_name: str) -> str | None:
    errors = [m.content for m in view.errors() if m.name == tool_name]
    return errors[-1] if errors else None


def _failure(view: ScriptView, tool_name: str) -> str:
    error = _last_error(view, tool_name)
    return f"{tool_name} failed: {error}" if error else f"{tool_name} returned nothing usable"


@dataclass
class _Findings:
    """What the conversation has established so far, parsed from tool results."""

    breakdown: dict[str, Any] | None = None
    culprit: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    owner: dict[str, Any] | None = None
    notification: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None
    not_done: list[str] = field(default_factory=list)
    """Steps deliberately skipped and why; the report lists them."""

    @classmethod
    def read(cls, view: ScriptView) -> _Findings:
        found = cls(breakdown=_obj(view.result_json("cost_breakdown")))
        if found.breakdown is not None:
            found.culprit = _top_increase(found.breakdown)
        culprit_id = found.culprit["resource_id"] if found.culprit else None

        def about_culprit(tool_name: str) -> dict[str, Any] | None:
            # Only results about the resource we are investigating count as evidence for it.
            result = _obj(view.result_json(tool_name))
            if result is None or result.get("resource_id") != culprit_id:
                return None
            return result

        found.resource = about_culprit("describe_resource")
        found.usage = about_culprit("resource_utilization")
        found.owner = about_culprit("find_owner")
        found.notification = _obj(view.result_json("notify_owner"))
        stop = _obj(view.result_json("stop_cluster"))
        found.stop = stop if stop is not None and stop.get("cluster_id") == culprit_id else None
        return found

    @property
    def idle(self) -> bool:
        return self.usage is not None and self.usage.get("idle") is True

    @property
    def stoppable(self) -> bool:
        return (
            self.resource is not None
            and self.resource.get("kind") == "k8s_cluster"
            and self.resource.get("status") == "running"
        )


def _top_increase(breakdown: dict[str, Any]) -> dict[str, Any] | None:
    """The entry with the largest increase in USD (cost_breakdown sorts them), if any rose."""
    entries = [e for e in breakdown.get("top") or [] if isinstance(e, dict)]
    rising = [e for e in entries if isinstance(e.get("change_usd"), int | float)]
    best = max(rising, key=lambda e: e["change_usd"], default=None)
    if best is None or best["change_usd"] <= 0 or not isinstance(best.get("resource_id"), str):
        return None
    return best


# --- the script ----------------------------------------------------------------------------------


def finops_script(view: ScriptView) -> ScriptedReply:
    """Next reply of the offline FinOps agent, chosen from what the conversation already holds.

    The step is the first one whose result is not in the conversation yet, so a re-issued turn
    (the same conversation sent again) gets the same reply, and the turn index only caps the run.
    Every destructive step is skipped, with the reason in the final report, unless the evidence
    for it is present and error-free: culprit found, resource/utilization/owner known, culprit
    idle, a running k8s_cluster, owner notified.
    """
    if view.turn >= MAX_SCRIPT_TURNS:
        found = _Findings.read(view)
        found.not_done.append(f"stopped after {view.turn} replies without finishing the steps")
        return _report(found)

    if not view.results("cost_breakdown"):
        return ScriptedReply(
            text="I'll compare this week's spend with the week before to find what is driving "
            "the spike, then check the biggest increase: what it is, whether it is in use, and "
            "who owns it.",
            calls=[ScriptedCall("cost_breakdown", {"window_days": WINDOW_DAYS})],
        )

    found = _Findings.read(view)
    if found.breakdown is None:
        found.not_done.append(
            f"{_failure(view, 'cost_breakdown')}; without cost data I did not act"
        )
        return _report(found)
    if found.culprit is None:
        found.not_done.append("no resource's cost increased, so there was nothing to act on")
        return _report(found)

    culprit = found.culprit
    if not all(view.results(name) for name in _INVESTIGATION):
        args = {"resource_id": culprit["resource_id"]}
        return ScriptedReply(
            text=f"The largest increase is {_label(culprit)}: "
            f"{_usd(culprit.get('current_usd'))} vs {_usd(culprit.get('previous_usd'))} the "
            "week before. Checking what it is, how busy it is, and who owns it.",
            calls=[ScriptedCall(name, args) for name in _INVESTIGATION],
        )

    missing = [
        name
        for name, result in zip(
            _INVESTIGATION, (found.resource, found.usage, found.owner), strict=True
        )
        if result is None
    ]
    if missing:
        problems = "; ".join(_failure(view, name) for name in missing)
        found.not_done.append(f"{problems}; without that evidence I notified no one")
        return _report(found)
    if found.resource is not None and found.resource.get("status") != "running":
        found.not_done.append("it is already stopped, so there was nothing to stop")
        return _report(found)
    if found.usage is not None and found.usage.get("idle") is None:
        found.not_done.append(
            "it reports no CPU/GPU metrics, so I cannot tell whether it is idle: I notified no "
            "one and stopped nothing"
        )
        return _report(found)
    if not found.idle:
        found.not_done.append(
            "it is not idle, so this looks like legitimate spend: I notified no one and stopped "
            "nothing"
        )
        return _report(found)

    if not view.results("notify_owner"):
        return _notify(found)
    if found.notification is None:
        found.not_done.append(
            f"{_failure(view, 'notify_owner')}; the owner was not told, so I stopped nothing"
        )
        return _report(found)

    if not found.stoppable:
        found.not_done.append(
            f"it is a {found.resource.get('kind') if found.resource else 'resource'}, and I only "
            "stop Kubernetes clusters: the owner has been asked to review it"
        )
        return _report(found)
    if not view.results("stop_cluster"):
        return _stop(found)
    if found.stop is None:
        found.not_done.append(f"{_failure(view, 'stop_cluster')}; the cluster is still running")
    return _report(found)


def _utilization_text(usage: dict[str, Any]) -> str:
    parts = []
    if usage.get("avg_gpu_pct") is not None:
        parts.append(f"GPU avg {usage['avg_gpu_pct']}% (max {usage.get('max_gpu_pct')}%)")
    parts.append(f"CPU avg {usage.get('avg_cpu_pct')}% (max {usage.get('max_cpu_pct')}%)")
    return ", ".join(parts)


def _notify(found: _Findings) -> ScriptedReply:
    # finops_script only gets here with all of these established; the assert narrows the types.
    assert found.breakdown and found.culprit and found.resource and found.usage and found.owner
    b, c, r, u, o = found.breakdown, found.culprit, found.resource, found.usage, found.owner
    first_name = str(o.get("owner_name", "")).split(" ")[0] or "there"
    daily = _usd(r.get("daily_cost_usd"))
    plan = (
        f"I am stopping it now to save about {daily}/day. Nothing is deleted: you can restart "
        "it whenever you need it."
        if found.stoppable
        else "I can only stop Kubernetes clusters, so please review it and shut it down if it "
        "is not needed."
    )
    message = (
        f"Hi {first_name},\n\n"
        f"Our cloud spend was {_usd(b.get('total_current_usd'))} over the last "
        f"{b.get('window_days')} days vs {_usd(b.get('total_previous_usd'))} the "
        f"{b.get('window_days')} days before ({_pct(b.get('total_change_pct'))}). The biggest "
        f"driver is {_label(r)} (a {r.get('kind')} of {r.get('team')} "
        f"in {r.get('region')}): {_usd(c.get('current_usd'))} this window vs "
        f"{_usd(c.get('previous_usd'))} before, at {daily}/day since it was launched on "
        f"{r.get('launched_on')}.\n\n"
        f"Over the last {u.get('hours')} hours: {_utilization_text(u)}. It looks idle.\n\n"
        f"{plan} If it should keep running, reply here or in {o.get('slack_channel')}.\n\n"
        "- FinOps agent"
    )
    verb = "stopping it" if found.stoppable else "please review"
    return ScriptedReply(
        text=f"{r.get('name')} is idle ({_utilization_text(u)}) and costs {daily}/day. "
        f"Telling its owner, {o.get('owner_name')}, before I act.",
        calls=[
            ScriptedCall(
                "notify_owner",
                {
                    "recipient_email": o.get("owner_email"),
                    "subject": f"{r.get('name')} is idle and costs {daily}/day: {verb}",
                    "message": message,
                    "channel": "email",
                },
            )
        ],
    )


def _stop(found: _Findings) -> ScriptedReply:
    # As in _notify: established by finops_script before it asks for the stop.
    assert found.culprit and found.resource and found.usage and found.owner and found.notification
    c, r, u, o = found.culprit, found.resource, found.usage, found.owner
    reason = (
        f"Idle: {_utilization_text(u)} over the last {u.get('hours')}h while costing "
        f"{_usd(r.get('daily_cost_usd'))}/day ({_usd(c.get('current_usd'))} this week, the "
        f"largest increase in the bill). Owner {o.get('owner_name')} notified "
        f"(notification #{found.notification.get('notification_id')})."
    )
    return ScriptedReply(
        text=f"{o.get('owner_name')} has been notified. Stopping {r.get('name')}.",
        calls=[
            ScriptedCall("stop_cluster", {"cluster_id": r.get("resource_id"), "reason": reason})
        ],
    )


def _report(found: _Findings) -> ScriptedReply:
    """The final, tool-free reply: every established fact, and every step not taken and why."""
    lines: list[str] = []
    b = found.breakdown
    if b is not None:
        lines.append(
            f"FinOps report, {b.get('window_days')} days ending {b.get('today')}\n\n"
            f"Spike: spend was {_usd(b.get('total_current_usd'))} vs "
            f"{_usd(b.get('total_previous_usd'))} the {b.get('window_days')} days before: "
            f"{_signed_usd(b.get('total_change_usd'))} ({_pct(b.get('total_change_pct'))})."
        )
    else:
        lines.append("FinOps report")
    c = found.culprit
    if c is not None:
        r = found.resource or {}
        where = f", a {r['kind']} of {r.get('team')} in {r.get('region')}" if "kind" in r else ""
        launched = (
            f" Launched {r['launched_on']}; {_usd(r.get('daily_cost_usd'))}/day."
            if "launched_on" in r
            else ""
        )
        lines.append(
            f"Driver: {_label(c)}{where}: {_usd(c.get('current_usd'))} "
            f"vs {_usd(c.get('previous_usd'))} ({_signed_usd(c.get('change_usd'))}, "
            f"{_pct(c.get('change_pct'))}).{launched}"
        )
    if found.usage is not None:
        verdict = "idle" if found.idle else "in use"
        lines.append(
            f"Utilization, last {found.usage.get('hours')}h: {_utilization_text(found.usage)}: "
            f"{verdict}."
        )
    if found.owner is not None:
        o = found.owner
        lines.append(
            f"Owner: {o.get('owner_name')} <{o.get('owner_email')}>, {o.get('team')}, Slack "
            f"{o.get('slack_channel')}."
        )
    if found.notification is not None:
        n = found.notification
        lines.append(
            f"Notification: {n.get('channel')} sent to {n.get('recipient')} "
            f'(notification #{n.get("notification_id")}, "{n.get("subject")}").'
        )
    if found.stop is not None:
        s = found.stop
        if s.get("stopped_by_this_call"):
            saved = s.get("savings_per_day_usd")
            weekly = _usd(saved * 7) if isinstance(saved, int | float) else "$?"
            lines.append(
                f"Action: stopped {s.get('name')} (action #{s.get('action_id')}), saving "
                f"{_usd(saved)}/day (about {weekly}/week)."
            )
        else:
            lines.append(f"Action: none needed, {s.get('name')} was already stopped.")
    lines.extend(f"Not done: {reason}." for reason in found.not_done)
    others = _other_increases(found)
    if others:
        lines.append(f"Smaller increases, not acted on: {others}.")
    return ScriptedReply(text="\n".join(lines))


def _other_increases(found: _Findings) -> str:
    if found.breakdown is None or found.culprit is None:
        return ""
    rest = [
        e
        for e in found.breakdown.get("top") or []
        if isinstance(e, dict)
        and e.get("resource_id") != found.culprit["resource_id"]
        and isinstance(e.get("change_usd"), int | float)
        and e["change_usd"] > 0
        # Day-to-day jitter moves flat resources by a percent or so; only name real changes.
        and (e.get("change_pct") is None or e["change_pct"] >= 5)
    ]
    return "; ".join(
        f"{e.get('name')} {_signed_usd(e['change_usd'])} ({_pct(e.get('change_pct'))})"
        for e in rest
    )


finops = Agent(
    name="finops",
    order=0,
    description="FinOps operator: finds what drives a cloud cost spike in the local inventory, "
    "notifies the owner, and stops idle Kubernetes clusters.",
    system_prompt=SYSTEM_PROMPT,
    tools=FINOPS_TOOLS,
    model=None,
    max_steps=12,
    policy={
        # Destructive: a named human must approve, with a deadline and escalation.
        "stop_cluster": ToolRule(
            action="require_approval",
            reason="stopping a cluster interrupts whoever uses it",
        ),
        "notify_owner": ToolRule(allowed_values={"channel": ["email", "slack"]}),
    },
    approvals=ApprovalSettings(
        timeout=timedelta(hours=4),
        escalate_to=["finops-oncall@example.com"],
        escalation_timeout=timedelta(hours=24),
        on_timeout="reject",
    ),
)


FINOPS_SCRIPTS = ScriptBook({"finops": finops_script})
"""What ``finops`` does on the offline ``scripted`` model; discovered along with the agent."""
