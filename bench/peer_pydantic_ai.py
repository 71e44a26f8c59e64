"""The peer loop on pydantic-ai's durable execution on Temporal
(``pydantic_ai.durable_exec.temporal``).

An ordinary pydantic-ai ``Agent`` with the ``TemporalDurability`` capability, on pydantic-ai's own
fake model (``FunctionModel``) and one async no-op tool; the plugin makes each model request and
each tool call an activity. The workflow runs the agent on ``"steps=N"``: the model calls the
tool until it has seen N tool results, then answers, so a run makes N+1 model calls and N tool
calls, like the ``soak`` agent. Needs the bench group (``uv sync --group bench``).
"""

from __future__ import annotations

import re

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # the plugin passes pydantic_ai through anyway
    from pydantic_ai import Agent
    from pydantic_ai.durable_exec.temporal import PydanticAIPlugin, TemporalDurability
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

__all__ = ["PydanticAIPeer", "PydanticAIPlugin", "peer_agent"]


def _steps_asked(messages: list[ModelMessage]) -> int:
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    found = re.search(r"steps=(\d+)", part.content)
                    if found:
                        return int(found.group(1))
    raise ValueError("the task does not say steps=N")


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Call ``noop`` until the conversation holds N tool results, then answer (stateless: the
    same model object serves every run at once)."""
    done = sum(
        isinstance(part, ToolReturnPart)
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
    )
    if done < _steps_asked(messages):
        return ModelResponse(parts=[ToolCallPart("noop", {})])
    return ModelResponse(parts=[TextPart(f"done: {done} tool steps")])


async def noop() -> str:
    """Does nothing."""
    return "ok"


peer_agent = Agent(
    FunctionModel(scripted),
    name="bench_peer",
    tools=[noop],
    capabilities=[TemporalDurability()],
)


@workflow.defn(name="PydanticAIPeer")
class PydanticAIPeer:
    __pydantic_ai_agents__ = [peer_agent]

    @workflow.run
    async def run(self, steps: int) -> str:
        result = await peer_agent.run(f"steps={steps}")
        return str(result.output)
