"""Provider-neutral conversation types.

The workflow keeps the conversation in these types; each provider adapter translates them to its
own wire format inside the model activity. Tool-call arguments stay the raw JSON text the model
produced, so malformed JSON survives until the tool activity can report it back to the model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Usage(BaseModel):
    """Token counts reported by the provider (estimated for the scripted model)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    """Input tokens served from the provider's prompt cache (billed at a discount)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (billed at a premium)."""

    def plus(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class ToolCall(BaseModel):
    """One tool call requested by the model."""

    id: str
    """The provider's id for the call; tool results refer back to it."""
    name: str
    arguments: str = "{}"
    """The arguments exactly as the model wrote them: JSON text, possibly malformed."""


class UserMessage(BaseModel):
    role: Literal["user"] = "user"
    text: str


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ToolResultMessage(BaseModel):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    name: str
    content: str
    is_error: bool = False


Message = Annotated[UserMessage | AssistantMessage | ToolResultMessage, Field(discriminator="role")]
