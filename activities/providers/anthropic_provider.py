"""Anthropic Messages API adapter.

Configuration (read once when the worker starts, never from activity input):

- ``ANTHROPIC_API_KEY``: required; without it the provider is not configured.
- ``ANTHROPIC_BASE_URL``: optional, for a proxy or gateway.

Structured output: a request with an ``output_schema`` also offers an output tool, named
``output_name``, whose input schema is the output schema, and sets ``tool_choice`` to ``any``,
so every turn ends in a tool call: the agent's tools while it works, the output tool to
answer. A reply that calls only the output tool becomes a final answer: its input, as JSON
text, is the response's ``text`` (and stop reason ``end_turn``); the call itself is not
passed on. Called next to other tools, the output call is dropped and the others run: the
model answers again once it has their results.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Literal

import anthropic
from anthropic.types import (
    ContentBlockParam,
    MessageParam,
    TextBlockParam,
    ToolChoiceAnyParam,
    ToolParam,
)
from anthropic.types import Message as APIMessage
from temporalio.exceptions import ApplicationError

from activities.providers.pricing import cost_usd
from durable_agents.contracts.messages import (
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest, ModelResponse, StopReason
from durable_agents.contracts.tools import ToolSchema

Role = Literal["user", "assistant"]

OUTPUT_TOOL_DESCRIPTION = "Give your final answer by calling this tool; its input is the answer."
"""The description of the output tool offered with an ``output_schema``."""

REQUEST_TIMEOUT_SECONDS = 120.0
"""Per attempt; keep it below the ``call_model`` activity's start-to-close timeout."""

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
}


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, client: anthropic.AsyncAnthropic) -> None:
        self._client = client

    @classmethod
    def from_env(cls) -> AnthropicProvider | None:
        """The provider configured from the environment, or ``None`` without an API key."""
        api_key = os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            return None
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            max_retries=0,  # Let Temporal own retries so every attempt is visible in Event History.
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        return cls(client)

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse:
        output = _output_tool(request)
        tools = _tools([*request.tools, *([output] if output else [])])
        # The model must end every turn with a tool call, so its answer comes as the output tool.
        tool_choice: ToolChoiceAnyParam | anthropic.Omit = (
            {"type": "any"} if output else anthropic.omit
        )
        message = await self._client.messages.create(
            model=model_name,
            max_tokens=request.max_tokens,
            # Omitted when empty: the API rejects an empty system text block.
            system=_system(request.system) if request.system else anthropic.omit,
            messages=to_anthropic_messages(request.messages),
            tools=tools or anthropic.omit,
            tool_choice=tool_choice,
            extra_headers={"Idempotency-Key": request.idempotency_key},
        )
        return _response(message, output.name if output else None)


def _system(system: str) -> list[TextBlockParam]:
    # The system prompt is the stable prefix of every call in a run: cache it.
    return [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]


def _output_tool(request: ModelRequest) -> ToolSchema | None:
    """The tool the model answers with when the request has an output schema."""
    if request.output_schema is None:
        return None
    if any(tool.name == request.output_name for tool in request.tools):
        raise ApplicationError(
            f"the structured output's name {request.output_name!r} is also the name of one of "
            f"the agent's tools; Anthropic models answer by calling a tool of that name, so "
            f"rename the tool or the output",
            type="OutputNameTaken",
            non_retryable=True,
        )
    return ToolSchema(
        name=request.output_name,
        description=OUTPUT_TOOL_DESCRIPTION,
        parameters=request.output_schema,
    )


def _tools(tools: Sequence[ToolSchema]) -> list[ToolParam]:
    params: list[ToolParam] = [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in tools
    ]
    if params:
        # A cache breakpoint on the last tool caches every tool definition before it.
        params[-1]["cache_control"] = {"type": "ephemeral"}
    return params


def to_anthropic_messages(messages: Sequence[Message]) -> list[MessageParam]:
    """The conversation as Messages API turns.

    Tool results are user content in this API, and consecutive messages of one role are merged
    into one turn, so the results of one assistant turn's tool calls go back together, before
    any user text that follows them.
    """
    turns: list[tuple[Role, list[ContentBlockParam]]] = []
    for message in messages:
        role, blocks = _blocks(message)
        if not blocks:
            continue  # an empty assistant turn carries nothing, and the API rejects it
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return [_turn(role, blocks) for role, blocks in turns]


def _turn(role: Role, blocks: list[ContentBlockParam]) -> MessageParam:
    if role == "user":
        return {"role": "user", "content": blocks}
    return {"role": "assistant", "content": blocks}


def _blocks(message: Message) -> tuple[Role, list[ContentBlockParam]]:
    if isinstance(message, UserMessage):
        return "user", [{"type": "text", "text": message.text}]
    if isinstance(message, ToolResultMessage):
        return "user", [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
                "is_error": message.is_error,
            }
        ]
    blocks: list[ContentBlockParam] = []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)})
    return "assistant", blocks


def _input(call: ToolCall) -> dict[str, Any]:
    # The API needs an object. Malformed arguments were already reported to the model by the
    # tool's result, so an empty object keeps the history valid without hiding anything.
    try:
        parsed = json.loads(call.arguments)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _response(message: APIMessage, output_tool: str | None = None) -> ModelResponse:
    """``message`` as a response; ``output_tool`` names the structured-output tool, if any."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    answers: list[object] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            if block.name == output_tool:
                answers.append(block.input)
            else:
                calls.append(
                    ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input))
                )
    text = "".join(texts)
    stop_reason = _STOP_REASONS.get(message.stop_reason or "", "other")
    if answers and not calls:
        # The final answer: the output call's input (the last one, should there be several),
        # and nothing else. A cut-off reply keeps max_tokens: its input may be incomplete.
        text = json.dumps(answers[-1])
        stop_reason = "max_tokens" if stop_reason == "max_tokens" else "end_turn"
    usage = Usage(
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
        cache_read_tokens=message.usage.cache_read_input_tokens or 0,
        cache_write_tokens=message.usage.cache_creation_input_tokens or 0,
    )
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=usage,
        cost_usd=cost_usd(message.model, usage),
        stop_reason=stop_reason,
        model=message.model,
    )
