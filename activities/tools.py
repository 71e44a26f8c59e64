"""The ``run_tool`` activity: validate the model's arguments, then run one tool.

Bad input from the model is not an exception here: malformed JSON, arguments that fail the tool's
schema and ``ToolError`` raised by the tool all come back as a ``ToolOutcome`` with
``is_error=True`` that the model reads on its next turn. Anything else the tool raises is treated
as transient and retried by Temporal under the workflow's tool retry policy.

A ``side_effect`` tool runs inside the effects ledger (``EffectLedger.run_once`` keyed by the
call's idempotency key) unless it enforces the key itself (``Tool.enforces_key``): a retry of a
call whose effect already happened gets the recorded result instead of acting again.

The same activity runs as a local activity for local tools (``Tool.local``; never a
``side_effect`` tool): it then does not heartbeat, since a local activity has no heartbeat
timeout (the workflow task it runs in is what times out when its worker dies).
"""

from __future__ import annotations

from pydantic import ValidationError
from temporalio import activity

from activities._heartbeat import heartbeating
from durable_agents.agents import AgentRegistry
from durable_agents.contracts.tools import (
    InvalidArguments,
    ToolOutcome,
    ToolRequest,
    clean_text,
    oversized_result,
    parse_arguments,
)
from durable_agents.effects import EffectLedger
from durable_agents.tools import ToolContext, ToolError


def describe_validation_error(err: ValidationError) -> str:
    problems = []
    for item in err.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


class ToolActivities:
    def __init__(self, registry: AgentRegistry, ledger: EffectLedger) -> None:
        self._registry = registry
        self._ledger = ledger

    @activity.defn(name="run_tool")
    async def run_tool(self, request: ToolRequest) -> ToolOutcome:
        agent = self._registry.get(request.agent)
        tool = agent.tool(request.name)
        if tool is None:
            return ToolOutcome.error(request, f"unknown tool {request.name!r}")
        try:
            raw = parse_arguments(request.name, request.arguments)
        except InvalidArguments as err:
            return ToolOutcome.error(request, str(err))
        try:
            args = tool.args_model.model_validate(raw)
        except ValidationError as err:
            return ToolOutcome.error(
                request, f"invalid arguments for {request.name!r}: {describe_validation_error(err)}"
            )
        ctx = ToolContext(
            agent=request.agent,
            call_id=request.call_id,
            idempotency_key=request.idempotency_key,
            step=request.step,
            attempt=activity.info().attempt,
        )
        async with heartbeating(enabled=not activity.info().is_local):
            try:
                if tool.effect == "side_effect" and not tool.enforces_key:
                    # A ToolError releases the ledger's claim: the effect is taken not to have
                    # happened, and the model may try again with other arguments.
                    recorded = await self._ledger.run_once(
                        request.idempotency_key, lambda: tool.invoke(args, ctx)
                    )
                    content = recorded.result
                else:
                    content = await tool.invoke(args, ctx)
            except ToolError as err:
                return ToolOutcome.error(request, str(err))
        content = clean_text(content)
        too_big = oversized_result(request.name, content)
        if too_big is not None:
            return ToolOutcome.error(request, too_big)
        return ToolOutcome(call_id=request.call_id, name=request.name, content=content)
