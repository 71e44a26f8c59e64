"""The peer loop on the OpenAI Agents SDK on Temporal (package ``temporalio-openai-agents``, the
successor of ``temporalio.contrib.openai_agents``).

An ``agents.Agent`` run by ``Runner.run`` inside a workflow; ``OpenAIAgentsPlugin`` makes each
model call an activity (``invoke_model_activity``) and ``activity_as_tool`` makes the one async
no-op tool an activity. The model is the plugin's ``TestModel``, scripted from the conversation it
is sent: it calls the tool until it has seen N tool outputs, then answers, so a run of
``"steps=N"`` makes N+1 model calls and N tool calls, like the ``soak`` agent. Needs the bench
group (``uv sync --group bench``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():  # the plugin passes ``agents`` through anyway
    from agents import Agent, ModelResponse, RunConfig, Runner
    from temporalio.openai_agents import OpenAIAgentsPlugin
    from temporalio.openai_agents.testing import ResponseBuilders, TestModel, TestModelProvider
    from temporalio.openai_agents.workflow import activity_as_tool

__all__ = ["OpenAIAgentsPeer", "noop", "plugin"]

TOOL_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_peer_noop")
async def noop() -> str:
    """Does nothing."""
    return "ok"


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


class ScriptedTestModel(TestModel):
    """The plugin's ``TestModel``, answering from the request instead of a fixed list (stateless:
    one model object serves every run at once)."""

    def __init__(self) -> None:
        super().__init__(lambda: ResponseBuilders.output_message("unused"))

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = [input] if isinstance(input, str) else list(input)
        prompt = next((c for item in items if isinstance(c := _field(item, "content"), str)), "")
        found = re.search(r"steps=(\d+)", prompt)
        if found is None:
            raise ValueError("the task does not say steps=N")
        done = sum(_field(item, "type") == "function_call_output" for item in items)
        if done < int(found.group(1)):
            return ResponseBuilders.tool_call("{}", "noop", call_id=f"call-{done}")
        return ResponseBuilders.output_message(f"done: {done} tool steps")


def plugin() -> OpenAIAgentsPlugin:
    """The plugin with the scripted model, for the peer's client (its worker inherits it)."""
    return OpenAIAgentsPlugin(model_provider=TestModelProvider(ScriptedTestModel()))


@workflow.defn(name="OpenAIAgentsPeer")
class OpenAIAgentsPeer:
    @workflow.run
    async def run(self, steps: int) -> str:
        agent: Agent[None] = Agent(
            name="bench_peer",
            instructions="Benchmark.",
            tools=[activity_as_tool(noop, start_to_close_timeout=TOOL_TIMEOUT)],
        )
        result = await Runner.run(
            agent,
            f"steps={steps}",
            max_turns=steps + 2,
            # Nothing to export traces to (the SDK's default exporter is OpenAI's API).
            run_config=RunConfig(tracing_disabled=True),
        )
        return str(result.final_output)
