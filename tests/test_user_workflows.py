"""A user's own workflows on the library's API (``tests/user_workflows.py``), on a real server.

They run agents inline and as children, are approved by signal through the handlers they get
from ``AgentHost``, and write their own loop from the single steps.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentResult, AgentStatusView
from tests.composition_agents import VALID, Verdict
from tests.conftest import running_worker
from tests.user_workflows import (
    HandLoopResult,
    HandLoopWorkflow,
    ReviewInput,
    ReviewResult,
    ReviewWorkflow,
)

USER_WORKFLOWS = [ReviewWorkflow, HandLoopWorkflow]


async def pending(handle: WorkflowHandle[object, object]) -> AgentStatusView:
    """The ``status`` answer once an approval is pending."""
    for _ in range(300):
        view = await handle.query("status", result_type=AgentStatusView)
        if view.pending_approvals:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError("no approval became pending")


async def test_user_workflow_runs_agents_inline_and_as_a_child(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``ReviewWorkflow`` runs typed-first-time inline (typed output), test-adder inline,
    test-gatekeeper inline (its transfer waits for
    a human, approved by the ``approve`` signal the workflow got from ``AgentHost``) and
    test-adder again as a child workflow. Its history shows the inline calls with scoped
    activity ids and the child's start; the child has its own history and its parent link."""
    workflow_id = f"review-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, workflows=USER_WORKFLOWS):
        handle = await client.start_workflow(
            ReviewWorkflow.run,
            ReviewInput(task="add"),
            id=workflow_id,
            task_queue=task_queue,
        )
        view = await pending(handle)
        [approval] = view.pending_approvals
        assert approval.id == "apr-test-gatekeeper-1-1-0" and approval.tool == "transfer"
        assert [(a.label, a.status) for a in view.agents] == [
            ("typed-first-time-1", "completed"),
            ("test-adder-1", "completed"),
            ("test-gatekeeper-1", "running"),
        ]
        await handle.signal("approve", {"approver": "alice", "approval_id": approval.id})
        result: ReviewResult = await handle.result()
        final = await handle.query("status", result_type=AgentStatusView)
    assert result.verdict == Verdict(**VALID)  # typed output, validated in the workflow
    assert result.sums == "The sums are 3 and 42."
    assert result.child == "The sums are 3 and 42."
    # The approved transfer ran; the denied and constrained calls were refused, as in AgentWorkflow.
    assert result.transfer.startswith("Outcome: transfer: sent 10 to acct-1 | ")
    assert "'wipe' is not allowed" in result.transfer
    assert result.child_workflow_id == f"{workflow_id}/test-adder-2"
    assert {a.label: a.status for a in final.agents} == {
        "typed-first-time-1": "completed",
        "test-adder-1": "completed",
        "test-gatekeeper-1": "completed",
        "test-adder-2": "completed",
    }

    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert "test-adder-1:model-1" in scheduled and "test-gatekeeper-1:model-2" in scheduled
    assert any(a.startswith("test-gatekeeper-1:tool-1-") for a in scheduled)
    started = [
        e.start_child_workflow_execution_initiated_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    assert [(s.workflow_id, s.workflow_type.name) for s in started] == [
        (result.child_workflow_id, "AgentWorkflow")
    ]
    child = client.get_workflow_handle(result.child_workflow_id, result_type=AgentResult)
    assert (await child.result()).steps == 2
    assert (await child.describe()).parent_id == workflow_id


async def test_hand_written_loop_uses_the_single_steps(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """``HandLoopWorkflow`` makes one model call, one tool call under the agent's policy and
    one approval request, decided by the ``decide`` update; each call has a scoped key."""
    workflow_id = f"hand-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry, workflows=USER_WORKFLOWS):
        handle = await client.start_workflow(
            HandLoopWorkflow.run, "add", id=workflow_id, task_queue=task_queue
        )
        view = await pending(handle)
        [approval] = view.pending_approvals
        assert approval.tool == "publish" and approval.arguments["sum"]
        assert approval.id == "apr-test-adder-1-request-1"  # unique per request in a session
        await handle.execute_update(
            "decide", {"approver": "carol", "decision": "reject", "approval_id": approval.id}
        )
        result: HandLoopResult = await handle.result()
    assert result.reply == "Adding in parallel."
    assert '"sum": 3' in result.tool_result
    assert result.decision == "reject"
    history = await handle.fetch_history()
    keys = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert keys[:2] == ["test-adder-1:model-1", "test-adder-1:tool-1-call_1_0"]
