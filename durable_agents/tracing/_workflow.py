"""Workflow-side spans: ``invoke_agent {agent}`` around an agent run, ``approval {tool}`` for a
human decision. Deterministic code: no I/O, no clock but ``workflow.time_ns()``.

Replay safety comes from the SDK's ``ReplaySafeTracerProvider`` (``create_tracer_provider``):
span ids come from the workflow's deterministic random, and a span is never *ended* (so never
exported) while the workflow replays history, nor when its workflow task fails. A run that a
new worker resumes after a crash re-creates its open spans with the same ids and ends them once,
live.

The helpers only trace workflows on a worker with the tracing plugins (``TracedWorkflow``
marks them): a process-wide tracer provider that some other code set up, replay-safe or not,
never sees a span from an untraced worker's workflows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio import workflow
from temporalio.worker import ExecuteWorkflowInput, WorkflowInboundInterceptor
from temporalio.workflow import ContinueAsNewError

from durable_agents.contracts import AgentSpec, PendingApproval, Usage
from durable_agents.contracts.approvals import DecideRequest
from durable_agents.tracing import _attributes as a

_traced: ContextVar[bool] = ContextVar("durable_agents_traced_workflow", default=False)
"""Set in the workflow's main task (and so inherited by the tasks it starts) on traced workers."""


class TracedWorkflow(WorkflowInboundInterceptor):
    """Marks the workflow as traced: ``agent_span`` and ``trace_approval`` make spans in it."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        _traced.set(True)
        return await self.next.execute_workflow(input)


class AgentRunView(Protocol):
    """What ``agent_span`` reads from the run it traces (``AgentLoop`` has it)."""

    @property
    def agent(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def spec(self) -> AgentSpec | None: ...
    @property
    def status(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def runs(self) -> int: ...
    @property
    def tool_calls_total(self) -> int: ...


def _outcome(run: AgentRunView, status: str) -> a.Attributes:
    attributes: a.Attributes = {
        a.RUN_STATUS: status,
        a.RUN_STEPS: run.steps,
        a.RUN_TOOL_CALLS: run.tool_calls_total,
        a.RUN_NUMBER: run.runs,
        a.COST_USD: run.cost_usd,
        **a.usage_attributes(run.usage),
    }
    if run.spec is not None:
        provider, model = a.split_model(run.spec.model)
        attributes.update({a.PROVIDER: provider, a.REQUEST_MODEL: model})
    return attributes


@contextmanager
def agent_span(run: AgentRunView) -> Iterator[None]:
    """``invoke_agent {agent}`` around ``run``: the current span of its model calls, tool calls,
    approvals and sub-agents, ended with the run's status, steps, usage and cost.

    A run that continues as new ends its span (status ``continued_as_new``); the next run opens
    its own, in the same trace. An error that fails the workflow ends it as an error; any other
    exception fails the workflow *task*, which Temporal retries, so no span is ended for it.
    """
    if not _traced.get():
        yield
        return
    info = workflow.info()
    attributes: a.Attributes = {
        a.OPERATION: "invoke_agent",
        a.AGENT_NAME: run.agent,
        a.CONVERSATION_ID: info.workflow_id,
    }
    if run.scope:
        attributes[a.SCOPE] = run.scope
    tracer = trace.get_tracer(a.TRACER_NAME)
    span = tracer.start_span(
        f"invoke_agent {run.agent}", kind=SpanKind.INTERNAL, attributes=attributes
    )
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except ContinueAsNewError:
            span.set_attributes(_outcome(run, "continued_as_new"))
            span.end()
            raise
        except Exception as err:
            if workflow.is_failure_exception(err):
                span.set_attributes(_outcome(run, "failed"))
                span.set_attribute(a.ERROR_TYPE, a.error_type(err))
                span.set_status(Status(StatusCode.ERROR, str(err)[:500]))
                span.end()
            raise
        span.set_attributes(_outcome(run, run.status))
        if run.status == "failed":
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def trace_approval(approval: PendingApproval, decision: DecideRequest, agent: str) -> None:
    """A finished ``approval {tool}`` span from the request to the decision: who decided what,
    whether it escalated or timed out. A child of the run's ``invoke_agent`` span."""
    if not _traced.get():
        return
    attributes: a.Attributes = {
        a.AGENT_NAME: agent,
        a.CONVERSATION_ID: workflow.info().workflow_id,
        a.TOOL_NAME: approval.tool,
        a.TOOL_CALL_ID: approval.call_id,
        a.STEP: approval.step,
        a.APPROVAL_ID: approval.id,
        a.APPROVAL_DECISION: decision.decision,
        a.APPROVER: decision.approver,
        a.APPROVAL_ESCALATED: approval.escalated,
        a.APPROVAL_TIMED_OUT: decision.approver == "system:timeout",
        a.APPROVAL_EDITED: decision.arguments is not None,
    }
    tracer = trace.get_tracer(a.TRACER_NAME)
    span = tracer.start_span(
        f"approval {approval.tool}",
        attributes=attributes,
        start_time=int(approval.requested_at.timestamp() * 1e9),
    )
    span.end(end_time=workflow.time_ns())
