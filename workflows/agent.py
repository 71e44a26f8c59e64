"""``AgentWorkflow``: the durable ReAct loop.

model call -> tool calls (concurrently when the model asks for several) -> results back into the
conversation -> repeat, until a final answer, ``max_steps`` or cancellation. Deterministic: no
I/O, no clock or randomness except through ``workflow.*``; every effect is an activity.
"""

from __future__ import annotations

import asyncio

import pydantic
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # Pydantic models are plain data; passing them through keeps one class identity between the
    # sandbox and the data converter. The activity classes are imported only for their typed
    # method references: the workflow never calls their code.
    from activities.agent_catalog import AgentCatalogActivities, LoadAgentInput
    from activities.model import ModelActivities
    from activities.tools import ToolActivities
    from contracts import (
        AgentInput,
        AgentResult,
        AgentSpec,
        AgentStatusView,
        AssistantMessage,
        Message,
        ModelRequest,
        ModelResponse,
        Phase,
        RunStatus,
        StepView,
        ToolCall,
        ToolCallRecord,
        ToolOutcome,
        ToolRequest,
        ToolResultMessage,
        Usage,
        UserMessage,
    )
    from workflows import policies
    from workflows.keys import model_call_key, tool_call_key


RECENT_STEPS_SHOWN = 20
"""How many of the latest steps the ``status`` query returns."""
RESULT_PREVIEW_CHARS = 300
"""How much of each tool result the status query and the result keep (full text is in history)."""


def failure_message(err: BaseException) -> str:
    """The innermost message of an activity failure: what actually went wrong."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err) or type(err).__name__


@workflow.defn(
    name="AgentWorkflow",
    # Invalid input (a missing "task", a negative max_steps) fails the run with the validation
    # message instead of failing the workflow task, which Temporal would retry forever.
    failure_exception_types=[pydantic.ValidationError],
)
class AgentWorkflow:
    def __init__(self) -> None:
        self._agent = ""
        self._spec: AgentSpec | None = None
        self._status: RunStatus = "running"
        self._phase: Phase = "starting"
        self._messages: list[Message] = []
        self._steps = 0
        self._usage = Usage()
        self._cost_usd = 0.0
        self._output = ""
        self._running_tools: list[str] = []
        self._tool_calls: list[ToolCallRecord] = []
        self._recent_steps: list[StepView] = []

    @workflow.run
    async def run(self, input: AgentInput) -> AgentResult:
        self._agent = input.agent
        spec = await self._load_agent(input)
        self._spec = spec
        self._messages.append(UserMessage(text=input.task))
        try:
            self._status = await self._loop(spec)
        except asyncio.CancelledError:
            # Cancellation is a user decision, not an error: finish with what we have.
            self._status = "cancelled"
        except ActivityError as err:
            self._status = "failed"
            self._phase = "finished"
            raise ApplicationError(
                f"model call failed at step {self._steps}: {failure_message(err)}",
                self._result(error=failure_message(err)),
                type="ModelCallFailed",
                non_retryable=True,
            ) from err
        self._phase = "finished"
        workflow.set_current_details(f"{self._status} after {self._steps} steps")
        return self._result()

    @workflow.query(name="status")
    def status(self) -> AgentStatusView:
        return AgentStatusView(
            status=self._status,
            phase=self._phase,
            agent=self._agent,
            model=self._spec.model if self._spec else None,
            steps=self._steps,
            max_steps=self._spec.max_steps if self._spec else None,
            output=self._output,
            usage=self._usage,
            cost_usd=self._cost_usd,
            running_tools=list(self._running_tools),
            recent_steps=self._recent_steps[-RECENT_STEPS_SHOWN:],
        )

    async def _load_agent(self, input: AgentInput) -> AgentSpec:
        try:
            return await workflow.execute_local_activity_method(
                AgentCatalogActivities.load_agent,
                LoadAgentInput(agent=input.agent, model=input.model, max_steps=input.max_steps),
                start_to_close_timeout=policies.LOAD_AGENT_TIMEOUT,
                retry_policy=policies.LOAD_AGENT_RETRY,
            )
        except ActivityError as err:
            self._status = "failed"
            raise ApplicationError(
                failure_message(err), type="AgentNotAvailable", non_retryable=True
            ) from err

    async def _loop(self, spec: AgentSpec) -> RunStatus:
        while self._steps < spec.max_steps:
            self._steps += 1
            self._set_phase("calling_model", f"step {self._steps}/{spec.max_steps}: calling model")
            response = await self._call_model(spec)
            if response.text:
                self._output = response.text
            self._recent_steps.append(StepView(step=self._steps, text=response.text))
            del self._recent_steps[:-RECENT_STEPS_SHOWN]
            self._messages.append(
                AssistantMessage(text=response.text, tool_calls=response.tool_calls)
            )
            if not response.tool_calls:
                return "completed"
            self._running_tools = [call.name for call in response.tool_calls]
            self._set_phase(
                "running_tools",
                f"step {self._steps}/{spec.max_steps}: running {', '.join(self._running_tools)}",
            )
            outcomes = await asyncio.gather(
                *(self._run_tool(spec, call) for call in response.tool_calls)
            )
            self._running_tools = []
            self._messages.extend(
                ToolResultMessage(
                    tool_call_id=o.call_id, name=o.name, content=o.content, is_error=o.is_error
                )
                for o in outcomes
            )
        return "max_steps"

    async def _call_model(self, spec: AgentSpec) -> ModelResponse:
        response = await workflow.execute_activity_method(
            ModelActivities.call_model,
            ModelRequest(
                agent=spec.name,
                model=spec.model,
                system=spec.system_prompt,
                messages=self._messages,
                tools=spec.tools,
                max_tokens=spec.max_tokens,
                idempotency_key=model_call_key(self._steps),
                step=self._steps,
            ),
            activity_id=f"model-{self._steps}",
            start_to_close_timeout=policies.MODEL_CALL_TIMEOUT,
            heartbeat_timeout=policies.MODEL_CALL_HEARTBEAT_TIMEOUT,
            retry_policy=policies.MODEL_CALL_RETRY,
        )
        self._usage = self._usage.plus(response.usage)
        self._cost_usd += response.cost_usd
        return response

    async def _run_tool(self, spec: AgentSpec, call: ToolCall) -> ToolOutcome:
        step = self._steps
        record = ToolCallRecord(
            step=step, call_id=call.id, name=call.name, arguments=call.arguments, is_error=True
        )
        self._tool_calls.append(record)
        self._recent_steps[-1].tool_calls.append(record)
        if call.name not in {t.name for t in spec.tools}:
            # Never reaches a worker: the model is told, and the run goes on.
            available = ", ".join(t.name for t in spec.tools) or "none"
            record.result_preview = f"unknown tool {call.name!r}; available tools: {available}"
            return ToolOutcome(
                call_id=call.id, name=call.name, content=record.result_preview, is_error=True
            )
        record.idempotency_key = tool_call_key(step, call.id)
        try:
            outcome = await workflow.execute_activity_method(
                ToolActivities.run_tool,
                ToolRequest(
                    agent=spec.name,
                    call_id=call.id,
                    name=call.name,
                    arguments=call.arguments,
                    idempotency_key=record.idempotency_key,
                    step=step,
                ),
                activity_id=f"tool-{step}-{call.id}",
                start_to_close_timeout=policies.TOOL_CALL_TIMEOUT,
                heartbeat_timeout=policies.TOOL_CALL_HEARTBEAT_TIMEOUT,
                retry_policy=policies.TOOL_CALL_RETRY,
            )
        except ActivityError as err:
            outcome = ToolOutcome(
                call_id=call.id,
                name=call.name,
                content=f"tool {call.name!r} failed after retries: {failure_message(err)}",
                is_error=True,
            )
        record.is_error = outcome.is_error
        record.result_preview = outcome.content[:RESULT_PREVIEW_CHARS]
        return outcome

    def _set_phase(self, phase: Phase, details: str) -> None:
        self._phase = phase
        workflow.set_current_details(details)

    def _result(self, error: str | None = None) -> AgentResult:
        return AgentResult(
            status=self._status,
            output=self._output,
            steps=self._steps,
            usage=self._usage,
            cost_usd=self._cost_usd,
            agent=self._agent,
            model=self._spec.model if self._spec else "",
            tool_calls=list(self._tool_calls),
            error=error,
        )
