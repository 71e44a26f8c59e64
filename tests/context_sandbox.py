"""A workflow that plans a context window inside Temporal's workflow sandbox.

Test only: it proves the ``conversation`` package is sandbox-safe. It is imported *without*
passing it through, so the sandbox runs its code under its restrictions (no I/O, clock or
randomness); ``contracts`` is passed through, as the agent workflow does.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # Pydantic models are plain data; passing them through keeps one class identity between the
    # sandbox and the data converter.
    from durable_agents.contracts.context import ContextPolicy, ContextState
    from durable_agents.contracts.messages import (
        AssistantMessage,
        Message,
        ToolCall,
        ToolResultMessage,
        UserMessage,
    )

from durable_agents.conversation import apply_summary, plan_context, summary_request

MODEL = "anthropic:claude-sonnet-4-6"


def sample_conversation(steps: int = 30) -> list[Message]:
    """A task followed by ``steps`` turns, each one call and its result."""
    messages: list[Message] = [UserMessage(text="Find what drove the cost spike.")]
    for step in range(1, steps + 1):
        call = ToolCall(id=f"call_{step}_0", name="get_costs", arguments=f'{{"day": {step}}}')
        messages.append(AssistantMessage(text=f"Looking at day {step}.", tool_calls=[call]))
        messages.append(
            ToolResultMessage(tool_call_id=call.id, name=call.name, content=f"cost {step} " * 40)
        )
    return messages


def plan_with_fake_summaries(policy: ContextPolicy) -> ContextState:
    """The workflow's recipe, with a summary call answered in place."""
    messages = sample_conversation()
    state = ContextState()
    plan = plan_context(messages, policy, state, MODEL)
    while plan.needs_summary:
        request = summary_request(
            plan.to_fold, state, policy, agent="a", agent_model=MODEL, step=1, idempotency_key="k"
        )
        text = f"{len(request.messages)} messages summarized"
        state = apply_summary(state, text, len(plan.to_fold))
        plan = plan_context(messages, policy, state, MODEL)
    return plan.state


@workflow.defn(name="ContextPlanInSandbox")
class ContextPlanInSandbox:
    @workflow.run
    async def run(self, policy: ContextPolicy) -> ContextState:
        return plan_with_fake_summaries(policy)
