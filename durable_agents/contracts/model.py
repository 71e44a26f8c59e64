"""Input and output of the ``call_model`` activity."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from durable_agents.contracts.messages import Message, ToolCall, Usage
from durable_agents.contracts.tools import ToolSchema

StopReason = Literal["end_turn", "tool_use", "max_tokens", "other"]

StorageHint = Literal["offload", "inline"]
"""Where a payload belongs, read by the payload store's selector (``payload_storage._hints``);
the same values as ``payload_storage.StorageHint``; spelled here so contracts import only
pydantic (they are imported inside the workflow sandbox)."""


class ModelRequest(BaseModel):
    payload_storage_hint: ClassVar[StorageHint] = "offload"
    """It carries the conversation, which grows every step: it leaves history from 2 KiB on."""

    agent: str
    model: str
    """``provider:model-name``, for instance ``anthropic:claude-sonnet-4-5`` or ``scripted``."""
    system: str
    messages: list[Message]
    tools: list[ToolSchema] = Field(default_factory=list)
    max_tokens: int = 4096
    idempotency_key: str
    """Sent as the ``Idempotency-Key`` header; identical on every attempt of this call."""
    step: int
    output_schema: dict[str, Any] | None = None
    """When set, the agent's final answer must be a JSON object matching this JSON schema: the
    provider asks for it natively (OpenAI ``response_format`` ``json_schema``; Anthropic a tool
    named ``output_name`` the model must end with) and puts the object, as JSON text, in the
    response's ``text``. The workflow validates it and asks for repairs."""
    output_name: str = "final_answer"
    """The name of the structured answer (OpenAI's schema name, Anthropic's output tool)."""
    purpose: Literal["turn", "summary"] = "turn"
    """``turn``: the agent's next move. ``summary``: a context-window summary of earlier turns
    (``conversation.summary_request``), which the offline scripted model answers without the
    agent's script."""
    stream: bool = Field(default=False, exclude_if=lambda v: not v)
    """Publish the reply's text to the run's workflow stream as it is generated, marked with the
    call and attempt (``durable_agents.streaming``). Left out of the payload when False, so
    requests of runs that do not stream are what they always were."""


class ModelResponse(BaseModel):
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    priced: bool = True
    """False when the model is not in the worker's price table: its cost is unknown, not free
    (``cost_usd`` is then 0.0), and only ``budget_tokens`` can bound it."""
    stop_reason: StopReason = "end_turn"
    model: str
    """The model that actually answered, as the provider reports it."""
