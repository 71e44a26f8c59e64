"""The timings that decide how soon a run resumes after its worker dies, applied in one place
for every run, child and worker that uses this library (values and trade-offs:
``runner/policies.py``).

``ResumeTimings`` is a client and worker interceptor: a workflow started through a client that
has it (``runtime.client.connect``, or any client given ``AgentsPlugin``) and a child started by
a workflow on a worker that has it get ``WORKFLOW_TASK_TIMEOUT`` as their workflow-task timeout
unless the starter chose one (Temporal's default is 10 s). Continue-as-new keeps the run's.
``AgentsPlugin`` also gives its workers ``STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT`` unless they
set another.

The timeout is a field of the start command, not a command of its own, so histories recorded
before it replay unchanged.
"""

from __future__ import annotations

from typing import Any

import temporalio.client
import temporalio.worker
from temporalio.client import (
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)
from temporalio.worker import (
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ChildWorkflowHandle

from durable_agents.runner.policies import WORKFLOW_TASK_TIMEOUT


class ResumeTimings(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Runs and children started without a ``task_timeout`` get ``WORKFLOW_TASK_TIMEOUT``."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        if input.task_timeout is None:
            input.task_timeout = WORKFLOW_TASK_TIMEOUT
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        if input.start_workflow_input.task_timeout is None:
            input.start_workflow_input.task_timeout = WORKFLOW_TASK_TIMEOUT
        return await super().start_update_with_start_workflow(input)


class _WorkflowInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> ChildWorkflowHandle[Any, Any]:
        if input.task_timeout is None:
            input.task_timeout = WORKFLOW_TASK_TIMEOUT
        return await super().start_child_workflow(input)
