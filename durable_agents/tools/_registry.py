"""The ``@tool`` decorator and the ``Tool`` type.

A tool is a Python function whose first parameter is a pydantic model of its arguments; the
model's JSON schema is what the LLM sees, and the activity validates the LLM's arguments against
it before the function runs. The function gets a ``ToolContext`` carrying the idempotency key it
must hand to whatever performs a side effect.

Where a call runs is the tool's choice (``local``): read-only tools that declare a short timeout
run as local activities by default (inside the workflow task that asked for them: one workflow
task fewer per step); everything else runs as a regular activity (docs/local-tools.md).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_type_hints

from pydantic import BaseModel

from durable_agents.contracts.tools import ToolEffect, ToolSchema
from durable_agents.runner.policies import LOCAL_TOOL_MAX_TIMEOUT


class ToolError(Exception):
    """Raised by a tool to report a failure the model should see and can act on.

    The message goes back to the model as the tool result; the call is not retried.
    """


@dataclass(frozen=True)
class ToolContext:
    """What a running tool knows about the call it serves."""

    agent: str
    call_id: str
    idempotency_key: str
    """Stable across retries and worker crashes, unique across runs; pass it to the system that
    performs the effect."""
    step: int
    attempt: int


ToolFunction = Callable[[Any, ToolContext], Any]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    function: ToolFunction
    effect: ToolEffect = "read_only"
    enforces_key: bool = False
    """True when the tool itself makes its effect happen once per ``ctx.idempotency_key`` (in
    the effect's own transaction, see ``effects.SqliteEffectLedger.join``, or by passing the key
    to a system that deduplicates). Otherwise ``run_tool`` wraps a ``side_effect`` tool in the
    effects ledger (``EffectLedger.run_once``)."""
    timeout: timedelta | None = None
    """Start-to-close timeout of one attempt (default: 2 minutes)."""
    heartbeat_timeout: timedelta | None = None
    """How long a silent attempt may go before it is retried (default:
    ``policies.TOOL_CALL_HEARTBEAT_TIMEOUT``, 3 s; the activity heartbeats every second while the
    tool runs)."""
    max_attempts: int | None = None
    """Attempts before the model is told the tool failed (default: 5)."""
    local: bool | None = None
    """Run calls as local activities (True), as regular activities (False), or decide by the
    tool's settings (None, see ``runs_locally``). A local call runs inside the workflow task on
    the worker running the loop: no server round trip, but its result is recorded only when that
    task completes, so a worker crash runs it again. Only tools without side effects and without
    a heartbeat timeout may be local, with a timeout of at most ``LOCAL_TOOL_MAX_TIMEOUT``."""

    def __post_init__(self) -> None:
        if self.local:
            problem = local_refusal(self)
            if problem is not None:
                raise TypeError(f"tool {self.name!r} cannot be local: {problem}")

    @property
    def runs_locally(self) -> bool:
        """Whether calls run as local activities: as ``local`` says, else when the tool is
        ``read_only``, declares a ``timeout`` (at most ``LOCAL_TOOL_MAX_TIMEOUT``) and has no
        heartbeat timeout. A tool that declares no timeout may be long: it stays regular."""
        if self.local is not None:
            return self.local
        return (
            self.effect == "read_only" and self.timeout is not None and local_refusal(self) is None
        )

    def schema(self) -> ToolSchema:
        parameters = self.args_model.model_json_schema()
        parameters.pop("title", None)
        return ToolSchema(
            name=self.name,
            description=self.description,
            parameters=parameters,
            effect=self.effect,
            timeout_seconds=self.timeout.total_seconds() if self.timeout else None,
            heartbeat_timeout_seconds=self.heartbeat_timeout.total_seconds()
            if self.heartbeat_timeout
            else None,
            max_attempts=self.max_attempts,
            local=self.runs_locally,
        )

    async def invoke(self, args: BaseModel, ctx: ToolContext) -> str:
        """Run the tool and render its result as the text the model will read."""
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(args, ctx)
        else:
            # Sync tools (SQLite, blocking clients) run off the event loop.
            result = await asyncio.to_thread(self.function, args, ctx)
        return render_result(result)


def local_refusal(tool: Tool) -> str | None:
    """Why ``tool`` must run as a regular activity, or None when it may run locally."""
    if tool.effect == "side_effect":
        return "it acts on the world: its calls go through the effects ledger as regular activities"
    if tool.heartbeat_timeout is not None:
        return "it has a heartbeat timeout, and local activities cannot heartbeat"
    if tool.timeout is not None and tool.timeout > LOCAL_TOOL_MAX_TIMEOUT:
        return (
            f"its timeout ({tool.timeout}) is longer than a local activity may take "
            f"({LOCAL_TOOL_MAX_TIMEOUT})"
        )
    return None


def render_result(result: object) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


def tool(
    name: str | None = None,
    *,
    effect: ToolEffect = "read_only",
    description: str | None = None,
    enforces_key: bool = False,
    timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    max_attempts: int | None = None,
    local: bool | None = None,
) -> Callable[[ToolFunction], Tool]:
    """Turn ``fn(args: SomeModel, ctx: ToolContext)`` into a ``Tool``.

    Args:
        name: Name the model calls the tool by; defaults to the function name.
        effect: What the tool does to the world (see ``ToolEffect``).
        description: What the model is told; defaults to the function's docstring.
        enforces_key: The tool deduplicates by ``ctx.idempotency_key`` itself, so ``run_tool``
            does not wrap it in the effects ledger (see ``Tool.enforces_key``).
        timeout, heartbeat_timeout, max_attempts: The tool's activity settings (see ``Tool``);
            the defaults suit a call of seconds to a minute.
        local: Run calls as local activities (True) or regular ones (False); default (None):
            local for a ``read_only`` tool that sets ``timeout`` to at most
            ``LOCAL_TOOL_MAX_TIMEOUT`` and no ``heartbeat_timeout`` (see ``Tool.local``).
            ``local=True`` on a tool that cannot be local (a side effect, a heartbeat timeout,
            a longer timeout) is a ``TypeError``.
    """

    def wrap(function: ToolFunction) -> Tool:
        params = list(inspect.signature(function).parameters)
        if len(params) != 2:
            raise TypeError(
                f"tool {function.__name__!r} must take (args: <pydantic model>, ctx: ToolContext)"
            )
        hints = get_type_hints(function)
        args_model = hints.get(params[0])
        if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
            raise TypeError(
                f"tool {function.__name__!r}: first parameter must be annotated with a pydantic "
                f"model, got {args_model!r}"
            )
        doc = description or inspect.getdoc(function)
        if not doc:
            raise TypeError(f"tool {function.__name__!r} needs a description or a docstring")
        return Tool(
            name=name or function.__name__,
            description=doc,
            args_model=args_model,
            function=function,
            effect=effect,
            enforces_key=enforces_key,
            timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
            max_attempts=max_attempts,
            local=local,
        )

    return wrap
