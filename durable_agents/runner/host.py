"""Agents inside any workflow: ``AgentHost`` (the handlers) and ``AgentRunner`` (the calls).

A user's workflow mixes in ``AgentHost`` and gets, without writing them, the ``status`` query,
the ``approve``/``reject`` signals and the ``decide`` update over every agent it runs, and
``self.agents`` to run them::

    @workflow.defn
    class Triage(AgentHost):
        @workflow.run
        async def run(self, ticket: str) -> str:
            plan = await self.agents.run("planner", ticket)                  # inline
            report = await self.agents.run("finops", plan.output, child=True)  # child workflow
            return report.output

*Inline*, the agent's model and tool calls are activities in this workflow's history (keys and
activity ids scoped by a label, ``planner-1``). As a *child*, it is an ``AgentWorkflow`` of its
own (own history, continue-as-new, Web UI page, the Relationships tab), cancelled with its
parent. For a hand-written loop, ``self.agents.session(...)`` gives the single steps: one model
call, one tool call (policy, approval, idempotency key and effects ledger applied), one
approval request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import pydantic
from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import (
        AgentInput,
        AgentResult,
        AgentSpec,
        AgentStatusView,
        Message,
        ModelResponse,
        PendingApproval,
        ToolCall,
        ToolOutcome,
        Usage,
        UserMessage,
    )
    from durable_agents.contracts.agent_io import AgentRunInfo
    from durable_agents.contracts.approvals import (
        ApprovalSignal,
        ChildApprovals,
        DecideRequest,
        DecideResult,
    )
    from durable_agents.contracts.context import ContextPolicy
    from durable_agents.runner.approvals import ApprovalDesk, InvalidDecision
    from durable_agents.runner.budget import BudgetBook
    from durable_agents.runner.inbound import read_decision, read_signal
    from durable_agents.runner.loop import AgentLoop
    from durable_agents.runner.steps import load_agent
    from durable_agents.streaming.workflow_side import AgentStream

SUMMARY_TASK_CHARS = 100
"""How much of a child's task its Web UI summary shows."""


class AgentSession:
    """The single steps of one agent, for a workflow that writes its own loop.

    Made by ``AgentRunner.session``. Steps are numbered per session; every call carries an
    idempotency key scoped by the session's label.
    """

    def __init__(self, loop: AgentLoop, spec: AgentSpec) -> None:
        self._loop = loop
        self.spec = spec
        self._requests = 0

    @property
    def usage(self) -> Usage:
        return self._loop.usage

    @property
    def cost_usd(self) -> float:
        return self._loop.cost_usd

    async def model_call(self, messages: list[Message] | str) -> ModelResponse:
        """One model call with the agent's prompt, tools and model (a new step)."""
        loop = self._loop
        if isinstance(messages, str):
            messages = [UserMessage(text=messages)]
        loop.steps += 1
        return await loop.model_activity(
            loop.turn_request(self.spec, messages),
            activity_id=f"{loop.scope}:model-{loop.steps}",
            summary=f"{loop.scope} model step {loop.steps}",
        )

    async def tool_call(self, call: ToolCall, index: int = 0) -> ToolOutcome:
        """One tool call under the agent's policy: denied and unknown tools are refused, gated
        ones wait for a human (deadline, escalation), the rest run as an activity with an
        idempotency key (and the effects ledger, for side effects)."""
        return await self._loop.run_tool(self.spec, call, index)

    async def request_approval(
        self, action: str, details: dict[str, Any], reason: str = ""
    ) -> DecideRequest:
        """Ask a human (the agent's approvers, deadline and escalation) about ``action``; the
        decision, or the agent's default when the deadlines pass. Shown in ``status`` and
        decided with ``approve``/``reject``/``decide`` like any gated tool call."""
        self._requests += 1
        call = ToolCall(id=f"request-{self._requests}", name=action, arguments=json.dumps(details))
        approval_id = f"apr-{self._loop.scope}-request-{self._requests}"
        return await self._loop.await_approval(
            self.spec, call, details, 0, reason, approval_id=approval_id
        )


class AgentRunner:
    """Runs agents for one workflow; reached as ``self.agents`` on an ``AgentHost``."""

    def __init__(self) -> None:
        self.desk = ApprovalDesk()
        self.budget = BudgetBook()
        """The workflow's budget: its agents' model calls and its children's grants draw from
        it (``set_budget`` to limit it)."""
        self.loops: list[AgentLoop] = []
        self.children: list[AgentRunInfo] = []
        self.main: AgentLoop | None = None
        """The workflow's own agent (``AgentWorkflow``), whose view ``status`` shows."""
        self.stream: AgentStream | None = None
        """Set (from the workflow's ``__init__``) when the workflow streams: its agents' model
        calls publish steps, text and replies there (``durable_agents.streaming``)."""
        self._labels: dict[str, int] = {}

    def label(self, agent: str) -> str:
        """A label unique in this workflow: ``finops-1``, ``finops-2``, ..."""
        self._labels[agent] = self._labels.get(agent, 0) + 1
        return f"{agent}-{self._labels[agent]}"

    def set_budget(self, usd: float | None = None, tokens: int | None = None) -> None:
        """Limit what this workflow's agents and children may spend together (USD at the
        recorded model prices, and tokens); the tighter limit wins if one is already set."""
        self.budget.limit(usd, tokens)

    def main_loop(self) -> AgentLoop:
        """The loop of the workflow's own agent: unscoped, may continue as new."""
        self.main = AgentLoop(self.desk, continue_as_new=True, budget=self.budget)
        self.main.stream = self.stream
        self.loops.append(self.main)
        return self.main

    async def run(
        self,
        agent: str,
        task: str,
        *,
        child: bool = False,
        model: str | None = None,
        max_steps: int | None = None,
        context: ContextPolicy | None = None,
        output_type: type[BaseModel] | None = None,
        output_schema: dict[str, Any] | None = None,
        label: str | None = None,
    ) -> AgentResult:
        """Run ``agent`` on ``task`` to its end and return its result.

        Args:
            child: Run it as a child ``AgentWorkflow`` (own history and continue-as-new, own Web
                UI page; cancelling this workflow cancels it) instead of inline.
            model, max_steps, context: As in ``AgentInput``.
            output_type: A pydantic model the final answer must match (typed output, with
                repairs); read it with ``result.output_as(output_type)``. Default: the
                agent's own ``output_type``, if any.
            output_schema: The same as a JSON object schema (when there is no pydantic type).
            label: Names the run in keys, ids and ``status`` (default ``<agent>-<n>``); a child's
                workflow id is ``<this workflow id>/<label>``.

        Raises:
            ApplicationError: The agent is unknown (``AgentNotAvailable``) or a model call
                failed for good (``ModelCallFailed``): both fail the workflow unless caught.
            ChildWorkflowError: A child run failed.
        """
        label = label or self.label(agent)
        input = AgentInput(
            agent=agent,
            task=task,
            model=model,
            max_steps=max_steps,
            context=context,
            output_schema=output_type.model_json_schema() if output_type else output_schema,
        )
        if child:
            return await self._run_child(label, input)
        loop = AgentLoop(self.desk, scope=label, budget=self.budget)
        loop.stream = self.stream
        self.loops.append(loop)
        return await loop.run(input)

    async def _run_child(self, label: str, input: AgentInput) -> AgentResult:
        info = workflow.info()
        excerpt = " ".join(input.task.split())[:SUMMARY_TASK_CHARS]
        child_id = f"{info.workflow_id}/{label}"
        child = AgentRunInfo(label=label, agent=input.agent, workflow_id=child_id)
        self.children.append(child)
        # It draws from what is left of this workflow's budget; the rest comes back at its end.
        grant = self.budget.grant(label, child_id)
        input = input.model_copy(
            update={"budget_usd": grant.granted_usd, "budget_tokens": grant.granted_tokens}
        )
        result: AgentResult | None = None
        try:
            result = await workflow.execute_child_workflow(
                "AgentWorkflow",
                input,
                id=child_id,
                task_queue=info.task_queue,
                result_type=AgentResult,
                static_summary=f"{input.agent}: {excerpt}",
            )
        except BaseException:
            child.status = "failed"
            raise
        finally:
            self.desk.child_closed(child_id)
            self.budget.settle_child(grant, result)
        child.status, child.steps = result.status, result.steps
        return result

    async def session(
        self, agent: str, *, model: str | None = None, label: str | None = None
    ) -> AgentSession:
        """The single steps of ``agent`` (its definition loaded and recorded once)."""
        label = label or self.label(agent)
        loaded = await load_agent(agent, model)
        spec = loaded.spec
        loop = AgentLoop(self.desk, scope=label, budget=self.budget)
        loop.stream = self.stream
        loop.agent, loop.spec, loop.worker, loop.price = agent, spec, loaded.worker, loaded.price
        self.loops.append(loop)
        return AgentSession(loop, spec)

    # -- what the handlers see -----------------------------------------------------------

    def child_approval_views(self) -> list[PendingApproval]:
        """Sub-agents' pending approvals, under the ids this run accepts decisions for."""
        parent = workflow.info().workflow_id
        return [
            approval.model_copy(update={"id": shown, "workflow_id": child})
            for shown, (child, approval) in self.desk.child_approvals(parent).items()
        ]

    def status_view(self) -> AgentStatusView:
        if self.main is not None:
            view = self.main.status_view()
        elif self.loops:
            view = self.loops[-1].status_view()
        else:
            view = AgentStatusView(
                status="running", phase="starting", agent="", model=None, steps=0,
                max_steps=None, output="", usage=Usage(), cost_usd=0.0,
            )  # fmt: skip
        if self.main is None:
            usage = Usage()
            for loop in self.loops:
                usage = usage.plus(loop.usage)
            view.usage = usage
            view.cost_usd = sum(loop.cost_usd for loop in self.loops)
            view.pending_approvals = list(self.desk.pending.values())
            view.agents = [
                AgentRunInfo(
                    label=loop.scope, agent=loop.agent, status=loop.status, steps=loop.steps
                )
                for loop in self.loops
            ] + list(self.children)
        view.pending_approvals += self.child_approval_views()
        view.budget = self.budget.state.model_copy(deep=True)
        return view

    def child_target(self, request: DecideRequest) -> tuple[str, PendingApproval] | None:
        """The sub-agent approval a decision made here is for, or None (one of this run's)."""
        if not request.approval_id or "/" not in request.approval_id:
            return None
        found = self.desk.child_approvals(workflow.info().workflow_id).get(request.approval_id)
        if found is None:
            raise InvalidDecision(
                f"unknown approval {request.approval_id!r}; pending here: "
                + (", ".join(a.id for a in self.status_view().pending_approvals) or "none")
            )
        approval = found[1]
        if not request.approver.strip():
            raise InvalidDecision("approver is required")
        if approval.approvers and request.approver not in approval.approvers:
            raise InvalidDecision(
                f"{request.approver!r} may not decide this approval; approvers: "
                f"{', '.join(approval.approvers)}"
            )
        return found

    def forward(
        self, request: DecideRequest, child: str, approval: PendingApproval
    ) -> DecideResult:
        """Send a decision made by this run's id on to the sub-agent's workflow (a signal; the
        child validates it again and applies it)."""
        signal = ApprovalSignal(
            approval_id=approval.id,
            approver=request.approver,
            comment=request.comment,
            reason=request.comment if request.decision == "reject" else "",
            arguments=request.arguments,
        )
        handle = workflow.get_external_workflow_handle(child)
        asyncio.create_task(handle.signal(request.decision, signal))  # noqa: RUF006
        return DecideResult(
            approval_id=request.approval_id or approval.id,
            decision=request.decision,
            approver=request.approver,
            tool=approval.tool,
            arguments=request.arguments if request.arguments is not None else approval.arguments,
        )

    def check_decision(self, request: DecideRequest) -> Any:
        if self.child_target(request) is not None:
            return None
        approval_id = self.desk.resolve_id(request.approval_id)
        owner = next((loop for loop in self.loops if approval_id in loop.approval_ids), None)
        if owner is None or owner.spec is None:
            if not self.loops or all(loop.spec is None for loop in self.loops):
                raise InvalidDecision(
                    "the run has not loaded its agent yet (starting, or continuing as new); "
                    "nothing is pending: try again in a moment"
                )
            owner = next(loop for loop in self.loops if loop.spec is not None)
        assert owner.spec is not None
        tools = {t.name: t for t in owner.spec.tools}
        return self.desk.check(request, owner.spec.approvals, tools)

    def decide(self, request: DecideRequest) -> DecideResult:
        child = self.child_target(request)
        if child is not None:
            return self.forward(request, *child)
        return self.desk.submit(request, self.check_decision(request))

    def decide_by_signal(
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
        if self._starting(request):
            # A run continued as new gets its first task (and signals with it) before it has
            # re-opened the approvals it carries: hold the decision until it has.
            workflow.logger.info(
                "holding %s signal for %s until the run has loaded its agent",
                request.decision,
                request.approval_id or "the pending approval",
            )
            self.desk.hold(request)
            return
        try:
            self.decide(request)
        except InvalidDecision as err:
            workflow.logger.warning("ignored %s signal: %s", request.decision, err)

    def _starting(self, request: DecideRequest) -> bool:
        """Whether no agent of this run has loaded yet (a decision for a child is forwarded)."""
        return (request.approval_id is None or "/" not in request.approval_id) and all(
            loop.spec is None for loop in self.loops
        )


class AgentHost:
    """Mix into a ``@workflow.defn`` class to run agents in it (see the module docstring).

    Gives the workflow the ``status`` query, the ``approve`` and ``reject`` signals and the
    ``decide`` update (its validator refuses unknown or already-decided approvals, approvers
    the agent does not list and edited arguments that fail the tool's schema), over every agent
    it runs, and ``self.agents``.
    """

    @property
    def agents(self) -> AgentRunner:
        """The workflow's ``AgentRunner`` (made on first use: no ``__init__`` to call)."""
        runner = self.__dict__.get("_agent_runner")
        if runner is None:
            runner = self.__dict__["_agent_runner"] = AgentRunner()
        return runner

    @workflow.query(name="status")
    def status(self) -> AgentStatusView:
        return self.agents.status_view()

    @workflow.signal(name="approve")
    def approve(self, raw: object = None, *unexpected: object) -> None:
        self.agents.decide_by_signal("approve", raw, unexpected)

    @workflow.signal(name="reject")
    def reject(self, raw: object = None, *unexpected: object) -> None:
        self.agents.decide_by_signal("reject", raw, unexpected)

    @workflow.signal(name="agent_child_approvals")
    def child_approvals(self, raw: object = None) -> None:
        """From a sub-agent's child workflow: its pending approvals (see ``AgentLoop``)."""
        try:
            report = ChildApprovals.model_validate(raw)
            pending = [PendingApproval.model_validate(p) for p in report.pending]
        except pydantic.ValidationError as err:
            workflow.logger.warning("ignored agent_child_approvals signal: %s", err)
            return
        self.agents.desk.child_report(report.workflow_id, pending)
        if workflow.patched("relay-child-approvals"):
            self.agents.desk.report_to_parent()  # a pattern inside a workflow: pass them up

    @workflow.update(name="decide")
    def decide(self, raw: object = None) -> DecideResult:
        return self.agents.decide(read_decision(raw))

    @decide.validator
    def validate_decide(self, raw: object = None) -> None:
        self.agents.check_decision(read_decision(raw))
