"""OpenAI Chat Completions adapter, also used for any OpenAI-compatible server.

Configuration (read once when the worker starts, never from activity input):

- ``OPENAI_API_KEY``: required for the ``openai`` provider; ``OPENAI_BASE_URL`` optional.
- ``OPENAI_COMPATIBLE_BASE_URL``: required for the ``compatible`` provider (vLLM, Ollama,
  LM Studio, ...), for instance ``http://localhost:11434/v1``; ``OPENAI_COMPATIBLE_API_KEY``
  optional, since most local servers ignore it.

Structured output: a request with an ``output_schema`` also sends ``response_format`` of type
``json_schema`` (named ``output_name``), with ``strict: true`` only when the schema is inside
the subset strict mode accepts (``structured.is_strict_compatible``), else ``strict: false``.
The reply's content is then the JSON text of the answer, passed on as the response's ``text``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from activities.providers.base import TextSink
from activities.providers.errors import StreamIncomplete
from activities.providers.pricing import cost_usd
from activities.providers.structured import is_strict_compatible
from durable_agents.contracts.messages import (
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest, ModelResponse, StopReason
from durable_agents.contracts.tools import ToolSchema

REQUEST_TIMEOUT_SECONDS = 120.0
"""Per attempt; keep it below the ``call_model`` activity's start-to-close timeout."""

COMPATIBLE_DEFAULT_API_KEY = "not-needed"
"""The SDK insists on a key; local servers accept any."""

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}


class OpenAIProvider:
    def __init__(self, client: openai.AsyncOpenAI, name: str = "openai") -> None:
        self._client = client
        self.name = name
        # OpenAI deprecated max_tokens (its reasoning models reject it), but many local
        # OpenAI-compatible servers only know max_tokens.
        self._legacy_max_tokens = name != "openai"

    @classmethod
    def from_env(cls) -> OpenAIProvider | None:
        """The ``openai`` provider from the environment, or ``None`` without an API key."""
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            return None
        return cls(_client(api_key, os.environ.get("OPENAI_BASE_URL") or None))

    @classmethod
    def compatible_from_env(cls) -> OpenAIProvider | None:
        """The ``compatible`` provider, or ``None`` without ``OPENAI_COMPATIBLE_BASE_URL``."""
        base_url = os.environ.get("OPENAI_COMPATIBLE_BASE_URL")
        if not base_url:
            return None
        api_key = os.environ.get("OPENAI_COMPATIBLE_API_KEY") or COMPATIBLE_DEFAULT_API_KEY
        return cls(_client(api_key, base_url), name="compatible")

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse:
        completion = await self._client.chat.completions.create(**self._params(request, model_name))
        return _response(completion)

    async def stream(
        self, request: ModelRequest, model_name: str, on_text: TextSink
    ) -> ModelResponse:
        """The same request with ``stream: true`` (and usage in the last chunk); each content
        delta to ``on_text``. The chunks are assembled by the SDK's own accumulator."""
        chunks = await self._client.chat.completions.create(
            **self._params(request, model_name),
            stream=True,
            stream_options={"include_usage": True},
        )
        state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
        finished = False
        async with chunks:
            async for chunk in chunks:
                state.handle_chunk(chunk)
                for choice in chunk.choices[:1]:
                    if choice.delta.content:
                        on_text(choice.delta.content)
                    finished = finished or choice.finish_reason is not None
        if not finished:  # no finish_reason: the stream stopped mid-reply
            raise StreamIncomplete("the chat completion stream ended before its finish_reason")
        return _response(state.get_final_completion())

    def _params(self, request: ModelRequest, model_name: str) -> dict[str, Any]:
        return dict(
            model=model_name,
            messages=to_openai_messages(request.system, request.messages),
            tools=_tools(request.tools) if request.tools else openai.omit,
            response_format=_response_format(request),
            max_completion_tokens=openai.omit if self._legacy_max_tokens else request.max_tokens,
            max_tokens=request.max_tokens if self._legacy_max_tokens else openai.omit,
            extra_headers={"Idempotency-Key": request.idempotency_key},
        )


def _client(api_key: str, base_url: str | None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,  # Let Temporal own retries so every attempt is visible in Event History.
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


def _tools(tools: Sequence[ToolSchema]) -> list[ChatCompletionFunctionToolParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def _response_format(request: ModelRequest) -> ResponseFormatJSONSchema | openai.Omit:
    """The ``json_schema`` response format for a request with an output schema."""
    if request.output_schema is None:
        return openai.omit
    return {
        "type": "json_schema",
        "json_schema": {
            "name": request.output_name,
            "schema": request.output_schema,
            # Strict mode rejects schemas outside its subset with a 400; send it only when the
            # schema fits, otherwise the schema still guides the model and the workflow checks.
            "strict": is_strict_compatible(request.output_schema),
        },
    }


def to_openai_messages(
    system: str, messages: Sequence[Message]
) -> list[ChatCompletionMessageParam]:
    """The conversation as Chat Completions messages, system prompt first."""
    wire: list[ChatCompletionMessageParam] = []
    if system:
        wire.append({"role": "system", "content": system})
    for message in messages:
        if isinstance(message, UserMessage):
            wire.append({"role": "user", "content": message.text})
        elif isinstance(message, ToolResultMessage):
            # No error flag in this API: the content itself tells the model what went wrong.
            wire.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        else:
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {
                    "id": call.id,
                    "type": "function",
                    # Sent back exactly as the model wrote them, malformed or not.
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
            if calls:
                wire.append(
                    {"role": "assistant", "content": message.text or None, "tool_calls": calls}
                )
            else:
                wire.append({"role": "assistant", "content": message.text})
    return wire


def _response(completion: ChatCompletion) -> ModelResponse:
    choice = completion.choices[0]
    calls = [
        # Arguments verbatim, possibly malformed JSON: the tool activity reports that to the model.
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in choice.message.tool_calls or []
        if call.type == "function"
    ]
    usage = Usage()
    if completion.usage is not None:  # some compatible servers leave it out
        details = completion.usage.prompt_tokens_details
        cached = (details.cached_tokens if details else None) or 0
        usage = Usage(
            # prompt_tokens includes cache hits; ours counts uncached input only.
            input_tokens=completion.usage.prompt_tokens - cached,
            output_tokens=completion.usage.completion_tokens,
            cache_read_tokens=cached,
        )
    cost = cost_usd(completion.model, usage)  # None: not in the price table, cost unknown
    return ModelResponse(
        # With structured output, content is the answer's JSON text. A refusal comes instead of
        # content: kept as the text so the run shows why (and fails the schema check if any).
        text=choice.message.content or choice.message.refusal or "",
        tool_calls=calls,
        usage=usage,
        cost_usd=cost or 0.0,
        priced=cost is not None,
        stop_reason=_FINISH_REASONS.get(choice.finish_reason, "other"),
        model=completion.model,
    )
