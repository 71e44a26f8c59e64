"""``AgentWorkflow``: the durable ReAct loop.

model call -> tool calls (concurrently when the model asks for several) -> results back into the
conversation -> repeat, until a final answer, ``max_steps`` or cancellation. Deterministic: no
I/O, no clock or randomness except through ``workflow.*``; every effect is an activity.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

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
    from contracts.approvals import (
        ApprovalSignal,
        DecideRequest,
        DecideResult,
        EscalationNotice,
        PolicyRecord,
    )
    from contracts.approvals import PolicyRecordAction as PolicyAction
    from contracts.tools import InvalidArguments, ToolSchema, parse_arguments
    from mcp_tools.activities import ListMcpToolsInput, McpActivities
    from workflows import policies
    from workflows.approvals import ApprovalDesk, InvalidDecision, argument_refusal
    from workflows.keys import escalation_key, model_call_key, tool_call_key

AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
"""Search attribute kept current when the server has it: ``temporal workflow list --query
'AgentStatus="awaiting_approval"'`` finds runs waiting for a human."""


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
        self._desk = ApprovalDesk()
        self._policy_records: list[PolicyRecord] = []
        self._mcp_tools: frozenset[str] = frozenset()

    @workflow.run
    async def run(self, input: AgentInput) -> AgentResult:
        self._agent = input.agent
        spec = await self._load_agent(input)
        if spec.mcp_servers:
            spec = await self._with_mcp_tools(spec)
        self._spec = spec
        self._set_search_status("running")
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
        )

    @workflow.signal(name="approve")
    def approve(self, signal: ApprovalSignal) -> None:
        self._decide_by_signal(
            DecideRequest(
                approval_id=signal.approval_id,
                approver=signal.approver,
                decision="approve",
                arguments=signal.arguments,
                comment=signal.comment,
            )
        )

    @workflow.signal(name="reject")
    def reject(self, signal: ApprovalSignal) -> None:
        self._decide_by_signal(
            DecideRequest(
                approval_id=signal.approval_id,
                approver=signal.approver,
                decision="reject",
                comment=signal.reason or signal.comment,
            )
        )

    @workflow.update(name="decide")
    def decide(self, request: DecideRequest) -> DecideResult:
        return self._desk.submit(request, self._check_decision(request))

    @decide.validator
    def validate_decide(self, request: DecideRequest) -> None:
        self._check_decision(request)

    def _check_decision(self, request: DecideRequest) -> PendingApproval:
        if self._spec is None:
            raise InvalidDecision("the run has not loaded its agent yet; nothing is pending")
        tools = {t.name: t for t in self._spec.tools}
        return self._desk.check(request, self._spec.approvals, tools)

    def _decide_by_signal(self, request: DecideRequest) -> None:
        # Signals cannot be refused: an invalid one is logged and changes nothing.
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
                *(self._run_tool(spec, call, i) for i, call in enumerate(response.tool_calls))
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

    async def _run_tool(self, spec: AgentSpec, call: ToolCall, index: int) -> ToolOutcome:
        step = self._steps
        record = ToolCallRecord(
            step=step, call_id=call.id, name=call.name, arguments=call.arguments, is_error=True
        )
        self._tool_calls.append(record)
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
                self._note_policy(call, "gated", rule.reason or "requires human approval")
                decision = await self._await_approval(spec, call, parsed, index, rule.reason)
                if decision.decision == "reject":
                    why = f": {decision.comment}" if decision.comment else ""
                    return refuse(
                        f"a human ({decision.approver}) rejected this call to {call.name!r}{why}"
                    )
                if decision.arguments is not None:
                    arguments = json.dumps(decision.arguments)
                    record.arguments = arguments
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

    async def _await_approval(
        self,
        spec: AgentSpec,
        call: ToolCall,
        arguments: dict[str, object],
        index: int,
        reason: str,
    ) -> DecideRequest:
        """Wait for a human; on the first deadline escalate, on the second apply the default."""
        settings = spec.approvals
        now = workflow.now()
        approval = PendingApproval(
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
        decided = await self._wait_for_decision(approval.id, settings.timeout)
        if not decided and settings.escalate_to:
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
                start_to_close_timeout=policies.NOTIFY_TIMEOUT,
                retry_policy=policies.NOTIFY_RETRY,
            )
            decided = await self._wait_for_decision(approval.id, settings.escalation_timeout)
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

    async def _wait_for_decision(self, approval_id: str, timeout: timedelta) -> bool:
        try:
            await workflow.wait_condition(
                lambda: self._desk.decision(approval_id) is not None, timeout=timeout
            )
        except TimeoutError:
            return False
        return True

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
            tool_calls=list(self._tool_calls),
            approvals=list(self._desk.records),
            policy_decisions=list(self._policy_records),
            error=error,
        )
