"""Time travel on a real dev server: ``starter.py steps`` and ``fork``, and ``temporal workflow
reset``, with the effects ledger deciding what acts again.

The original runs are the flagship ``finops`` agent on the offline scripted model: step 1
``cost_breakdown``, step 2 the three investigation tools, step 3 ``notify_owner``, step 4 the
gated ``stop_cluster``, step 5 the report. Clients and workers use the project's converter with a
local payload store, as ``starter.py`` and ``worker.py`` do, so the conversations the history
reader decodes are offloaded ones.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from durable_agents.agents import AgentRegistry
from durable_agents.cli.fork import conversation_after
from durable_agents.cli.history import RunHistory, read_run
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView, PendingApproval
from durable_agents.contracts.approvals import DecideRequest, DecideResult
from durable_agents.runtime.devserver import find_temporal_cli
from examples.finops import inventory
from examples.finops.agent import STANDARD_TASK
from tests.conftest import running_worker
from tests.test_cli import address, run_cli

STOP_STEP = 4
"""The step at which the scripted finops agent asks for ``stop_cluster``."""


def cli_env(client: Client, task_queue: str, payload_dir: Path) -> dict[str, str]:
    """``starter.py`` against the test server, reading the workers' payload store."""
    return {
        "TEMPORAL_ADDRESS": address(client),
        "AGENTS_TASK_QUEUE": task_queue,
        "PAYLOAD_STORE": "local",
        "PAYLOAD_STORE_DIR": str(payload_dir),
    }


async def pending_approval(handle: WorkflowHandle[Any, Any]) -> PendingApproval:
    for _ in range(400):
        view = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            [approval] = view.pending_approvals
            return approval
        await asyncio.sleep(0.05)
    raise AssertionError(f"no approval became pending: {view}")


async def approve(handle: WorkflowHandle[Any, Any], approver: str) -> PendingApproval:
    approval = await pending_approval(handle)
    await handle.execute_update(
        "decide",
        DecideRequest(approval_id=approval.id, approver=approver, decision="approve"),
        result_type=DecideResult,
    )
    return approval


async def finops_run(client: Client, task_queue: str) -> tuple[str, AgentResult]:
    """A finops run to its end, its stop approved by alice."""
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(agent="finops", task=STANDARD_TASK),
        id=f"finops-{uuid.uuid4()}",
        task_queue=task_queue,
        result_type=AgentResult,
    )
    await approve(handle, "alice")
    result = await handle.result()
    assert result.status == "completed", result.error
    return handle.id, result


def stop_call(run: RunHistory) -> dict[str, Any]:
    [step] = [s for s in run.steps() if any(c.name == "stop_cluster" for c in s.tool_calls)]
    [call] = step.tool_calls
    full = run.tool_results(step.step)[call.call_id].content  # the preview is cut short
    return {"step": step.step, "key": call.idempotency_key, "result": json.loads(full)}


async def test_steps_lists_model_text_tool_calls_and_the_approval(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """``starter.py steps ID --json`` reads a finished finops run back from history: every
    step's model and text, its tool calls with result previews and keys, and alice's approval
    of the stop."""
    async with running_worker(stored_client, task_queue, registry):
        workflow_id, result = await finops_run(stored_client, task_queue)
    done = await run_cli(
        sys.executable, "starter.py", "steps", workflow_id, "--json",
        env=cli_env(stored_client, task_queue, payload_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    steps = view["steps"]
    assert [s["step"] for s in steps] == list(range(1, result.steps + 1))
    assert view["agent"] == "finops" and view["status"] == "completed"
    assert [c["name"] for c in steps[0]["tool_calls"]] == ["cost_breakdown"]
    assert {c["name"] for c in steps[1]["tool_calls"]} == {
        "describe_resource", "resource_utilization", "find_owner",
    }  # fmt: skip
    stop = steps[STOP_STEP - 1]
    [call] = stop["tool_calls"]
    assert call["name"] == "stop_cluster" and not call["is_error"]
    assert '"stopped_by_this_call": true' in call["result_preview"]
    assert call["idempotency_key"].startswith(f"{workflow_id}/")
    assert stop["approvals"] == [
        {"id": f"apr-{STOP_STEP}-0", "tool": "stop_cluster", "decision": "approve",
         "approver": "alice", "comment": ""},
    ]  # fmt: skip
    assert steps[-1]["tool_calls"] == [] and steps[-1]["text"] == result.output
    assert all(s["model"] == "scripted" for s in steps)

    text = await run_cli(
        sys.executable, "starter.py", "steps", workflow_id,
        env=cli_env(stored_client, task_queue, payload_dir),
    )  # fmt: skip
    assert f"approval apr-{STOP_STEP}-0 (stop_cluster): approved by alice" in text.stdout
    assert "-> cost_breakdown(" in text.stdout


async def test_fork_before_the_stop_waits_for_approval_and_acts_with_new_keys(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """Forked at the step before the stop, the new run asks for ``stop_cluster`` again and
    waits for a human; approved, it runs the tool with a new idempotency key, so the ledger
    does not answer for it: the tool itself finds the cluster already stopped (a second,
    no-op action). The fork links to its origin in its memo and input."""
    env = cli_env(stored_client, task_queue, payload_dir)
    async with running_worker(stored_client, task_queue, registry):
        workflow_id, _ = await finops_run(stored_client, task_queue)
        original = await read_run(stored_client, workflow_id)
        fork_id = f"fork-{uuid.uuid4()}"
        done = await run_cli(
            sys.executable, "starter.py", "fork", workflow_id, "--at-step", str(STOP_STEP - 1),
            "--id", fork_id, "--no-follow", "--json", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        handle = stored_client.get_workflow_handle(fork_id, result_type=AgentResult)
        approval = await pending_approval(handle)
        assert (approval.tool, approval.step) == ("stop_cluster", STOP_STEP)
        waiting = await read_run(stored_client, fork_id)
        [pending_step] = waiting.view().steps
        assert pending_step.step == STOP_STEP
        assert [(a.id, a.decision) for a in pending_step.approvals] == [(approval.id, None)]
        assert inventory.count_actions(action="stop") == 1  # nothing acted before approval
        await approve(handle, "bob")
        result = await handle.result()
        memo = await (await handle.describe()).memo()
    forked = await read_run(stored_client, fork_id)

    assert json.loads(done.stdout)["forked_from"]["step"] == STOP_STEP - 1
    assert result.status == "completed"
    assert memo["forked_from"] == {
        "workflow_id": workflow_id, "run_id": original.run_ids[0], "step": STOP_STEP - 1,
    }  # fmt: skip
    assert forked.input.forked_from is not None and forked.input.forked_from.step == 3
    before, after = stop_call(original), stop_call(forked)
    assert before["step"] == after["step"] == STOP_STEP
    assert after["key"] != before["key"] and after["key"].startswith(f"{fork_id}/")
    assert after["result"]["already_stopped"] is True
    assert after["result"]["stopped_by_this_call"] is False
    assert after["result"]["duplicate_suppressed"] is False  # a new effect, not a replay
    assert inventory.count_actions(action="stop") == 1
    assert inventory.count_actions(action="stop_noop_already_stopped") == 1
    assert inventory.count_notifications() == 1  # the fork starts after the notification
    [record] = result.approvals
    assert (record.decision, record.approver) == ("approve", "bob")
    assert "was already stopped" in result.output


async def test_edit_message_changes_what_the_forks_model_sees(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """``--task`` and ``--edit-message K=TEXT`` edit the conversation the fork starts from:
    its first model request (in its history) carries the edited messages, and ``steps
    --conversation N`` numbers the messages as ``--edit-message`` counts them. Forked before
    the investigation, the fork investigates again and finds the cluster already stopped."""
    env = cli_env(stored_client, task_queue, payload_dir)
    async with running_worker(stored_client, task_queue, registry):
        workflow_id, _ = await finops_run(stored_client, task_queue)
        listing = await run_cli(
            sys.executable, "starter.py", "steps", workflow_id, "--conversation", "1", env=env
        )
        assert "[0] user" in listing.stdout and "[2] tool" in listing.stdout, listing.stdout
        fork_id = f"fork-{uuid.uuid4()}"
        done = await run_cli(
            sys.executable, "starter.py", "fork", workflow_id, "--at-step", "1",
            "--task", "Only look at last week's bill.",
            "--edit-message", "1=Let me look at the breakdown first.",
            "--id", fork_id, "--no-follow", env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        # It goes on from there against today's inventory: the cluster is stopped by now.
        result = await stored_client.get_workflow_handle(fork_id, result_type=AgentResult).result()
    forked = await read_run(stored_client, fork_id)
    original = await read_run(stored_client, workflow_id)
    first = forked.turns[min(forked.turns)]
    assert first.request.step == 2
    sent = first.request.messages
    assert sent[0].role == "user" and sent[0].text == "Only look at last week's bill."
    assert sent[1].role == "assistant" and sent[1].text == "Let me look at the breakdown first."
    assert sent[1].tool_calls == original.turns[1].response.tool_calls
    assert sent[2:] == conversation_after(original, 1)[2:]
    assert forked.input.task == "Only look at last week's bill."
    assert result.status == "completed" and "already stopped" in result.output


async def test_steps_span_continue_as_new(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """A run that continued as new every 2 steps reads as one list of steps over its chain of
    runs, oldest first, and a fork can start from a step made in a later run."""
    async with running_worker(stored_client, task_queue, registry):
        handle = await stored_client.start_workflow(
            "AgentWorkflow",
            AgentInput(agent="soak", task="steps=5 bytes=50", continue_as_new_after_steps=2),
            id=f"soak-{uuid.uuid4()}",
            task_queue=task_queue,
            result_type=AgentResult,
        )
        result = await handle.result()
    run = await read_run(stored_client, handle.id)
    steps = run.steps()
    assert result.runs == 3 and len(run.run_ids) == 3
    assert [s.step for s in steps] == list(range(1, result.steps + 1))
    assert [s.run_id for s in steps] == [run.run_ids[(n - 1) // 2] for n in range(1, 7)]
    assert all(len(s.tool_calls) == 1 and s.tool_calls[0].result_preview for s in steps[:5])
    assert run.input.task == "steps=5 bytes=50" and run.input.carry is None
    after_three = conversation_after(run, 3)
    assert len(after_three) == 1 + 3 * 2  # the task, then a call and its result per step


async def stop_scheduled_by(client: Client, workflow_id: str) -> int:
    """The id of the workflow task that scheduled the ``stop_cluster`` activity."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_id.startswith(f"tool-{STOP_STEP}-"):
                return attributes.workflow_task_completed_event_id
    raise AssertionError("no stop_cluster activity in history")


async def test_reset_reruns_but_the_ledger_keeps_the_stop_from_happening_twice(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``temporal workflow reset --event-id`` to the workflow task that scheduled the stop (after
    alice approved it) re-runs a completed finops run from there: same workflow id and first
    run id, so the same idempotency key, and the ledger answers the stop with what it did the
    first time (``duplicate_suppressed``): one stop in the inventory, the same report."""
    temporal = find_temporal_cli()
    async with running_worker(stored_client, task_queue, registry):
        workflow_id, first_result = await finops_run(stored_client, task_queue)
        before = await read_run(stored_client, workflow_id)
        event_id = await stop_scheduled_by(stored_client, workflow_id)
        reset = await run_cli(
            temporal, "workflow", "reset", "--address", address(stored_client),
            "--workflow-id", workflow_id, "--event-id", str(event_id), "--reason", "re-run",
        )  # fmt: skip
        assert reset.returncode == 0, reset.stderr
        handle = stored_client.get_workflow_handle(workflow_id, result_type=AgentResult)
        result = await handle.result()
    after = await read_run(stored_client, workflow_id)

    assert after.run_ids[-1] != before.run_ids[-1]
    assert result.status == "completed"
    again, first = stop_call(after), stop_call(before)
    assert again["key"] == first["key"]
    assert again["result"]["duplicate_suppressed"] is True
    assert again["result"]["action_id"] == first["result"]["action_id"]
    assert inventory.count_actions() == 1 and inventory.count_notifications() == 1
    assert result.output == first_result.output
    [record] = result.approvals  # the approval before the reset point stands
    assert (record.decision, record.approver) == ("approve", "alice")


async def test_reset_to_the_start_rereads_the_world(
    stored_client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``--type FirstWorkflowTask`` re-runs every step: read-only tools read the inventory as
    it is now (the cluster is stopped), so the re-run takes another path, and no effect is
    performed again."""
    temporal = find_temporal_cli()
    async with running_worker(stored_client, task_queue, registry):
        workflow_id, _ = await finops_run(stored_client, task_queue)
        reset = await run_cli(
            temporal, "workflow", "reset", "--address", address(stored_client),
            "--workflow-id", workflow_id, "--type", "FirstWorkflowTask", "--reason", "re-run",
        )  # fmt: skip
        assert reset.returncode == 0, reset.stderr
        result = await stored_client.get_workflow_handle(
            workflow_id, result_type=AgentResult
        ).result()
    assert "already stopped, so there was nothing to stop" in result.output
    assert inventory.count_actions() == 1 and inventory.count_notifications() == 1
