"""Sub-agents: an agent that lists ``subagents`` may delegate a task to one, offered to the
model as the tool ``delegate_to_<name>(task)``. A call runs that agent as a child
``AgentWorkflow`` and returns its (typed) output as the tool result.

The limits are the runtime's, not the prompt's: ``max_depth`` (how deep delegation goes below a
top-level run; each child is told its depth) and ``max_subagent_calls`` (a budget shared down
the tree: a child that may delegate in turn is granted at most half of what its parent has
left, set aside while it runs; what it did not use comes back when it ends, so parallel
children never jointly exceed their parent's budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from durable_agents.contracts import AgentInput, AgentResult, AgentSpec, ToolCall, ToolOutcome
    from durable_agents.contracts.agent_io import SUBAGENT_TOOL_PREFIX
    from durable_agents.contracts.tools import InvalidArguments, parse_arguments
    from durable_agents.runner.approvals import ApprovalDesk
    from durable_agents.runner.budget import BudgetBook
    from durable_agents.runner.steps import failure_message


def subagent_of(spec: AgentSpec, tool: str) -> str | None:
    """The sub-agent a tool name stands for, if it is one of ``spec``'s."""
    if (
        tool.startswith(SUBAGENT_TOOL_PREFIX)
        and tool[len(SUBAGENT_TOOL_PREFIX) :] in spec.subagents
    ):
        return tool[len(SUBAGENT_TOOL_PREFIX) :]
    return None


@dataclass
class Delegations:
    """One run's sub-agent calls."""

    depth: int = 0
    """How deep this run is (0: a top-level run)."""
    granted: int | None = None
    """The calls a delegating parent granted this run (``None``: a top-level run)."""
    used: int = 0
    """Calls made, including those of finished sub-agents."""
    reserved: int = 0
    """Calls set aside for sub-agents still running (their own call and their grant)."""

    async def run(
        self,
        spec: AgentSpec,
        agent: str,
        call: ToolCall,
        arguments: str,
        step: int,
        scope: str,
        desk: ApprovalDesk,
        budget: BudgetBook | None = None,
        share: tuple[float | None, int | None] = (None, None),
    ) -> ToolOutcome:
        """Run sub-agent ``agent`` as a child workflow on the task the model gave; its (typed)
        output is the tool result. Depth and call limits are enforced here, by the runtime:
        beyond them the model gets a tool error and nothing starts."""

        def error(message: str) -> ToolOutcome:
            return ToolOutcome(call_id=call.id, name=call.name, content=message, is_error=True)

        try:
            task = parse_arguments(call.name, arguments).get("task")
        except InvalidArguments as err:
            return error(str(err))
        if not isinstance(task, str) or not task.strip():
            return error(f"{call.name} needs a non-empty 'task' string")
        if self.depth + 1 > spec.max_depth:
            return error(
                f"cannot delegate to {agent!r}: this run is at depth {self.depth} and "
                f"delegation may go {spec.max_depth} levels deep; do the work yourself"
            )
        limit = spec.max_subagent_calls
        if self.granted is not None:
            limit = min(limit, self.granted)
        remaining = limit - self.used - self.reserved
        if remaining < 1:
            return error(
                f"cannot delegate to {agent!r}: this run may make {limit} sub-agent calls "
                "(its sub-agents' calls included) and has none left; do the work yourself"
            )
        # A child that may delegate in turn draws from half of what is left here, so sibling
        # calls still get a share and the total never exceeds this run's limit.
        grant = (remaining - 1) // 2 if agent in spec.delegating_subagents else 0
        self.reserved += 1 + grant
        info = workflow.info()
        prefix = f"{scope}/" if scope else ""
        child_id = f"{info.workflow_id}/{prefix}{agent}-{step}-{call.id}"
        excerpt = " ".join(task.split())[:100]
        # Its slice of this run's budget (an even share with sub-agents started with it).
        budget = budget if budget is not None else BudgetBook()
        slice_ = budget.grant(f"{prefix}{agent}-{step}-{call.id}", child_id, *share)
        result: AgentResult | None = None
        try:
            result = await workflow.execute_child_workflow(
                "AgentWorkflow",
                AgentInput(
                    agent=agent,
                    task=task,
                    depth=self.depth + 1,
                    subagent_calls_granted=grant,
                    budget_usd=slice_.granted_usd,
                    budget_tokens=slice_.granted_tokens,
                ),
                id=child_id,
                task_queue=info.task_queue,
                result_type=AgentResult,
                static_summary=f"{agent}: {excerpt}",
            )
        except ChildWorkflowError as err:
            self.used += 1
            return error(f"sub-agent {agent!r} failed: {failure_message(err)}")
        finally:
            self.reserved -= 1 + grant
            desk.child_closed(child_id)
            budget.settle_child(slice_, result)
        assert result is not None
        self.used += 1 + result.subagent_calls
        content = (
            json.dumps(result.output_json) if result.output_json is not None else result.output
        )
        if result.status != "completed":
            return error(f"sub-agent {agent!r} ended {result.status}: {content}")
        return ToolOutcome(call_id=call.id, name=call.name, content=content)
