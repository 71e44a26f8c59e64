"""``AgentLoop``: one agent's durable ReAct loop, inside whichever workflow runs it.

model call -> tool calls (concurrently when the model asks for several) -> results back into the
conversation -> repeat, until a final answer, ``max_steps`` or cancellation. Deterministic: no
I/O, no clock or randomness except through ``workflow.*``; every effect is an activity.

``AgentWorkflow`` runs one loop that may continue as new (a fresh history) when Temporal
suggests it or every ``continue_as_new_after_steps`` steps: between steps, or in the middle of a
step whose unfinished calls are all waiting for a human. Everything the run needs travels in
``CarriedRun``. A loop run inline in another workflow (``AgentRunner.run``) never continues as
new: that workflow's history is its own to manage (run long agents as children instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    # Pydantic models are plain data; passing them through keeps one class identity between the
    # sandbox and the data converter.
    from activities.notifications import NotificationActivities
    from durable_agents.contracts import (
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
    from durable_agents.contracts.agent_io import CarriedRun, ResumeStep, WorkerSettings
    from durable_agents.contracts.approvals import (
        DecideRequest,
        EscalationNotice,
        PolicyRecord,
    )
    from durable_agents.contracts.approvals import PolicyRecordAction as PolicyAction
    from durable_agents.contracts.context import ContextState
    from durable_agents.contracts.pricing import ModelPrice
    from durable_agents.contracts.tools import InvalidArguments, parse_arguments
    from durable_agents.conversation import apply_summary, compact, plan_context, summary_request
    from durable_agents.runner import policies
    from durable_agents.runner.approvals import ApprovalDesk, InvalidDecision, argument_refusal
    from durable_agents.runner.budget import BudgetBook, BudgetExhausted
    from durable_agents.runner.delegation import Delegations, subagent_of
    from durable_agents.runner.keys import (
        escalation_key,
        model_call_key,
        summary_call_key,
        tool_call_key,
    )
    from durable_agents.runner.output import (
        check_output,
        checked_schema,
        output_name,
        repair_prompt,
    )
    from durable_agents.runner.steps import (
        call_model,
        execute_tool,
        failure_message,
        list_mcp_tools,
        load_agent,
    )
    from durable_agents.streaming.workflow_side import AgentStream
    from durable_agents.tracing import agent_span, trace_approval

AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
AGENT_COST_USD = SearchAttributeKey.for_float("AgentCostUSD")
AGENT_TOKENS = SearchAttributeKey.for_int("AgentTokens")
AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
AGENT_MODEL = SearchAttributeKey.for_keyword("AgentModel")
"""Search attribute kept current when the server has it: ``temporal workflow list --query
'AgentStatus="awaiting_approval"'`` finds runs waiting for a human."""

WARNINGS_KEPT = 20
"""The latest warnings a run keeps (fallbacks can add one per step)."""

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


def worth_falling_back(err: ActivityError, fixes: int) -> bool:
    """Whether a model call that failed for good may be tried on the next model: yes after
    transient errors (overloaded, 5xx, rate limits, timeouts) used up their retries; no for a
    request the provider refused as invalid (a non-retryable 4xx would fail there too), nor for
    a call cancelled with its run (``fixes`` >= 1: the run's recorded fix level)."""
    cause = err.cause
    if fixes >= 1 and isinstance(cause, CancelledError):
        return False
    return not (isinstance(cause, ApplicationError) and cause.non_retryable)


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


class AgentLoop:
    """One agent run: its conversation, counters and records, and the loop that drives it.

    Args:
        desk: The workflow's approval desk (shared by every loop the workflow runs, so its
            ``status`` query and ``approve``/``decide`` handlers see them all).
        budget: The workflow's budget book (likewise shared).
        scope: A label unique within the workflow, for idempotency keys, activity ids and
            approval ids (``""``: the workflow's only agent, as in ``AgentWorkflow``).
        continue_as_new: Whether the loop may continue the workflow as new (only in a
            workflow whose input is ``AgentInput``, i.e. ``AgentWorkflow``).
    """

    def __init__(
        self,
        desk: ApprovalDesk,
        scope: str = "",
        continue_as_new: bool = False,
        budget: BudgetBook | None = None,
    ) -> None:
        self.desk = desk
        self.budget = budget if budget is not None else BudgetBook()
        """The workflow's budget (shared by its agents): reserved before each model call."""
        self.price: ModelPrice | None = None
        """The model's price recorded with the run (``None``: unknown)."""
        self.prices: dict[str, ModelPrice | None] = {}
        """The prices of its step models and fallbacks, recorded likewise."""
        self.cost_by_model: dict[str, float] = {}
        self._repairing = False
        self._answered_by = ""
        self._delegation_share: tuple[float | None, int | None] = (None, None)
        self.scope = scope
        self.continue_as_new_enabled = continue_as_new
        self.agent = ""
        self.spec: AgentSpec | None = None
        self.status: RunStatus = "running"
        self.phase: Phase = "starting"
        self.messages: list[Message] = []
        self.steps = 0
        self.usage = Usage()
        self.cost_usd = 0.0
        self.output = ""
        self.running_tools: list[str] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.recent_steps: list[StepView] = []
        self.policy_records: list[PolicyRecord] = []
        self.mcp_tools: frozenset[str] = frozenset()
        self.context = ContextState()
        self.tool_calls_total = 0
        self.runs = 1
        self.steps_this_run = 0
        self.approval_ids: set[str] = set()
        """Approvals this loop opened that are still pending."""
        self.waiting_approvals: set[str] = set()
        """Approvals whose calls are parked in a wait for a human (not escalating, not running)."""
        self._closed: set[str] = set()
        """Approvals this loop opened and closed (its share of the desk's records)."""
        self.output_json: Any = None
        self.output_repairs = 0
        self.warnings: list[str] = []
        """What the run ignored (unknown input fields); shown in ``status`` and the result."""
        self.delegations = Delegations()
        """Sub-agent calls: depth, limits, what was used and what is set aside."""
        self.worker = WorkerSettings()
        """The settings of the worker that started the run (recorded with it)."""
        self.stream: AgentStream | None = None
        """The workflow's stream when the run streams (``durable_agents.streaming``): model
        calls publish their steps, text and replies there."""

    # -- the run ---------------------------------------------------------------------------

    async def run(self, input: AgentInput) -> AgentResult:
        """Run the agent to its end. Cancellation ends it with status ``cancelled``; a model
        call that fails for good fails the workflow with ``ModelCallFailed``."""
        self.agent = input.agent
        # Tracing: one ``invoke_agent`` span around the whole run, the parent of its model,
        # tool, approval and sub-agent spans (replay-safe; a no-op span when tracing is off).
        with agent_span(self):
            return await self._run(input)

    async def _run(self, input: AgentInput) -> AgentResult:
        self.delegations = Delegations(depth=input.depth, granted=input.subagent_calls_granted)
        resume: ResumeStep | None = None
        try:
            if input.carry is not None:
                spec = input.carry.spec
                resume = self.restore(input.carry)
            else:
                loaded = await load_agent(input.agent, input.model, input.max_steps)
                spec, self.worker, self.price = loaded.spec, loaded.worker, loaded.price
                self.prices = dict(loaded.prices)
                self.budget.limit(input.budget_usd, input.budget_tokens)
                if self.continue_as_new_enabled:  # the workflow's own agent: its limits apply
                    self.budget.limit(spec.budget_usd, spec.budget_tokens)
                    if not self.budget.state.limited:
                        self.budget.limit(
                            self.worker.default_budget_usd, self.worker.default_budget_tokens
                        )
                if spec.mcp_servers:
                    spec = await self._with_mcp_tools(spec)
                spec = self._with_overrides(spec, input)
                if input.history:
                    # A fork (``starter.py fork``): another run's conversation as it stood after
                    # step ``forked_from.step``; this run goes on from there with its own keys,
                    # policy and approvals. Inputs recorded before forks existed have no history.
                    self.messages.extend(input.history)
                    self.steps = input.forked_from.step if input.forked_from else 0
                else:
                    self.messages.append(UserMessage(text=input.task))
        except ApplicationError:
            self.status, self.phase = "failed", "finished"
            raise
        self.spec = spec
        self._drop_held_decisions(resume)
        self._set_search_start(spec)
        try:
            self.status = await self._loop(spec, resume)
        except BudgetExhausted as why:
            # Graceful, like max_steps: the run ends with what it has and says why. The step
            # whose call did not fit was not made.
            self.status = "budget_exhausted"
            self.steps -= 1
            self.steps_this_run -= 1
            self.warnings.append(f"budget exhausted: {why}")
        except asyncio.CancelledError:
            # Cancellation is a user decision, not an error: finish with what we have.
            self.status = "cancelled"
        except ActivityError as err:
            if self.worker.fixes >= 1 and isinstance(err.cause, CancelledError):
                # The run was cancelled while its model call was out: as above.
                self.status = "cancelled"
                return self._finish()
            self.status = "failed"
            self.phase = "finished"
            raise ApplicationError(
                f"model call failed at step {self.steps}: {failure_message(err)}",
                self.result(error=failure_message(err)),
                type="ModelCallFailed",
                non_retryable=True,
            ) from err
        return self._finish()

    def _finish(self) -> AgentResult:
        self.phase = "finished"
        self._set_search_status(self.status)
        workflow.set_current_details(f"{self.status} after {self.steps} steps")
        return self.result()

    def status_view(self) -> AgentStatusView:
        return AgentStatusView(
            status=self.status,
            phase=self.phase,
            agent=self.agent,
            model=self.spec.model if self.spec else None,
            steps=self.steps,
            max_steps=self.spec.max_steps if self.spec else None,
            output=self.output,
            usage=self.usage,
            cost_usd=self.cost_usd,
            running_tools=list(self.running_tools),
            recent_steps=self.recent_steps[-RECENT_STEPS_SHOWN:],
            pending_approvals=[a for a in self.desk.pending.values() if a.id in self.approval_ids],
            runs=self.runs,
            warnings=list(self.warnings),
            budget=self.budget.state.model_copy(deep=True),
        )

    def result(self, error: str | None = None) -> AgentResult:
        return AgentResult(
            status=self.status,
            output=self.output,
            steps=self.steps,
            usage=self.usage,
            cost_usd=self.cost_usd,
            agent=self.agent,
            model=self.spec.model if self.spec else "",
            tool_calls=self.tool_calls[-RECORDS_KEPT:],
            approvals=[r for r in self.desk.records if r.id in self._closed][-RECORDS_KEPT:],
            policy_decisions=self.policy_records[-RECORDS_KEPT:],
            error=error,
            tool_calls_total=self.tool_calls_total,
            runs=self.runs,
            output_json=self.output_json if self.status == "completed" else None,
            output_repairs=self.output_repairs,
            warnings=list(self.warnings),
            subagent_calls=self.delegations.used,
            budget=self.budget.state.model_copy(deep=True),
            cost_by_model=dict(self.cost_by_model),
        )

    def _ids(self, kind: Literal["model", "summary", "tool", "apr"], *parts: object) -> str:
        """Activity and approval ids: ``model-3`` for the workflow's own agent, ``scope:model-3``
        for a scoped one (``apr-{scope}-3-0`` for approvals: ids users type)."""
        tail = "-".join(str(p) for p in parts)
        if kind == "apr":
            return f"apr-{self.scope}-{tail}" if self.scope else f"apr-{tail}"
        return f"{self.scope}:{kind}-{tail}" if self.scope else f"{kind}-{tail}"

    async def _with_mcp_tools(self, spec: AgentSpec) -> AgentSpec:
        """The spec with its MCP servers' tools added, listed once for this run."""
        listed = await list_mcp_tools(
            spec, f"{self.scope}:list-mcp-tools" if self.scope else "list-mcp-tools"
        )
        own = {t.name for t in spec.tools}
        offered = [
            t
            for t in listed
            if t.name not in own
            and (t.name not in spec.policy or spec.policy[t.name].action != "deny")
        ]
        self.mcp_tools = frozenset(t.name for t in offered)
        return spec.model_copy(update={"tools": [*spec.tools, *offered]})

    def _with_overrides(self, spec: AgentSpec, input: AgentInput) -> AgentSpec:
        update: dict[str, object] = {}
        if input.output_schema is not None:
            update.update(output_schema=checked_schema(input.output_schema))
            update.update(output_name=output_name(input.output_schema))
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
                if self.steps >= spec.max_steps:
                    return "max_steps"
                if self._continue_as_new_due(spec):
                    if self.stream is not None:
                        self.stream.detach()  # a waiting subscriber's poll is a handler too
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    self._continue_as_new(spec, None)
                self.steps += 1
                self.steps_this_run += 1
                self._set_phase(
                    "calling_model", f"step {self.steps}/{spec.max_steps}: calling model"
                )
                response = await self._call_model(spec)
                self._repairing = False
                if response.text:
                    self.output = response.text
                self.recent_steps.append(
                    StepView(step=self.steps, text=response.text, model=self._answered_by)
                )
                del self.recent_steps[:-RECENT_STEPS_SHOWN]
                self.messages.append(
                    AssistantMessage(text=response.text, tool_calls=response.tool_calls)
                )
                if not response.tool_calls:
                    if spec.output_schema is None:
                        return "completed"
                    value, error = check_output(spec, response.text)
                    if error is None:
                        self.output_json = value
                        return "completed"
                    if self.output_repairs >= spec.output_repairs or self.steps >= spec.max_steps:
                        return "invalid_output"
                    # A repair is another model call (a step with its own key and cost).
                    self.output_repairs += 1
                    self._repairing = True
                    self.messages.append(UserMessage(text=repair_prompt(spec, error)))
                    continue
                calls, finished, waiting = response.tool_calls, {}, {}
            outcomes = await self._run_tools(spec, calls, finished, waiting)
            self.messages.extend(
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
        # Sub-agents started together split what is left of the budget evenly.
        delegating = [c for c in calls if c.id not in finished and subagent_of(spec, c.name)]
        self._delegation_share = self.budget.share(len(delegating))
        tasks = {
            call.id: asyncio.create_task(self.run_tool(spec, call, i, waiting.get(call.id)))
            for i, call in enumerate(calls)
            if call.id not in finished
        }
        self.running_tools = [call.name for call in calls if call.id in tasks]
        self._set_phase(
            "running_tools",
            f"step {self.steps}/{spec.max_steps}: running {', '.join(self.running_tools)}",
        )
        try:
            while not all(task.done() for task in tasks.values()):
                await workflow.wait_condition(
                    lambda: all(task.done() for task in tasks.values()) or self._parked(spec, tasks)
                )
                if self._parked(spec, tasks):
                    if self.stream is not None:
                        self.stream.detach()
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    if not self._parked(spec, tasks) and self.stream is not None:
                        self.stream.reattach()  # a decision came in: no continue-as-new
                    if self._parked(spec, tasks):
                        done = [t.result() for t in tasks.values() if t.done()]
                        self._continue_as_new(
                            spec,
                            ResumeStep(
                                calls=calls,
                                outcomes=[*finished.values(), *done],
                                pending=self._pending(),
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
        self.running_tools = []
        results = {call_id: task.result() for call_id, task in tasks.items()}
        return [finished.get(call.id) or results[call.id] for call in calls]

    def _pending(self) -> list[PendingApproval]:
        return [a for a in self.desk.pending.values() if a.id in self.approval_ids]

    def _parked(self, spec: AgentSpec, tasks: dict[str, asyncio.Task[ToolOutcome]]) -> bool:
        """Whether the run should continue as new now, mid-step: it is due, and every call
        still unfinished is parked waiting for a human (nothing running, nothing decided)."""
        unfinished = [call_id for call_id, task in tasks.items() if not task.done()]
        return (
            bool(unfinished)
            and self._continue_as_new_due(spec)
            and len(unfinished) == len(self.waiting_approvals) == len(self._pending())
            and all(self.desk.decision(a) is None for a in self.waiting_approvals)
        )

    def _continue_as_new_due(self, spec: AgentSpec) -> bool:
        if not self.continue_as_new_enabled:
            return False
        every = spec.continue_as_new_after_steps
        return workflow.info().is_continue_as_new_suggested() or (
            every is not None and self.steps_this_run >= every
        )

    def _continue_as_new(self, spec: AgentSpec, resume: ResumeStep | None) -> None:
        messages, context = compact(self.messages, self.context)
        carried = CarriedRun(
            spec=spec,
            messages=messages,
            context=context,
            steps=self.steps,
            usage=self.usage,
            cost_usd=self.cost_usd,
            output=self.output,
            recent_steps=self.recent_steps,
            tool_calls=self.tool_calls[-RECORDS_KEPT:],
            tool_calls_total=self.tool_calls_total,
            approvals=self.desk.records[-RECORDS_KEPT:],
            policy_decisions=self.policy_records[-RECORDS_KEPT:],
            mcp_tools=sorted(self.mcp_tools),
            runs=self.runs + 1,
            resume=resume,
            worker=self.worker,
            output_repairs=self.output_repairs,
            warnings=self.warnings,
            depth=self.delegations.depth,
            subagent_calls=self.delegations.used,
            subagent_calls_granted=self.delegations.granted,
            price=self.price,
            budget=self.budget.state,
            prices=self.prices,
            cost_by_model=self.cost_by_model,
        )
        if self.worker.max_request_bytes is not None:
            self._check_fits(
                "the state to continue as new with is", len(carried.model_dump_json().encode())
            )
        workflow.logger.info(
            "continuing as new after %d steps (%d in this run, %d history events)",
            self.steps,
            self.steps_this_run,
            workflow.info().get_current_history_length(),
        )
        streamed: dict[str, Any] = {}
        if self.stream is not None and self.continue_as_new_enabled:
            self.stream.continued(runs=self.runs + 1, steps=self.steps)
            state = dataclasses.asdict(self.stream.state_for_continue_as_new())
            streamed = {"stream": True, "stream_state": state}
        workflow.continue_as_new(
            AgentInput(agent=self.agent, task=self._task(), carry=carried, **streamed)
        )

    def _task(self) -> str:
        first = self.messages[0] if self.messages else None
        return first.text if isinstance(first, UserMessage) else ""

    def restore(self, carry: CarriedRun) -> ResumeStep | None:
        self.messages = list(carry.messages)
        self.context = carry.context
        self.steps = carry.steps
        self.usage = carry.usage
        self.cost_usd = carry.cost_usd
        self.output = carry.output
        self.recent_steps = list(carry.recent_steps)
        self.tool_calls = list(carry.tool_calls)
        self.tool_calls_total = carry.tool_calls_total
        self.desk.records = list(carry.approvals)
        self._closed.update(r.id for r in carry.approvals)
        self.policy_records = list(carry.policy_decisions)
        self.mcp_tools = frozenset(carry.mcp_tools)
        self.runs = carry.runs
        self.output_repairs = carry.output_repairs
        self.worker = carry.worker
        self.warnings = list(carry.warnings)
        self.delegations = Delegations(
            depth=carry.depth, granted=carry.subagent_calls_granted, used=carry.subagent_calls
        )
        self.price = carry.price
        self.prices = dict(carry.prices)
        self.cost_by_model = dict(carry.cost_by_model)
        if carry.budget is not None:
            self.budget.state = carry.budget
        return carry.resume

    # -- model calls -----------------------------------------------------------------------

    async def _context_for_call(self, spec: AgentSpec) -> list[Message]:
        """The messages this model call sends, under the agent's context policy.

        Summary calls (``rolling_summary``, ``summarize``) are ordinary model activities with
        their own idempotency keys. Messages no longer sent are dropped from the loop's state at
        once, so memory and continue-as-new input stay bounded.
        """
        if spec.context.strategy == "keep_all":
            return self.messages
        plan = plan_context(self.messages, spec.context, self.context, spec.model)
        while plan.needs_summary:
            self._set_phase("calling_model", f"step {self.steps}: summarizing older context")
            summary = await self.model_activity(
                summary_request(
                    plan.to_fold,
                    self.context,
                    spec.context,
                    agent=spec.name,
                    agent_model=spec.model,
                    step=self.steps,
                    idempotency_key=summary_call_key(
                        self.steps, self.context.summary_calls, self.scope
                    ),
                    task=self.messages[0].text if isinstance(self.messages[0], UserMessage) else "",
                ),
                activity_id=self._ids("summary", self.steps, self.context.summary_calls),
                summary=f"summarize earlier turns · step {self.steps}",
            )
            self.context = apply_summary(self.context, summary.text, len(plan.to_fold))
            plan = plan_context(self.messages, spec.context, self.context, spec.model)
        self.messages, self.context = compact(self.messages, plan.state)
        return plan.send

    def _check_fits(self, what: str, size: int, *details: object) -> None:
        """Without payload offload, fail the run (``ConversationTooLarge``) before a payload
        over Temporal's limit would fail its workflow task forever."""
        limit = self.worker.max_request_bytes
        if limit is None or size <= limit:
            return
        self.status, self.phase = "failed", "finished"
        raise ApplicationError(
            f"step {self.steps}: {what} {size:,} bytes, more than the {limit:,} that fit in "
            "workflow history without payload offload; turn on external storage (PAYLOAD_STORE) "
            "or give the agent a context policy that truncates or summarizes",
            *details,
            type="ConversationTooLarge",
            non_retryable=True,
        )

    def turn_request(self, spec: AgentSpec, messages: list[Message]) -> ModelRequest:
        """The model request for this loop's current step: the agent's prompt, tools, limits
        and output schema, with an idempotency key scoped like the loop."""
        return ModelRequest(
            agent=spec.name,
            model=spec.model,
            system=spec.system_prompt,
            messages=messages,
            tools=spec.tools,
            max_tokens=spec.max_tokens,
            idempotency_key=model_call_key(self.steps, self.scope),
            step=self.steps,
            output_schema=spec.output_schema,
            output_name=spec.output_name,
        )

    def _price_of(self, model: str) -> ModelPrice | None:
        if self.spec is None or model == self.spec.model:
            return self.price
        return self.prices.get(model)

    async def model_activity(
        self, request: ModelRequest, activity_id: str, summary: str
    ) -> ModelResponse:
        """One model call under the budget, on the model for its step kind, falling back
        along the agent's chain when a model fails for good on a transient error."""
        spec = self.spec
        kind = "summary" if request.purpose == "summary" else "repair" if self._repairing else ""
        if spec is not None and kind in spec.step_models:
            request = request.model_copy(update={"model": spec.step_models[kind]})
        fallbacks = [m for m in spec.fallback_models if m != request.model] if spec else []
        chain = [request.model, *fallbacks]
        attempts = spec.model_attempts if spec is not None and fallbacks else None
        for index, model in enumerate(chain):
            this = request
            if index:  # a different call: its own activity id and idempotency key
                this = request.model_copy(
                    update={"model": model, "idempotency_key": f"{request.idempotency_key}/{index}"}
                )
            try:
                return await self._one_model_call(
                    this,
                    activity_id if not index else f"{activity_id}-fallback-{index}",
                    summary if not index else f"{summary} · fallback {index}",
                    attempts,
                )
            except ActivityError as err:
                if index + 1 == len(chain) or not worth_falling_back(err, self.worker.fixes):
                    raise
                self.warnings.append(
                    f"step {self.steps}: {model} failed ({failure_message(err)}); "
                    f"falling back to {chain[index + 1]}"
                )
                del self.warnings[:-WARNINGS_KEPT]
        raise AssertionError("unreachable: the chain has at least one model")

    async def _one_model_call(
        self, request: ModelRequest, activity_id: str, summary: str, attempts: int | None
    ) -> ModelResponse:
        provider = request.model.split(":", 1)[0]
        price = self._price_of(request.model)
        reservation = self.budget.reserve_call(request, price)  # or BudgetExhausted
        stream = self.stream if request.purpose == "turn" else None
        if stream is not None:
            max_steps = self.spec.max_steps if self.spec else None
            request = stream.model_call(request, activity_id, max_steps, self.scope)
        try:
            response = await call_model(
                request,
                activity_id=activity_id,
                summary=summary,
                task_queue=self.worker.model_task_queues.get(provider),
                max_attempts=attempts,
            )
        except BaseException as err:
            self.budget.release(reservation)
            if stream is not None:
                stream.call_failed(activity_id, request.step, failure_message(err))
            raise
        if stream is not None:
            stream.reply(activity_id, request.step, response)
        # The cost at the price recorded with the run (replays and audits agree with it).
        cost = price.cost(response.usage) if price is not None else response.cost_usd
        priced = price is not None or response.priced
        self.budget.settle_call(reservation, response.usage, cost if priced else None)
        self.usage = self.usage.plus(response.usage)
        self.cost_usd += cost
        self.cost_by_model[request.model] = self.cost_by_model.get(request.model, 0.0) + cost
        self._answered_by = request.model
        self._set_search_cost()
        return response

    async def _call_model(self, spec: AgentSpec) -> ModelResponse:
        messages = await self._context_for_call(spec)
        if self.worker.max_request_bytes is not None:
            self._check_fits(
                "the conversation to send is about",
                sum(message_bytes(m) for m in messages),
                self.result(error="conversation too large for history"),
            )
        return await self.model_activity(
            self.turn_request(spec, messages),
            activity_id=self._ids("model", self.steps),
            summary=f"model step {self.steps}",
        )

    # -- tool calls ------------------------------------------------------------------------

    async def run_tool(
        self, spec: AgentSpec, call: ToolCall, index: int, waiting: PendingApproval | None = None
    ) -> ToolOutcome:
        """One call: policy, approval (``waiting``: re-open a carried approval), activity."""
        step = self.steps
        record = self._record_for(step, call) if waiting else None
        if record is None:
            record = ToolCallRecord(
                step=step,
                call_id=call.id,
                name=call.name,
                arguments=call.arguments[:ARGUMENTS_KEPT_CHARS],
                is_error=True,
            )
            self.tool_calls.append(record)
            del self.tool_calls[:-RECORDS_KEPT]
            self.tool_calls_total += 1
            if self.recent_steps:
                self.recent_steps[-1].tool_calls.append(record)

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
                decision = await self.await_approval(
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
        record.idempotency_key = tool_call_key(step, call.id, self.scope)
        delegate = subagent_of(spec, call.name)
        if delegate is not None:
            outcome = await self.delegations.run(
                spec, delegate, call, arguments, step, self.scope, self.desk,
                self.budget, self._delegation_share,
            )  # fmt: skip
            record.is_error = outcome.is_error
            record.result_preview = outcome.content[:RESULT_PREVIEW_CHARS]
            return outcome
        try:
            outcome = await execute_tool(
                ToolRequest(
                    agent=spec.name,
                    call_id=call.id,
                    name=call.name,
                    arguments=arguments,
                    idempotency_key=record.idempotency_key,
                    step=step,
                    effect=schema.effect,
                ),
                schema,
                mcp=call.name in self.mcp_tools,
                activity_id=self._ids("tool", step, call.id),
                summary=tool_summary(call.name, arguments),
                # A local call saves a workflow task per step; a gated call stays a regular
                # activity, and runs recorded before local tools keep theirs (replay).
                local=schema.local
                and self.worker.local_tools
                and (rule is None or rule.action != "require_approval"),
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
        for record in reversed(self.tool_calls):
            if record.step == step and record.call_id == call.id:
                return record
        return None

    # -- approvals -------------------------------------------------------------------------

    async def await_approval(
        self,
        spec: AgentSpec,
        call: ToolCall,
        arguments: dict[str, object],
        index: int,
        reason: str,
        carried: PendingApproval | None = None,
        approval_id: str | None = None,
    ) -> DecideRequest:
        """Wait for a human; on the first deadline escalate, on the second apply the default.

        ``carried`` is an approval opened before continue-as-new: it keeps its id, its request
        time, its deadline and whether it was already escalated.
        """
        settings = spec.approvals
        now = workflow.now()
        approval = carried or PendingApproval(
            id=approval_id or self._ids("apr", self.steps, index),
            tool=call.name,
            arguments=arguments,
            reason=reason or "this tool requires human approval",
            requested_at=now,
            deadline=now + settings.timeout,
            step=self.steps,
            call_id=call.id,
            approvers=settings.approvers,
        )
        self.desk.open(approval)
        self.approval_ids.add(approval.id)
        if carried is not None:
            self._apply_held_decisions(spec, approval)
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
            self.desk.submit(
                DecideRequest(
                    approval_id=approval.id,
                    approver="system:timeout",
                    decision=settings.on_timeout,
                    comment="no decision before the deadline; the agent's default applied",
                ),
                approval,
            )
        request = self.desk.decision(approval.id)
        assert request is not None
        trace_approval(approval, request, self.agent)  # who decided what (a span; replay-safe)
        self.desk.close(approval, request)
        self.approval_ids.discard(approval.id)
        self._closed.add(approval.id)
        self._show_approvals()
        return request

    def _drop_held_decisions(self, resume: ResumeStep | None) -> None:
        """Signals held while the run loaded (``ApprovalDesk.held``) that no approval it
        carries will take: logged and dropped, as a decision for nothing pending always is."""
        carried = {a.id for a in resume.pending} if resume is not None else set()
        for request in list(self.desk.held):
            if request.approval_id in carried or (request.approval_id is None and carried):
                continue
            self.desk.held.remove(request)
            workflow.logger.warning(
                "ignored %s signal: %s",
                request.decision,
                f"approval {request.approval_id!r} is not pending"
                if request.approval_id
                else "no approval is pending",
            )

    def _apply_held_decisions(self, spec: AgentSpec, approval: PendingApproval) -> None:
        """Decide a re-opened approval by the signals held for it (``ApprovalDesk.held``),
        checked as any decision is; the first valid one wins."""
        for request in self.desk.take_held(approval.id):
            if self.worker.fixes < 1:
                workflow.logger.warning(
                    "ignored %s signal: the run had not re-opened its approvals yet",
                    request.decision,
                )
                continue
            try:
                checked = self.desk.check(request, spec.approvals, {t.name: t for t in spec.tools})
            except InvalidDecision as err:
                workflow.logger.warning("ignored %s signal: %s", request.decision, err)
                continue
            self.desk.submit(request, checked)

    async def _wait_for_decision(
        self, approval: PendingApproval, timeout: timedelta, deadline: str
    ) -> bool:
        if timeout <= timedelta(0):
            return self.desk.decision(approval.id) is not None
        self.waiting_approvals.add(approval.id)
        try:
            await workflow.wait_condition(
                lambda: self.desk.decision(approval.id) is not None,
                timeout=timeout,
                timeout_summary=f"{deadline} {approval.id} · {approval.tool}",
            )
        except TimeoutError:
            return False
        finally:
            self.waiting_approvals.discard(approval.id)
        return True

    @staticmethod
    def _until(deadline: datetime | None) -> timedelta:
        return deadline - workflow.now() if deadline is not None else timedelta(0)

    def _show_approvals(self) -> None:
        # A child run (a sub-agent, or an agent a workflow runs with ``child=True``) tells its
        # parent, so the parent's ``status`` shows the approvals and forwards decisions.
        self.desk.report_to_parent()
        pending = self._pending()
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
            self._set_phase("running_tools", f"step {self.steps}: running tools")
            self._set_search_status("running")

    def _note_policy(self, call: ToolCall, action: PolicyAction, detail: str) -> None:
        self.policy_records.append(
            PolicyRecord(
                step=self.steps, call_id=call.id, tool=call.name, action=action, detail=detail
            )
        )

    def _upsert(self, updates: list[SearchAttributeUpdate[Any]]) -> None:
        """Upsert search attributes. From fix level 2 only those whose value changes: an upsert
        is a command and a visibility write on the server, and the status stayed ``running``
        on every step (runs recorded before upsert every value, so they replay unchanged)."""
        if self.worker.fixes >= 2:
            current = workflow.info().typed_search_attributes
            updates = [u for u in updates if current.get(u.key) != u.value]
            if not updates:
                return
        workflow.upsert_search_attributes(updates)

    def _set_search_status(self, value: str) -> None:
        if self.worker.status_search_attribute:
            self._upsert([AGENT_STATUS.value_set(value)])

    def _set_search_start(self, spec: AgentSpec) -> None:
        """``AgentStatus`` ``running`` and ``AgentName`` / ``AgentModel`` for the workflow's
        own agent (runs recorded before these existed have no ``agent_search_attributes`` in
        their worker settings): one upsert from fix level 2, two before."""
        status = [AGENT_STATUS.value_set("running")] if self.worker.status_search_attribute else []
        agent = (
            [AGENT_NAME.value_set(spec.name), AGENT_MODEL.value_set(spec.model)]
            if self.continue_as_new_enabled and self.worker.agent_search_attributes
            else []
        )
        for updates in [status + agent] if self.worker.fixes >= 2 else [status, agent]:
            if updates:
                self._upsert(updates)

    def _set_search_cost(self) -> None:
        """``AgentCostUSD`` / ``AgentTokens``: this workflow's spend, its children's included."""
        if self.worker.cost_search_attributes:
            state = self.budget.state
            self._upsert(
                [
                    AGENT_COST_USD.value_set(round(state.spent_usd, 6)),
                    AGENT_TOKENS.value_set(state.spent_tokens),
                ]
            )

    def _set_phase(self, phase: Phase, details: str) -> None:
        self.phase = phase
        workflow.set_current_details(details)
