"""The ``run_tool`` activity: validate the model's arguments, then run one tool.

Bad input from the model is not an exception here: malformed JSON, arguments that fail the tool's
schema and ``ToolError`` raised by the tool all come back as a ``ToolOutcome`` with
``is_error=True`` that the model reads on its next turn. Anything else the tool raises is treated
as transient and retried by Temporal under the workflow's tool retry policy.
"""

from __future__ import annotations

from pydantic import ValidationError
from temporalio import activity

from activities._heartbeat import heartbeating
from agents import AgentRegistry
from contracts.tools import InvalidArguments, ToolOutcome, ToolRequest, parse_arguments
from tools import ToolContext, ToolError

MAX_ERROR_CHARS = 2_000


def describe_validation_error(err: ValidationError) -> str:
    problems = []
    for item in err.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


class ToolActivities:
    def __init__(self, registry: AgentRegistry) -> None:
        self._registry = registry

    @activity.defn(name="run_tool")
    async def run_tool(self, request: ToolRequest) -> ToolOutcome:
        def error(message: str) -> ToolOutcome:
            return ToolOutcome(
                call_id=request.call_id,
                name=request.name,
                content=message[:MAX_ERROR_CHARS],
                is_error=True,
            )

        agent = self._registry.get(request.agent)
        tool = agent.tool(request.name)
        if tool is None:
            return error(f"unknown tool {request.name!r}")
        try:
            raw = parse_arguments(request.name, request.arguments)
        except InvalidArguments as err:
            return error(str(err))
        try:
            args = tool.args_model.model_validate(raw)
        except ValidationError as err:
            return error(
                f"invalid arguments for {request.name!r}: {describe_validation_error(err)}"
            )
        ctx = ToolContext(
            agent=request.agent,
            call_id=request.call_id,
            idempotency_key=request.idempotency_key,
            step=request.step,
            attempt=activity.info().attempt,
        )
        async with heartbeating():
            try:
                content = await tool.invoke(args, ctx)
            except ToolError as err:
                return error(str(err))
        return ToolOutcome(call_id=request.call_id, name=request.name, content=content)
