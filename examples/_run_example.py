"""Run an example workflow end to end from the command line (see ``examples.bill_review``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

from temporalio.client import Client

from durable_agents.contracts import AgentStatusView
from durable_agents.runtime.client import connect
from durable_agents.runtime.settings import TemporalSettings


async def follow(client: Client, workflow: type, text: str, approve_as: str | None) -> None:
    from worker import build_worker

    settings = TemporalSettings.from_env()
    workflow_id = f"{workflow.__name__.lower()}-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings.task_queue, workflows=[workflow]):
        handle = await client.start_workflow(
            workflow.__name__, text, id=workflow_id, task_queue=settings.task_queue
        )
        print(f"Started {workflow_id}: {settings.workflow_url(workflow_id)}")
        seen: set[str] = set()
        while (await handle.describe()).status.name == "RUNNING":  # type: ignore[union-attr]
            view = await handle.query("status", result_type=AgentStatusView)
            for approval in view.pending_approvals:
                if approval.id in seen:
                    continue
                seen.add(approval.id)
                signal = {"approver": approve_as or "you", "approval_id": approval.id}
                print(
                    f"  approval {approval.id}: {approval.tool}({json.dumps(approval.arguments)})"
                )
                if approve_as:
                    await handle.signal("approve", signal)
                    print(f"  approved as {approve_as}")
                else:
                    print(
                        f"  approve with: temporal workflow signal --workflow-id {workflow_id} "
                        f"--name approve --input '{json.dumps(signal)}'"
                    )
            await asyncio.sleep(0.3)
        print(await handle.result())


def main(workflow: type) -> None:
    parser = argparse.ArgumentParser(description=f"Run the {workflow.__name__} example.")
    parser.add_argument("text")
    parser.add_argument("--approve-as", help="approve pending approvals as NAME")
    args = parser.parse_args()

    async def run() -> None:
        client = await connect(TemporalSettings.from_env())
        await follow(client, workflow, args.text, args.approve_as)

    asyncio.run(run())
    os._exit(0)  # skip the SDK runtime's teardown, as starter.py does
