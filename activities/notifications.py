"""The ``notify_escalation`` activity: tell the escalation list that an approval is overdue.

The embedded default delivers to a local outbox, one JSON line per notice in
``ESCALATION_OUTBOX`` (default ``.data/escalations.jsonl``), and logs it; a deployment replaces
``deliver`` with its pager, chat or mail integration. Delivery is deduplicated by the notice's
idempotency key, so a retried activity does not notify twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path

from temporalio import activity

from durable_agents.contracts.approvals import EscalationNotice

DEFAULT_OUTBOX = Path(".data") / "escalations.jsonl"


def outbox_path() -> Path:
    return Path(os.environ.get("ESCALATION_OUTBOX", DEFAULT_OUTBOX))


def deliver(notice: EscalationNotice, outbox: Path) -> bool:
    """Append ``notice`` unless its key is already there. Returns True if it was appended."""
    outbox.parent.mkdir(parents=True, exist_ok=True)
    with outbox.open("a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # two workers retrying one notice append it once
        file.seek(0)
        for line in file:
            if json.loads(line).get("idempotency_key") == notice.idempotency_key:
                return False
        file.write(notice.model_dump_json() + "\n")
        return True


class NotificationActivities:
    def __init__(self, outbox: Path | None = None) -> None:
        self._outbox = outbox

    @activity.defn(name="notify_escalation")
    async def notify_escalation(self, notice: EscalationNotice) -> bool:
        outbox = self._outbox or outbox_path()
        appended = await asyncio.to_thread(deliver, notice, outbox)
        activity.logger.warning(
            "approval %s of %s (%s) is overdue; escalated to %s; new deadline %s",
            notice.approval_id,
            notice.workflow_id,
            notice.tool,
            ", ".join(notice.recipients),
            notice.new_deadline.isoformat(),
        )
        return appended
