"""``AgentWorkflow``: the durable ReAct loop.

model call -> tool calls (concurrently when the model asks for several) -> results back into the
conversation -> repeat, until a final answer, ``max_steps`` or cancellation. Deterministic: no
I/O, no clock or randomness except through ``workflow.*``; every effect is an activity.

Long runs continue as new (a fresh history) when Temporal suggests it or every
``continue_as_new_after_steps`` steps: between steps, or in the middle of a step whose unfinished
calls are all waiting for a human. Everything the run needs travels in ``CarriedRun``, so the
conversation, counters, approvals and their deadlines go on as if nothing happened.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Literal

import pydantic
from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # Pydantic models are plain data; passing them through keeps one class identity between the
    # sandbox and the data converter. The activity classes are imported only for their typed
    # method references: the workflow never calls their code.
    from activities.agent_catalog import AgentCatalogActivities, LoadAgentInput
    from activities.model import ModelActivities
    from activities.notifications import NotificationActivities
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
        PendingApproval,
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
    from contracts.agent_io import CarriedRun, ResumeStep
    from contracts.approvals import (
        DecideRequest,
        DecideResult,
        EscalationNotice,
        PolicyRecord,
    )
    from contracts.approvals import PolicyRecordAction as PolicyAction
    from contracts.context import ContextState
    from contracts.tools import InvalidArguments, ToolSchema, parse_arguments
    from conversation import apply_summary, compact, plan_context, summary_request
    from mcp_tools.activities import ListMcpToolsInput, McpActivities
    from workflows import policies
    from workflows.approvals import ApprovalDesk, InvalidDecision, argument_refusal
    from workflows.inbound import read_decision, read_input, read_signal
    from workflows.keys import escalation_key, model_call_key, summary_call_key, tool_call_key

AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
"""Search attribute kept current when the server has it: ``temporal workflow list --query
'AgentStatus="awaiting_approval"'`` finds runs waiting for a human."""


RECENT_STEPS_SHOWN = 20
"""How many of the latest steps the ``status`` query returns."""
RESULT_PREVIEW_CHARS = 300
"""How much of each tool result the status query and the result keep (full text is in history)."""
ARGUMENTS_KEPT_CHARS = 2_000
"""How much of each call's arguments the records keep (full arguments are in history)."""
SUMMARY_ARGUMENTS_CHARS = 80
"""How much of a tool call's arguments its activity summary shows."""
RECORDS_KEPT = 200
"""How many tool-call, approval and policy records the result (and continue-as-new) keeps: a
10,000-step run must not carry 10,000 of them. History has them all."""


def message_bytes(message: Message) -> int:
    """UTF-8 bytes of text in ``message``: its share of a model request's payload size."""
    if isinstance(message, AssistantMessage):
        calls = "".join(c.name + c.arguments for c in message.tool_calls)
        return len(message.text.encode()) + len(calls.encode())
    if isinstance(message, ToolResultMessage):
        return len(message.content.encode())
    return len(message.text.encode())


def tool_summary(name: str, arguments: str) -> str:
    """How a tool call reads in the Web UI's timeline: ``tool stop_cluster(gpu-train-7)``."""
    try:
        parsed = json.loads(arguments)
    except (ValueError, RecursionError):  # the model's text, not necessarily JSON
        parsed = None
    if isinstance(parsed, dict):
        shown = ", ".join(
            v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            for v in parsed.values()
        )
    else:
        shown = arguments
    if len(shown) > SUMMARY_ARGUMENTS_CHARS:
        shown = shown[: SUMMARY_ARGUMENTS_CHARS - 1] + "…"
    return f"tool {name}({shown})"


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
        self._desk = ApprovalDesk()
        self._policy_records: list[PolicyRecord] = []
        self._mcp_tools: frozenset[str] = frozenset()
        self._context = ContextState()
        self._tool_calls_total = 0
        self._runs = 1
        self._steps_this_run = 0
        self._waiting_approvals: set[str] = set()
        """Approvals whose calls are parked in a wait for a human (not escalating, not running)."""

    @workflow.run
    async def run(self, raw_input: object = None, *unexpected: object) -> AgentResult:
        # Decoded by hand, not by the SDK from type hints: a start with no input, two inputs or
        # null must fail the run with a message, not fail its workflow task forever.
        input = read_input(raw_input, unexpected)
        self._agent = input.agent
        resume: ResumeStep | None = None
        if input.carry is not None:
            spec = input.carry.spec
            resume = self._restore(input.carry)
        else:
            spec = await self._load_agent(input)
            if spec.mcp_servers:
                spec = await self._with_mcp_tools(spec)
            spec = self._with_overrides(spec, input)
            self._messages.append(UserMessage(text=input.task))
        self._spec = spec
        self._set_search_status("running")
        try:
            self._status = await self._loop(spec, resume)
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
        self._set_search_status(self._status)
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
            pending_approvals=list(self._desk.pending.values()),
            runs=self._runs,
        )

    @workflow.signal(name="approve")
    def approve(self, raw: object = None, *unexpected: object) -> None:
        self._decide_by_signal("approve", raw, unexpected)

    @workflow.signal(name="reject")
    def reject(self, raw: object = None, *unexpected: object) -> None:
        self._decide_by_signal("reject", raw, unexpected)

    @workflow.update(name="decide")
    def decide(self, raw: object = None) -> DecideResult:
        request = read_decision(raw)
        return self._desk.submit(request, self._check_decision(request))

    @decide.validator
    def validate_decide(self, raw: object = None) -> None:
        self._check_decision(read_decision(raw))

    def _check_decision(self, request: DecideRequest) -> PendingApproval:
        if self._spec is None:
            raise InvalidDecision("the run has not loaded its agent yet; nothing is pending")
        tools = {t.name: t for t in self._spec.tools}
        return self._desk.check(request, self._spec.approvals, tools)

    def _decide_by_signal(
        self, decision: Literal["approve", "reject"], raw: object, unexpected: tuple[object, ...]
    ) -> None:
        # Signals cannot be refused: an invalid one is logged and changes nothing.
        signal = read_signal(decision, raw, unexpected)
        if signal is None:
            return
        request = DecideRequest(
            approval_id=signal.approval_id,
            approver=signal.approver,
            decision=decision,
            arguments=signal.arguments if decision == "approve" else None,
            comment=(signal.reason or signal.comment) if decision == "reject" else signal.comment,
        )
        try:
            approval = self._check_decision(request)
        except InvalidDecision as err:
            workflow.logger.warning("ignored %s signal: %s", request.decision, err)
            return
        self._desk.submit(request, approval)

    async def _load_agent(self, input: AgentInput) -> AgentSpec:
        try:
            return await workflow.execute_local_activity_method(
                AgentCatalogActivities.load_agent,
                LoadAgentInput(agent=input.agent, model=input.model, max_steps=input.max_steps),
                start_to_close_timeout=policies.LOAD_AGENT_TIMEOUT,
                retry_policy=policies.LOAD_AGENT_RETRY,
                summary=f"load agent {input.agent}",
            )
        except ActivityError as err:
            self._status = "failed"
            raise ApplicationError(
                failure_message(err), type="AgentNotAvailable", non_retryable=True
            ) from err

    async def _with_mcp_tools(self, spec: AgentSpec) -> AgentSpec:
        """The spec with its MCP servers' tools added, listed once for this run.

        The listing is an activity, so its result is in history: a replay, or a worker that
        resumes the run, sees the tools this run started with even if a server changed since.
        """
        try:
            listed: list[ToolSchema] = await workflow.execute_activity_method(
                McpActivities.list_mcp_tools,
                ListMcpToolsInput(servers=spec.mcp_servers),
                activity_id="list-mcp-tools",
                start_to_close_timeout=policies.LIST_MCP_TOOLS_TIMEOUT,
                heartbeat_timeout=policies.LIST_MCP_TOOLS_HEARTBEAT_TIMEOUT,
                retry_policy=policies.LIST_MCP_TOOLS_RETRY,
                summary=f"list MCP tools of {', '.join(spec.mcp_servers)}",
            )
        except ActivityError as err:
            self._status = "failed"
            raise ApplicationError(
                f"could not list the tools of MCP servers {spec.mcp_servers!r}: "
                f"{failure_message(err)}",
                type="McpToolsUnavailable",
                non_retryable=True,
            ) from err
        own = {t.name for t in spec.tools}
        offered = [
            t
            for t in listed
            if t.name not in own
            and (t.name not in spec.policy or spec.policy[t.name].action != "deny")
        ]
        self._mcp_tools = frozenset(t.name for t in offered)
        return spec.model_copy(update={"tools": [*spec.tools, *offered]})

    def _with_overrides(self, spec: AgentSpec, input: AgentInput) -> AgentSpec:
        update: dict[str, object] = {}
        if input.context is not None:
            update["context"] = input.context
        if input.continue_as_new_after_steps is not None:
            update["continue_as_new_after_steps"] = input.continue_as_new_after_steps
        return spec.model_copy(update=update) if update else spec

    async def _loop(self, spec: AgentSpec, resume: ResumeStep | None) -> RunStatus:
        while True:
            if resume is not None:
                calls = resume.calls
                finished = {o.call_id: o for o in resume.outcomes}
                waiting = {a.call_id: a for a in resume.pending}
                resume = None
            else:
                if self._steps >= spec.max_steps:
                    return "max_steps"
                if self._continue_as_new_due(spec):
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    self._continue_as_new(spec, None)
                self._steps += 1
                self._steps_this_run += 1
                self._set_phase(
                    "calling_model", f"step {self._steps}/{spec.max_steps}: calling model"
                )
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
                calls, finished, waiting = response.tool_calls, {}, {}
            outcomes = await self._run_tools(spec, calls, finished, waiting)
            self._messages.extend(
                ToolResultMessage(
                    tool_call_id=o.call_id, name=o.name, content=o.content, is_error=o.is_error
                )
                for o in outcomes
            )

    async def _run_tools(
        self,
        spec: AgentSpec,
        calls: list[ToolCall],
        finished: dict[str, ToolOutcome],
        waiting: dict[str, PendingApproval],
    ) -> list[ToolOutcome]:
        """Run this step's calls concurrently; outcomes in the order the model asked for them.

        ``finished`` and ``waiting`` come from a run that continued as new mid-step: calls that
        already have an outcome are not run again, and waiting approvals are re-opened as they
        were (same id, same deadline).
        """
        tasks = {
            call.id: asyncio.create_task(self._run_tool(spec, call, i, waiting.get(call.id)))
            for i, call in enumerate(calls)
            if call.id not in finished
        }
        self._running_tools = [call.name for call in calls if call.id in tasks]
        self._set_phase(
            "running_tools",
            f"step {self._steps}/{spec.max_steps}: running {', '.join(self._running_tools)}",
        )
        try:
            while not all(task.done() for task in tasks.values()):
                await workflow.wait_condition(
                    lambda: all(task.done() for task in tasks.values()) or self._parked(spec, tasks)
                )
                if self._parked(spec, tasks):
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    if self._parked(spec, tasks):
                        done = [t.result() for t in tasks.values() if t.done()]
                        self._continue_as_new(
                            spec,
                            ResumeStep(
                                calls=calls,
                                outcomes=[*finished.values(), *done],
                                pending=list(self._desk.pending.values()),
                            ),
                        )
        finally:
            # Cancellation of the run (or continue-as-new) reaches the calls still going, and
            # waits for them to wind down, as asyncio.gather would.
            unfinished = [task for task in tasks.values() if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.gather(*unfinished, return_exceptions=True)
        self._running_tools = []
        results = {call_id: task.result() for call_id, task in tasks.items()}
        return [finished.get(call.id) or results[call.id] for call in calls]

    def _parked(self, spec: AgentSpec, tasks: dict[str, asyncio.Task[ToolOutcome]]) -> bool:
        """Whether the run should continue as new now, mid-step: it is due, and every call
        still unfinished is parked waiting for a human (nothing running, nothing decided)."""
        unfinished = [call_id for call_id, task in tasks.items() if not task.done()]
        return (
            bool(unfinished)
            and self._continue_as_new_due(spec)
            and len(unfinished) == len(self._waiting_approvals) == len(self._desk.pending)
            and all(self._desk.decision(a) is None for a in self._waiting_approvals)
        )

    def _continue_as_new_due(self, spec: AgentSpec) -> bool:
        every = spec.continue_as_new_after_steps
        return workflow.info().is_continue_as_new_suggested() or (
            every is not None and self._steps_this_run >= every
        )

    def _continue_as_new(self, spec: AgentSpec, resume: ResumeStep | None) -> None:
        messages, context = compact(self._messages, self._context)
        carried = CarriedRun(
            spec=spec,
            messages=messages,
            context=context,
            steps=self._steps,
            usage=self._usage,
            cost_usd=self._cost_usd,
            output=self._output,
            recent_steps=self._recent_steps,
            tool_calls=self._tool_calls[-RECORDS_KEPT:],
            tool_calls_total=self._tool_calls_total,
            approvals=self._desk.records[-RECORDS_KEPT:],
            policy_decisions=self._policy_records[-RECORDS_KEPT:],
            mcp_tools=sorted(self._mcp_tools),
            runs=self._runs + 1,
            resume=resume,
        )
        if spec.max_request_bytes is not None:
            size = len(carried.model_dump_json().encode())
            if size > spec.max_request_bytes:
                self._status, self._phase = "failed", "finished"
                raise ApplicationError(
                    f"step {self._steps}: the state to continue as new with is {size:,} bytes, "
                    f"more than the {spec.max_request_bytes:,} that fit in workflow history "
                    "without payload offload; turn on external storage (PAYLOAD_STORE) or give "
                    "the agent a context policy that truncates or summarizes",
                    type="ConversationTooLarge",
                    non_retryable=True,
                )
        workflow.logger.info(
            "continuing as new after %d steps (%d in this run, %d history events)",
            self._steps,
            self._steps_this_run,
            workflow.info().get_current_history_length(),
        )
        workflow.continue_as_new(AgentInput(agent=self._agent, task=self._task(), carry=carried))

    def _task(self) -> str:
        first = self._messages[0] if self._messages else None
        return first.text if isinstance(first, UserMessage) else ""

    def _restore(self, carry: CarriedRun) -> ResumeStep | None:
        self._messages = list(carry.messages)
        self._context = carry.context
        self._steps = carry.steps
        self._usage = carry.usage
        self._cost_usd = carry.cost_usd
        self._output = carry.output
        self._recent_steps = list(carry.recent_steps)
        self._tool_calls = list(carry.tool_calls)
        self._tool_calls_total = carry.tool_calls_total
        self._desk.records = list(carry.approvals)
        self._policy_records = list(carry.policy_decisions)
        self._mcp_tools = frozenset(carry.mcp_tools)
        self._runs = carry.runs
        return carry.resume

    async def _context_for_call(self, spec: AgentSpec) -> list[Message]:
        """The messages this model call sends, under the agent's context policy.

        Summary calls (``rolling_summary``, ``summarize``) are ordinary model activities with
        their own idempotency keys. Messages no longer sent are dropped from the workflow's
        state at once, so memory and continue-as-new input stay bounded.
        """
        if spec.context.strategy == "keep_all":
            return self._messages
        plan = plan_context(self._messages, spec.context, self._context, spec.model)
        while plan.needs_summary:
            self._set_phase("calling_model", f"step {self._steps}: summarizing older context")
            summary = await self._model_activity(
                summary_request(
                    plan.to_fold,
                    self._context,
                    spec.context,
                    agent=spec.name,
                    agent_model=spec.model,
                    step=self._steps,
                    idempotency_key=summary_call_key(self._steps, self._context.summary_calls),
                    task=self._messages[0].text
                    if isinstance(self._messages[0], UserMessage)
                    else "",
                ),
                activity_id=f"summary-{self._steps}-{self._context.summary_calls}",
                summary=f"summarize earlier turns · step {self._steps}",
            )
            self._context = apply_summary(self._context, summary.text, len(plan.to_fold))
            plan = plan_context(self._messages, spec.context, self._context, spec.model)
        self._messages, self._context = compact(self._messages, plan.state)
        return plan.send

    async def _model_activity(
        self, request: ModelRequest, activity_id: str, summary: str
    ) -> ModelResponse:
        response = await workflow.execute_activity_method(
            ModelActivities.call_model,
            request,
            activity_id=activity_id,
            summary=f"{summary} · {request.model}",
            start_to_close_timeout=policies.MODEL_CALL_TIMEOUT,
            heartbeat_timeout=policies.MODEL_CALL_HEARTBEAT_TIMEOUT,
            retry_policy=policies.MODEL_CALL_RETRY,
        )
        self._usage = self._usage.plus(response.usage)
        self._cost_usd += response.cost_usd
        return response

    async def _call_model(self, spec: AgentSpec) -> ModelResponse:
        messages = await self._context_for_call(spec)
        if spec.max_request_bytes is not None:
            size = sum(message_bytes(m) for m in messages)
            if size > spec.max_request_bytes:
                self._status, self._phase = "failed", "finished"
                raise ApplicationError(
                    f"step {self._steps}: the conversation to send is about {size:,} bytes, "
                    f"more than the {spec.max_request_bytes:,} that fit in workflow history "
                    "without payload offload; turn on external storage (PAYLOAD_STORE) or give "
                    "the agent a context policy that truncates or summarizes",
                    self._result(error="conversation too large for history"),
                    type="ConversationTooLarge",
                    non_retryable=True,
                )
        return await self._model_activity(
            ModelRequest(
                agent=spec.name,
                model=spec.model,
                system=spec.system_prompt,
                messages=messages,
                tools=spec.tools,
                max_tokens=spec.max_tokens,
                idempotency_key=model_call_key(self._steps),
                step=self._steps,
            ),
            activity_id=f"model-{self._steps}",
            summary=f"model step {self._steps}",
        )

    async def _run_tool(
        self, spec: AgentSpec, call: ToolCall, index: int, waiting: PendingApproval | None
    ) -> ToolOutcome:
        """One call: policy, approval (``waiting``: re-open a carried approval), activity."""
        step = self._steps
        record = self._record_for(step, call) if waiting else None
        if record is None:
            record = ToolCallRecord(
                step=step,
                call_id=call.id,
                name=call.name,
                arguments=call.arguments[:ARGUMENTS_KEPT_CHARS],
                is_error=True,
            )
            self._tool_calls.append(record)
            del self._tool_calls[:-RECORDS_KEPT]
            self._tool_calls_total += 1
            if self._recent_steps:
                self._recent_steps[-1].tool_calls.append(record)

        def refuse(message: str) -> ToolOutcome:
            # Never reaches a worker: the model is told, and the run goes on.
            record.result_preview = message[:RESULT_PREVIEW_CHARS]
            return ToolOutcome(call_id=call.id, name=call.name, content=message, is_error=True)

        rule = spec.policy.get(call.name)
        if rule is not None and rule.action == "deny":
            self._note_policy(call, "denied", rule.reason or "denied by the agent's policy")
            return refuse(
                f"tool {call.name!r} is not allowed for this agent and was not run"
                + (f": {rule.reason}" if rule.reason else "")
            )
        schema = next((t for t in spec.tools if t.name == call.name), None)
        if schema is None:
            available = ", ".join(t.name for t in spec.tools) or "none"
            return refuse(f"unknown tool {call.name!r}; available tools: {available}")
        arguments = call.arguments
        if rule is not None and (rule.allowed_values or rule.action == "require_approval"):
            try:
                parsed = parse_arguments(call.name, arguments)
            except InvalidArguments as err:
                return refuse(str(err))
            refusal = argument_refusal(parsed, rule.allowed_values)
            if refusal is not None:
                self._note_policy(call, "refused_arguments", refusal)
                return refuse(f"call to {call.name!r} refused by policy: {refusal}")
            if rule.action == "require_approval":
                if waiting is None:
                    self._note_policy(call, "gated", rule.reason or "requires human approval")
                decision = await self._await_approval(
                    spec, call, parsed, index, rule.reason, waiting
                )
                if decision.decision == "reject":
                    why = f": {decision.comment}" if decision.comment else ""
                    return refuse(
                        f"a human ({decision.approver}) rejected this call to {call.name!r}{why}"
                    )
                if decision.arguments is not None:
                    arguments = json.dumps(decision.arguments)
                    record.arguments = arguments[:ARGUMENTS_KEPT_CHARS]
        record.idempotency_key = tool_call_key(step, call.id)
        try:
            outcome = await workflow.execute_activity_method(
                McpActivities.call_mcp_tool
                if call.name in self._mcp_tools
                else ToolActivities.run_tool,
                ToolRequest(
                    agent=spec.name,
                    call_id=call.id,
                    name=call.name,
                    arguments=arguments,
                    idempotency_key=record.idempotency_key,
                    step=step,
                    effect=schema.effect,
                ),
                activity_id=f"tool-{step}-{call.id}",
                summary=tool_summary(call.name, arguments),
                start_to_close_timeout=policies.TOOL_CALL_TIMEOUT,
                heartbeat_timeout=policies.TOOL_CALL_HEARTBEAT_TIMEOUT,
                retry_policy=policies.TOOL_CALL_RETRY,
            )
        except ActivityError as err:
            content = f"tool {call.name!r} failed after retries: {failure_message(err)}"
            if schema.effect == "side_effect":
                # Attempts cut short by crashes or timeouts may have acted before they died.
                content += (
                    "; it acts on the world and an attempt may have taken effect before it "
                    "failed, so check before calling it again"
                )
            outcome = ToolOutcome(call_id=call.id, name=call.name, content=content, is_error=True)
        record.is_error = outcome.is_error
        record.result_preview = outcome.content[:RESULT_PREVIEW_CHARS]
        return outcome

    def _record_for(self, step: int, call: ToolCall) -> ToolCallRecord | None:
        """The record a run that continued as new mid-step made for this call."""
        for record in reversed(self._tool_calls):
            if record.step == step and record.call_id == call.id:
                return record
        return None

    async def _await_approval(
        self,
        spec: AgentSpec,
        call: ToolCall,
        arguments: dict[str, object],
        index: int,
        reason: str,
        carried: PendingApproval | None = None,
    ) -> DecideRequest:
        """Wait for a human; on the first deadline escalate, on the second apply the default.

        ``carried`` is an approval opened before continue-as-new: it keeps its id, its request
        time, its deadline and whether it was already escalated.
        """
        settings = spec.approvals
        now = workflow.now()
        approval = carried or PendingApproval(
            id=f"apr-{self._steps}-{index}",
            tool=call.name,
            arguments=arguments,
            reason=reason or "this tool requires human approval",
            requested_at=now,
            deadline=now + settings.timeout,
            step=self._steps,
            call_id=call.id,
            approvers=settings.approvers,
        )
        self._desk.open(approval)
        self._show_approvals()
        decided = await self._wait_for_decision(
            approval, self._until(approval.deadline), "approval deadline"
        )
        if not decided and settings.escalate_to and not approval.escalated:
            approval.escalated = True
            approval.deadline = workflow.now() + settings.escalation_timeout
            self._show_approvals()
            await workflow.execute_activity_method(
                NotificationActivities.notify_escalation,
                EscalationNotice(
                    workflow_id=workflow.info().workflow_id,
                    approval_id=approval.id,
                    tool=approval.tool,
                    arguments=approval.arguments,
                    reason=approval.reason,
                    recipients=settings.escalate_to,
                    requested_at=approval.requested_at,
                    new_deadline=approval.deadline,
                    idempotency_key=escalation_key(approval.id),
                ),
                activity_id=f"escalate-{approval.id}",
                summary=f"escalate {approval.id} ({approval.tool}) to "
                + ", ".join(settings.escalate_to),
                start_to_close_timeout=policies.NOTIFY_TIMEOUT,
                retry_policy=policies.NOTIFY_RETRY,
            )
            decided = await self._wait_for_decision(
                approval, settings.escalation_timeout, "escalation deadline"
            )
        if not decided:
            self._desk.submit(
                DecideRequest(
                    approval_id=approval.id,
                    approver="system:timeout",
                    decision=settings.on_timeout,
                    comment="no decision before the deadline; the agent's default applied",
                ),
                approval,
            )
        request = self._desk.decision(approval.id)
        assert request is not None
        self._desk.close(approval, request)
        self._show_approvals()
        return request

    async def _wait_for_decision(
        self, approval: PendingApproval, timeout: timedelta, deadline: str
    ) -> bool:
        if timeout <= timedelta(0):
            return self._desk.decision(approval.id) is not None
        self._waiting_approvals.add(approval.id)
        try:
            await workflow.wait_condition(
                lambda: self._desk.decision(approval.id) is not None,
                timeout=timeout,
                timeout_summary=f"{deadline} {approval.id} · {approval.tool}",
            )
        except TimeoutError:
            return False
        finally:
            self._waiting_approvals.discard(approval.id)
        return True

    @staticmethod
    def _until(deadline: datetime | None) -> timedelta:
        return deadline - workflow.now() if deadline is not None else timedelta(0)

    def _show_approvals(self) -> None:
        pending = list(self._desk.pending.values())
        if pending:
            self._set_phase(
                "awaiting_approval",
                "awaiting approval: "
                + "; ".join(
                    f"{a.id} {a.tool}({json.dumps(a.arguments)[:120]}) "
                    f"until {a.deadline:%Y-%m-%d %H:%M} UTC"
                    for a in pending
                ),
            )
            self._set_search_status("awaiting_approval")
        else:
            self._set_phase("running_tools", f"step {self._steps}: running tools")
            self._set_search_status("running")

    def _note_policy(self, call: ToolCall, action: PolicyAction, detail: str) -> None:
        self._policy_records.append(
            PolicyRecord(
                step=self._steps, call_id=call.id, tool=call.name, action=action, detail=detail
            )
        )

    def _set_search_status(self, value: str) -> None:
        if self._spec is not None and self._spec.status_search_attribute:
            workflow.upsert_search_attributes([AGENT_STATUS.value_set(value)])

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
            tool_calls=self._tool_calls[-RECORDS_KEPT:],
            approvals=self._desk.records[-RECORDS_KEPT:],
            policy_decisions=self._policy_records[-RECORDS_KEPT:],
            error=error,
            tool_calls_total=self._tool_calls_total,
            runs=self._runs,
        )
