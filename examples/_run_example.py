"""Run an example workflow end to end from the command line (see ``examples.bill_review`` and
``examples.security_review``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle

from durable_agents.contracts import AgentStatusView, PendingApproval
from durable_agents.runtime.client import connect
from durable_agents.runtime.settings import TemporalSettings

POLL_SECONDS = 0.3

OnPoll = Callable[[WorkflowHandle[Any, Any]], Awaitable[None]]
"""Called on every poll while the workflow runs (to print its progress)."""
ShowApproval = Callable[[PendingApproval], str]
"""How a pending approval is shown (default: the tool and its arguments as JSON)."""


def _shown(approval: PendingApproval) -> str:
    return f"{approval.tool}({json.dumps(approval.arguments)})"


async def follow(
    client: Client,
    workflow: type,
    arg: object,
    approve_as: str | None,
    *,
    reject_as: str | None = None,
    result_type: type | None = None,
    on_poll: OnPoll | None = None,
    show_approval: ShowApproval = _shown,
) -> Any:
    """Serve ``workflow`` on a worker in this process, start it with ``arg`` and follow it to
    its result: each approval it asks for is shown, and approved as ``approve_as`` or rejected
    as ``reject_as`` (by signal), or left to you with the command that decides it."""
    from worker import build_worker

    settings = TemporalSettings.from_env()
    workflow_id = f"{workflow.__name__.lower()}-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings.task_queue, workflows=[workflow]):
        handle = await client.start_workflow(
            workflow.__name__,
            arg,
            id=workflow_id,
            task_queue=settings.task_queue,
            result_type=result_type,
        )
        url = settings.workflow_url(workflow_id)
        print(f"Started {workflow_id}" + (f": {url}" if url else ""))
        seen: set[str] = set()
        while (await handle.describe()).status.name == "RUNNING":  # type: ignore[union-attr]
            if on_poll is not None:
                await on_poll(handle)
            view = await handle.query("status", result_type=AgentStatusView)
            for approval in view.pending_approvals:
                if approval.id not in seen:
                    seen.add(approval.id)
                    await _decide(handle, approval, approve_as, reject_as, show_approval)
            await asyncio.sleep(POLL_SECONDS)
        if on_poll is not None:
            await on_poll(handle)
        return await handle.result()


async def _decide(
    handle: WorkflowHandle[Any, Any],
    approval: PendingApproval,
    approve_as: str | None,
    reject_as: str | None,
    show: ShowApproval,
) -> None:
    print(f"  approval {approval.id}: {show(approval)}")
    if approve_as:
        await handle.signal("approve", {"approver": approve_as, "approval_id": approval.id})
        print(f"  approved as {approve_as}")
    elif reject_as:
        signal = {"approver": reject_as, "approval_id": approval.id, "reason": "rejected"}
        await handle.signal("reject", signal)
        print(f"  rejected as {reject_as}")
    else:
        signal = {"approver": "you", "approval_id": approval.id}
        print(
            f"  approve with: temporal workflow signal --workflow-id {handle.id} "
            f"--name approve --input '{json.dumps(signal)}'"
        )


def main(workflow: type) -> None:
    parser = argparse.ArgumentParser(description=f"Run the {workflow.__name__} example.")
    parser.add_argument("text")
    parser.add_argument("--approve-as", help="approve pending approvals as NAME")
    args = parser.parse_args()

    async def run() -> None:
        client = await connect(TemporalSettings.from_env())
        print(await follow(client, workflow, args.text, args.approve_as))

    asyncio.run(run())
    os._exit(0)  # skip the SDK runtime's teardown, as starter.py does
