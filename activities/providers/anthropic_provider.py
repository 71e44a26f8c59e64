"""Anthropic Messages API adapter.

Configuration (read once when the worker starts, never from activity input):

- ``ANTHROPIC_API_KEY``: required; without it the provider is not configured.
- ``ANTHROPIC_BASE_URL``: optional, for a proxy or gateway.
- ``ANTHROPIC_PROMPT_CACHING``: where requests put prompt-cache breakpoints (``PromptCaching``):
  ``conversation`` (the default), ``system`` or ``off``.

Prompt caching: the API caches a request's prefix (tools, then system, then messages) up to each
``cache_control`` breakpoint, at most ``MAX_CACHE_BREAKPOINTS`` per request. Every call of a run
resends the whole conversation so far, so besides the last tool and the system prompt, two
breakpoints go on the conversation: its last block, so the next call reads all of this one from
the cache, and the last block the previous call sent, so this call finds what that call wrote
(the API looks for earlier entries only 20 blocks back from a breakpoint, and one step of many
parallel tool results adds more). Reads cost a tenth of the input price, writes a quarter more.

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
from typing import Any, Literal, cast, get_args

import anthropic
from anthropic.types import (
    CacheControlEphemeralParam,
    MessageParam,
    TextBlockParam,
    ToolChoiceAnyParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from anthropic.types import Message as APIMessage
from temporalio.exceptions import ApplicationError

from activities.providers.base import TextSink
from activities.providers.errors import StreamIncomplete
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

Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam
"""The content blocks a conversation of ours is made of; each can carry a cache breakpoint."""

PromptCaching = Literal["conversation", "system", "off"]
"""Where requests put ``cache_control`` breakpoints: ``conversation``, on the last tool, the
system prompt and the conversation (see the module docstring); ``system``, on the last tool and
the system prompt only; ``off``, nowhere."""

MAX_CACHE_BREAKPOINTS = 4
"""The most ``cache_control`` blocks the Messages API accepts in one request."""

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

    def __init__(
        self, client: anthropic.AsyncAnthropic, prompt_caching: PromptCaching = "conversation"
    ) -> None:
        self._client = client
        self._prompt_caching: PromptCaching = prompt_caching

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
        return cls(client, prompt_caching_from_env())

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse:
        params, output = self._params(request, model_name)
        message = await self._client.messages.create(**params)
        return _response(message, output)

    async def stream(
        self, request: ModelRequest, model_name: str, on_text: TextSink
    ) -> ModelResponse:
        """The same request on the streaming Messages API; each text delta to ``on_text``."""
        params, output = self._params(request, model_name)
        async with self._client.messages.stream(**params) as stream:
            async for event in stream:
                if event.type == "text":
                    on_text(event.text)
            message = await stream.get_final_message()
        if message.stop_reason is None:  # no message_delta: the stream stopped mid-reply
            raise StreamIncomplete("the Messages stream ended before its message_delta")
        return _response(message, output)

    def _params(self, request: ModelRequest, model_name: str) -> tuple[dict[str, Any], str | None]:
        """The Messages API arguments for ``request``, and the output tool's name, if any."""
        output = _output_tool(request)
        cache = self._prompt_caching != "off"
        tools = _tools([*request.tools, *([output] if output else [])], cache=cache)
        # Omitted when empty: the API rejects an empty system text block.
        system = _system(request.system, cache=cache) if request.system else []
        turns = _turns(request.messages)
        if self._prompt_caching == "conversation":
            prefix_breakpoints = (1 if tools else 0) + (1 if system else 0)
            _mark_conversation(turns, MAX_CACHE_BREAKPOINTS - prefix_breakpoints)
        # The model must end every turn with a tool call, so its answer comes as the output tool.
        tool_choice: ToolChoiceAnyParam | anthropic.Omit = (
            {"type": "any"} if output else anthropic.omit
        )
        params: dict[str, Any] = dict(
            model=model_name,
            max_tokens=request.max_tokens,
            system=system or anthropic.omit,
            messages=[_turn(role, blocks) for role, blocks in turns],
            tools=tools or anthropic.omit,
            tool_choice=tool_choice,
            extra_headers={"Idempotency-Key": request.idempotency_key},
        )
        return params, output.name if output else None


def prompt_caching_from_env() -> PromptCaching:
    """``ANTHROPIC_PROMPT_CACHING``, ``conversation`` when unset."""
    value = os.environ.get("ANTHROPIC_PROMPT_CACHING", "").strip().lower() or "conversation"
    for option in get_args(PromptCaching):
        if value == option:
            return cast(PromptCaching, option)
    raise ValueError(
        f"ANTHROPIC_PROMPT_CACHING is {value!r}; expected one of {get_args(PromptCaching)!r}"
    )


def _ephemeral() -> CacheControlEphemeralParam:
    return {"type": "ephemeral"}


def _system(system: str, *, cache: bool) -> list[TextBlockParam]:
    block: TextBlockParam = {"type": "text", "text": system}
    if cache:
        # The system prompt is the stable prefix of every call in a run: cache it.
        block["cache_control"] = _ephemeral()
    return [block]


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


def _tools(tools: Sequence[ToolSchema], *, cache: bool) -> list[ToolParam]:
    params: list[ToolParam] = [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in tools
    ]
    if params and cache:
        # A cache breakpoint on the last tool caches every tool definition before it.
        params[-1]["cache_control"] = _ephemeral()
    return params


def _mark_conversation(turns: list[tuple[Role, list[Block]]], budget: int) -> None:
    """Put at most ``budget`` cache breakpoints on the conversation, in place: on its last
    block, then on the last block before the last assistant turn (where the previous call
    ended, and put its own last breakpoint)."""
    if not turns or budget <= 0:
        return
    marks = [turns[-1][1][-1]]
    assistant = [index for index, (role, _) in enumerate(turns) if role == "assistant"]
    if assistant and assistant[-1] > 0:
        previous_end = turns[assistant[-1] - 1][1][-1]
        if previous_end is not marks[0]:
            marks.append(previous_end)
    for block in marks[:budget]:
        block["cache_control"] = _ephemeral()


def to_anthropic_messages(messages: Sequence[Message]) -> list[MessageParam]:
    """The conversation as Messages API turns.

    Tool results are user content in this API, and consecutive messages of one role are merged
    into one turn, so the results of one assistant turn's tool calls go back together, before
    any user text that follows them.
    """
    return [_turn(role, blocks) for role, blocks in _turns(messages)]


def _turns(messages: Sequence[Message]) -> list[tuple[Role, list[Block]]]:
    turns: list[tuple[Role, list[Block]]] = []
    for message in messages:
        role, blocks = _blocks(message)
        if not blocks:
            continue  # an empty assistant turn carries nothing, and the API rejects it
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return turns


def _turn(role: Role, blocks: list[Block]) -> MessageParam:
    if role == "user":
        return {"role": "user", "content": blocks}
    return {"role": "assistant", "content": blocks}


def _blocks(message: Message) -> tuple[Role, list[Block]]:
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
    blocks: list[Block] = []
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
    cost = cost_usd(message.model, usage)  # None: not in the price table, cost unknown
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=usage,
        cost_usd=cost or 0.0,
        priced=cost is not None,
        stop_reason=stop_reason,
        model=message.model,
    )
