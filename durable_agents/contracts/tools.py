"""What the workflow knows about a tool: its schema, never its code."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

ToolEffect = Literal["read_only", "idempotent", "side_effect"]
"""What running a tool does to the world.

``read_only`` tools change nothing; ``idempotent`` tools may be repeated with the same result;
``side_effect`` tools act on the world and must be guarded by their idempotency key.
"""


class ToolSchema(BaseModel):
    """A tool as offered to the model."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the tool's arguments model."""
    effect: ToolEffect = "read_only"
    timeout_seconds: float | None = None
    """Start-to-close timeout of one attempt; ``None``: ``policies.TOOL_CALL_TIMEOUT``."""
    heartbeat_timeout_seconds: float | None = None
    """``None``: ``policies.TOOL_CALL_HEARTBEAT_TIMEOUT``."""
    max_attempts: int | None = None
    """Attempts before the model is told the tool failed; ``None``: ``policies.TOOL_CALL_RETRY``."""
    local: bool = False
    """Run as a local activity, inside the workflow task on the worker running the loop, rather
    than as a regular activity (``Tool.local``; a run uses it only when its recorded worker
    settings say ``local_tools``). Listings recorded before this existed say False."""


class ToolRequest(BaseModel):
    """Input of the ``run_tool`` activity."""

    agent: str
    call_id: str
    name: str
    arguments: str
    """Raw JSON text from the model; validated by the activity."""
    idempotency_key: str
    """Stable across retries and worker crashes, unique across runs: see
    ``durable_agents.runner.keys``."""
    step: int
    effect: ToolEffect | None = None
    """The tool's effect as the run's tool listing recorded it. ``call_mcp_tool`` guards
    ``side_effect`` calls with the effects ledger; ``run_tool`` trusts the tool's own code."""


MAX_ERROR_CHARS = 2_000
"""Bound on the error text the model reads for one call."""


class ToolOutcome(BaseModel):
    """Output of the ``run_tool`` activity; errors are data the model sees, not exceptions."""

    call_id: str
    name: str
    content: str
    is_error: bool = False

    @classmethod
    def error(cls, request: ToolRequest, message: str) -> ToolOutcome:
        """The outcome that tells the model ``message`` (bounded) about ``request``."""
        return cls(
            call_id=request.call_id,
            name=request.name,
            content=message[:MAX_ERROR_CHARS],
            is_error=True,
        )


MAX_TOOL_RESULT_BYTES = 1 << 20
"""Largest tool result (UTF-8 bytes) the model is given: 1 MiB. Bigger results become an error
the model reads (ask for less), so one runaway tool cannot push a payload past Temporal's 2 MB
limit and wedge the run."""


def oversized_result(name: str, content: str) -> str | None:
    """The error the model is told when ``content`` is over ``MAX_TOOL_RESULT_BYTES``."""
    size = len(content.encode())
    if size <= MAX_TOOL_RESULT_BYTES:
        return None
    return (
        f"tool {name!r} returned {size:,} bytes, more than the {MAX_TOOL_RESULT_BYTES:,} a result "
        "may have; nothing was kept. Ask for less (a narrower query, a page, a summary)."
    )


class InvalidArguments(ValueError):
    """Tool-call arguments that are not a JSON object; the message is what the model is told."""


def parse_arguments(tool: str, raw: str) -> dict[str, Any]:
    """The model's raw argument text as a JSON object, or ``InvalidArguments`` saying why not.

    Pure and deterministic: the workflow (policy checks), ``run_tool`` and ``call_mcp_tool`` all
    use it, so the model reads the same message wherever its arguments are refused.
    """
    try:
        parsed = json.loads(raw or "{}")
    except ValueError as err:
        raise InvalidArguments(f"arguments for {tool!r} are not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidArguments(f"arguments for {tool!r} are nested too deeply") from None
    if not isinstance(parsed, dict):
        shown = repr(parsed)
        shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
        raise InvalidArguments(f"arguments for {tool!r} must be a JSON object, got {shown}")
    try:
        # Escapes like "\ud800" decode to lone surrogates, which no UTF-8 payload can carry.
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise InvalidArguments(
            f"arguments for {tool!r} contain an unpaired UTF-16 surrogate escape"
        ) from None
    return parsed


def clean_text(text: str) -> str:
    """``text`` with anything UTF-8 cannot carry (lone surrogates) replaced by U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text
