"""Span names and attributes: the OpenTelemetry GenAI semantic conventions, plus ours.

GenAI names follow the current conventions (``gen_ai.provider.name``, not the retired
``gen_ai.system``); ours live under ``durable_agents.*``. Message content is only ever built when
the process opted in (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue
from temporalio.exceptions import ApplicationError

from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
)
from durable_agents.contracts.model import ModelRequest, ModelResponse, StopReason
from durable_agents.contracts.tools import ToolOutcome, ToolRequest

TRACER_NAME = "durable_agents"
"""The instrumentation scope of every span this package makes."""

Attributes = dict[str, AttributeValue]

# GenAI semantic conventions.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

# Ours.
STEP = "durable_agents.step"
ATTEMPT = "durable_agents.attempt"
IDEMPOTENCY_KEY = "durable_agents.idempotency_key"
COST_USD = "durable_agents.cost_usd"
PRICED = "durable_agents.priced"
PURPOSE = "durable_agents.model_call.purpose"
ACTIVITY_ID = "durable_agents.activity_id"
TOOL_EFFECT = "durable_agents.tool.effect"
TOOL_IS_ERROR = "durable_agents.tool.is_error"
TOOL_MCP = "durable_agents.tool.mcp"
RUN_STATUS = "durable_agents.status"
RUN_STEPS = "durable_agents.steps"
RUN_TOOL_CALLS = "durable_agents.tool_calls"
RUN_NUMBER = "durable_agents.run"
"""1 for a workflow's first run, +1 per continue-as-new."""
SCOPE = "durable_agents.scope"
APPROVAL_ID = "durable_agents.approval.id"
APPROVAL_DECISION = "durable_agents.approval.decision"
APPROVER = "durable_agents.approval.approver"
APPROVAL_ESCALATED = "durable_agents.approval.escalated"
APPROVAL_TIMED_OUT = "durable_agents.approval.timed_out"
APPROVAL_EDITED = "durable_agents.approval.arguments_edited"

_PROVIDER_NAMES = {"compatible": "openai"}
"""Our provider names -> ``gen_ai.provider.name``: an OpenAI-compatible server is reached
through the OpenAI API (the conventions' advice when the real product is unknown)."""

_FINISH_REASONS: dict[StopReason, str] = {
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "other": "other",
}


def split_model(model: str) -> tuple[str, str]:
    """``"anthropic:claude-x"`` -> ``("anthropic", "claude-x")``; ``"scripted"`` ->
    ``("scripted", "scripted")`` (the model is then named after its provider)."""
    provider, _, name = model.partition(":")
    return _PROVIDER_NAMES.get(provider, provider), name or provider


def error_type(err: BaseException) -> str:
    """``error.type``: the application error's type when it names one, else the class."""
    if isinstance(err, ApplicationError) and err.type:
        return err.type
    return type(err).__name__


def usage_attributes(usage: Usage) -> Attributes:
    return {
        INPUT_TOKENS: usage.input_tokens,
        OUTPUT_TOKENS: usage.output_tokens,
        CACHE_READ_TOKENS: usage.cache_read_tokens,
        CACHE_CREATION_TOKENS: usage.cache_write_tokens,
    }


def chat_attributes(request: ModelRequest) -> Attributes:
    provider, model = split_model(request.model)
    return {
        OPERATION: "chat",
        PROVIDER: provider,
        REQUEST_MODEL: model,
        REQUEST_MAX_TOKENS: request.max_tokens,
        AGENT_NAME: request.agent,
        STEP: request.step,
        IDEMPOTENCY_KEY: request.idempotency_key,
        PURPOSE: request.purpose,
    }


def response_attributes(response: ModelResponse) -> Attributes:
    return {
        RESPONSE_MODEL: response.model,
        FINISH_REASONS: [_FINISH_REASONS[response.stop_reason]],
        COST_USD: response.cost_usd,
        PRICED: response.priced,
        **usage_attributes(response.usage),
    }


def tool_attributes(request: ToolRequest, *, mcp: bool) -> Attributes:
    attributes: Attributes = {
        OPERATION: "execute_tool",
        TOOL_NAME: request.name,
        TOOL_CALL_ID: request.call_id,
        TOOL_TYPE: "function",
        AGENT_NAME: request.agent,
        STEP: request.step,
        IDEMPOTENCY_KEY: request.idempotency_key,
        TOOL_MCP: mcp,
    }
    if request.effect is not None:
        attributes[TOOL_EFFECT] = request.effect
    return attributes


# -- content (opt-in) -----------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _call_part(call: ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = json.loads(call.arguments)
    except (ValueError, RecursionError):
        arguments = call.arguments
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}


def _message(message: Message) -> dict[str, Any]:
    if isinstance(message, AssistantMessage):
        parts: list[dict[str, Any]] = [{"type": "text", "content": message.text}]
        return {
            "role": "assistant",
            "parts": [p for p in parts if p["content"]]
            + [_call_part(c) for c in message.tool_calls],
        }
    if isinstance(message, ToolResultMessage):
        part = {
            "type": "tool_call_response",
            "id": message.tool_call_id,
            "response": message.content,
        }
        return {"role": "tool", "parts": [part]}
    return {"role": "user", "parts": [{"type": "text", "content": message.text}]}


def request_content(request: ModelRequest) -> Attributes:
    """The prompt, in the conventions' JSON shapes (``gen_ai.input.messages``...)."""
    return {
        SYSTEM_INSTRUCTIONS: _json([{"type": "text", "content": request.system}]),
        INPUT_MESSAGES: _json([_message(m) for m in request.messages]),
    }


def response_content(response: ModelResponse) -> Attributes:
    parts: Sequence[dict[str, Any]] = [{"type": "text", "content": response.text}]
    output = {
        "role": "assistant",
        "parts": [p for p in parts if p["content"]] + [_call_part(c) for c in response.tool_calls],
        "finish_reason": _FINISH_REASONS[response.stop_reason],
    }
    return {OUTPUT_MESSAGES: _json([output])}


def tool_content(request: ToolRequest, outcome: ToolOutcome | None) -> Attributes:
    attributes: Attributes = {TOOL_ARGUMENTS: request.arguments}
    if outcome is not None:
        attributes[TOOL_RESULT] = outcome.content
    return attributes
