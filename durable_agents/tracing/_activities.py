"""``chat {model}`` and ``execute_tool {tool}`` spans around the model and tool activities.

An activity interceptor rather than code in the activities: the activities stay about their
work, and any worker with the plugin gets the spans (the rate-limited model workers included).
It runs inside the SDK's tracing interceptor, so each span's parent is the workflow's span that
scheduled the activity (or the SDK's ``RunActivity`` span when Temporal spans are on). One span
per attempt: ``durable_agents.attempt`` tells retries apart, ``durable_agents.idempotency_key``
ties them to the one logical call.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from durable_agents.contracts.model import ModelRequest, ModelResponse
from durable_agents.contracts.tools import ToolOutcome, ToolRequest
from durable_agents.tracing import _attributes as a
from durable_agents.tracing._workflow import TracedWorkflow

MODEL_ACTIVITIES = frozenset({"call_model"})
TOOL_ACTIVITIES = {"run_tool": False, "call_mcp_tool": True}
"""Tool activity type -> whether it calls an MCP server."""


class GenAiInterceptor(Interceptor):
    """Makes the GenAI spans of the model and tool activities, and marks workflows as traced
    (``TracedWorkflow``) so ``invoke_agent`` and ``approval`` spans are made in them.

    Args:
        capture_content: Record prompts, completions, tool arguments and results (opt-in).
    """

    def __init__(self, *, capture_content: bool = False) -> None:
        self.capture_content = capture_content

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _GenAiActivityInbound(next, self.capture_content)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return TracedWorkflow


class _GenAiActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, capture_content: bool) -> None:
        super().__init__(next)
        self._capture_content = capture_content

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        request = input.args[0] if input.args else None
        if info.activity_type in MODEL_ACTIVITIES and isinstance(request, ModelRequest):
            return await self._chat(input, request, info)
        mcp = TOOL_ACTIVITIES.get(info.activity_type)
        if mcp is not None and isinstance(request, ToolRequest):
            return await self._tool(input, request, info, mcp)
        return await self.next.execute_activity(input)

    async def _chat(
        self, input: ExecuteActivityInput, request: ModelRequest, info: activity.Info
    ) -> Any:
        attributes = {**a.chat_attributes(request), **_temporal(info)}
        if self._capture_content:
            attributes.update(a.request_content(request))
        name = f"chat {attributes[a.REQUEST_MODEL]}"
        tracer = trace.get_tracer(a.TRACER_NAME)
        with tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, set_status_on_exception=False
        ) as span:
            response = await self._traced(input, span)
            if isinstance(response, ModelResponse):
                span.set_attributes(a.response_attributes(response))
                if self._capture_content:
                    span.set_attributes(a.response_content(response))
            return response

    async def _tool(
        self, input: ExecuteActivityInput, request: ToolRequest, info: activity.Info, mcp: bool
    ) -> Any:
        attributes = {**a.tool_attributes(request, mcp=mcp), **_temporal(info)}
        tracer = trace.get_tracer(a.TRACER_NAME)
        with tracer.start_as_current_span(
            f"execute_tool {request.name}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            set_status_on_exception=False,
        ) as span:
            outcome = await self._traced(input, span)
            if isinstance(outcome, ToolOutcome):
                span.set_attribute(a.TOOL_IS_ERROR, outcome.is_error)
                if outcome.is_error:  # the model reads the error; the call itself failed
                    span.set_attribute(a.ERROR_TYPE, "tool_error")
                    span.set_status(Status(StatusCode.ERROR, outcome.content[:200]))
            if self._capture_content:
                span.set_attributes(
                    a.tool_content(request, outcome if isinstance(outcome, ToolOutcome) else None)
                )
            return outcome

    async def _traced(self, input: ExecuteActivityInput, span: Span) -> Any:
        try:
            return await self.next.execute_activity(input)
        except BaseException as err:  # cancellation (a heartbeat timeout) included
            span.set_attribute(a.ERROR_TYPE, a.error_type(err))
            span.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {err}"[:500]))
            raise


def _temporal(info: activity.Info) -> a.Attributes:
    return {
        a.CONVERSATION_ID: info.workflow_id or "",
        a.ATTEMPT: info.attempt,
        a.ACTIVITY_ID: info.activity_id,
    }
