"""Offline token estimates, per provider.

No tokenizer is downloaded or run: a text's size is its UTF-8 length divided by a
characters-per-token ratio for the provider, plus fixed overheads per message and per tool call
for the role markers, ids and JSON structure the provider adds around the text. These are
*estimates*, tuned to err on the high side (real counts are usually 10-30% lower for English
prose and close for JSON), so a plan that fits the budget by this count fits in reality. Counting
UTF-8 bytes rather than characters keeps non-Latin scripts, which take more tokens per
character, from being badly underestimated.

Every estimate is monotone: appending text to a message never lowers it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from durable_agents.contracts.messages import AssistantMessage, Message, ToolResultMessage


@dataclass(frozen=True)
class TokenProfile:
    """How one provider's tokens are estimated."""

    chars_per_token: float
    """UTF-8 bytes per token, on the low side of what the provider's tokenizer achieves."""
    message_overhead: int
    """Tokens around every message: role markers and separators."""
    tool_call_overhead: int
    """Tokens around every tool call an assistant message makes: its id, type and structure."""
    tool_result_overhead: int
    """Tokens around every tool result: the id it answers and the result wrapper."""
    request_overhead: int
    """Tokens once per request, for the framing of the message list."""


PROFILES: Mapping[str, TokenProfile] = MappingProxyType(
    {
        # Claude's tokenizer yields more tokens than OpenAI's for the same text.
        "anthropic": TokenProfile(3.0, 5, 25, 15, 10),
        # o200k_base: about 4 bytes a token for English prose, about 3.5 for JSON and code.
        "openai": TokenProfile(3.5, 4, 20, 10, 3),
        # Whatever model the server runs (Llama, Qwen, Mistral ...): assume a small vocabulary.
        "compatible": TokenProfile(3.0, 5, 20, 10, 5),
        # The same four characters a token the scripted model reports as its usage.
        "scripted": TokenProfile(4.0, 4, 10, 5, 0),
    }
)
"""Profiles by provider prefix, the part of ``provider:model-name`` before the colon."""

DEFAULT_PROFILE = TokenProfile(3.0, 5, 25, 15, 10)
"""For a provider not listed: the most conservative of the known ones."""


def profile_for(model: str) -> TokenProfile:
    """The profile for ``model`` (``anthropic:claude-sonnet-4-6``, ``scripted`` ...)."""
    # The same split as activities.providers.base.split_model, which this sandbox-safe package
    # does not import: everything before the first colon names the provider.
    provider = model.partition(":")[0]
    return PROFILES.get(provider, DEFAULT_PROFILE)


def estimate_text_tokens(text: str, model: str) -> int:
    """Estimated tokens of ``text`` alone, with no message overhead; 0 for the empty string."""
    return _text_tokens(text, profile_for(model))


def estimate_message_tokens(message: Message, model: str) -> int:
    """Estimated tokens of one message, its overheads included."""
    return _message_tokens(message, profile_for(model))


def estimate_tokens(messages: Iterable[Message], model: str) -> int:
    """Estimated input tokens of sending ``messages`` to ``model``.

    The system prompt and tool definitions are not included: they are the same on every call and
    are budgeted separately (see ``ContextPolicy.max_context_tokens``).
    """
    profile = profile_for(model)
    return profile.request_overhead + sum(_message_tokens(m, profile) for m in messages)


def _text_tokens(text: str, profile: TokenProfile) -> int:
    if not text:
        return 0
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return math.ceil(size / profile.chars_per_token)


def _message_tokens(message: Message, profile: TokenProfile) -> int:
    if isinstance(message, AssistantMessage):
        tokens = profile.message_overhead + _text_tokens(message.text, profile)
        for call in message.tool_calls:
            tokens += profile.tool_call_overhead
            tokens += _text_tokens(call.name, profile) + _text_tokens(call.arguments, profile)
        return tokens
    if isinstance(message, ToolResultMessage):
        return (
            profile.message_overhead
            + profile.tool_result_overhead
            + _text_tokens(message.content, profile)
        )
    return profile.message_overhead + _text_tokens(message.text, profile)
