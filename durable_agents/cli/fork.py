"""Forks: a new run that starts from another run's conversation as it stood after one step.

``starter.py fork ID --at-step N`` reads the original from history (``history.read_run``),
rebuilds the conversation after step N, applies the edits asked for and starts a new
``AgentWorkflow`` whose input carries that conversation (``AgentInput.history``). The fork loads
its agent as any run does, so the agent's current policy and approvals apply, ``--model``
changes the model, and every call gets a fresh idempotency key (keys name the workflow id and
first run id): a side effect the original performed is a *new* effect in the fork, asked for,
gated and approved again. ``temporal workflow reset`` is the tool for an exact re-run with the
original's keys (``docs/time-travel.md``).
"""

from __future__ import annotations

from pydantic import BaseModel

from durable_agents.cli.history import HistoryError, RunHistory
from durable_agents.contracts import (
    AgentInput,
    AssistantMessage,
    Message,
    ToolResultMessage,
    UserMessage,
)
from durable_agents.contracts.agent_io import ForkOrigin


class ForkError(HistoryError):
    """The fork asked for cannot be made from this run (step out of range, a bad edit)."""


class MessageEdit(BaseModel):
    """``--edit-message K=TEXT``: message ``K`` of the conversation gets ``text``."""

    index: int
    text: str

    @classmethod
    def parse(cls, raw: str) -> MessageEdit:
        index, sep, text = raw.partition("=")
        if not sep or not index.strip().lstrip("-").isdigit():
            raise ForkError(f"--edit-message takes K=TEXT (K a message index), got {raw!r}")
        return cls(index=int(index), text=text)


def conversation_after(run: RunHistory, step: int) -> list[Message]:
    """The conversation as it stood after ``step`` (0: before the first model call).

    That is what the next step's model request sent; after the last step it is rebuilt from
    the last request, its reply and the tool results. With a context policy that truncates or
    summarizes, it is the conversation as the model was sent it, not every message ever said.
    """
    if not run.turns:
        raise ForkError(f"{run.workflow_id!r} has no completed model call to fork from")
    last = max(run.turns)
    if not 0 <= step <= last:
        raise ForkError(f"--at-step must be between 0 and {last} (the run's last step), not {step}")
    following = run.turns.get(step + 1)
    if following is not None:
        return list(following.request.messages)
    if step == 0:
        raise ForkError("the first model request is not in this run's history")
    turn = run.turns.get(step)
    if turn is None:
        raise ForkError(f"step {step} is not in this run's history")
    reply = AssistantMessage(text=turn.response.text, tool_calls=turn.response.tool_calls)
    results = run.tool_results(step)
    missing = [c.name for c in turn.response.tool_calls if c.id not in results]
    if missing:
        raise ForkError(
            f"step {step}'s tool calls ({', '.join(missing)}) have no result yet; fork at step "
            f"{step - 1} to have the model ask for them again"
        )
    return [
        *turn.request.messages,
        reply,
        *(results[c.id] for c in turn.response.tool_calls),
    ]


def apply_edits(
    messages: list[Message], task: str | None, edits: list[MessageEdit]
) -> list[Message]:
    """``task`` replaces the first user message; each edit replaces message ``index``'s text
    (a tool result's content; an assistant message keeps its tool calls)."""
    edited = list(messages)
    if task is not None:
        first = next((i for i, m in enumerate(edited) if isinstance(m, UserMessage)), None)
        if first is None:
            raise ForkError("the conversation has no user message for --task to replace")
        edited[first] = UserMessage(text=task)
    for edit in edits:
        if not 0 <= edit.index < len(edited):
            raise ForkError(
                f"--edit-message {edit.index}: the conversation has messages 0 to "
                f"{len(edited) - 1} (see `starter.py steps ID --conversation N`)"
            )
        message = edited[edit.index]
        if isinstance(message, ToolResultMessage):
            edited[edit.index] = message.model_copy(update={"content": edit.text})
        else:
            edited[edit.index] = message.model_copy(update={"text": edit.text})
    return edited


def fork_input(
    run: RunHistory, step: int, messages: list[Message], model: str | None = None
) -> AgentInput:
    """The fork's input: the original's options (limits, context, output schema) with the
    conversation to start from; ``model`` replaces the original's."""
    first = next((m for m in messages if isinstance(m, UserMessage)), None)
    turn = run.turns.get(step) or run.turns[min(run.turns)]
    return run.input.model_copy(
        update={
            "task": first.text if first is not None and first.text else run.input.task,
            "model": model if model is not None else run.input.model,
            "carry": None,
            "history": messages,
            "forked_from": ForkOrigin(workflow_id=run.workflow_id, run_id=turn.run_id, step=step),
        }
    )


def describe_message(index: int, message: Message, width: int = 160) -> str:
    """One line per message, numbered as ``--edit-message`` counts them."""
    if isinstance(message, AssistantMessage):
        calls = ", ".join(f"{c.name}({c.arguments})" for c in message.tool_calls)
        body = message.text + (f" -> {calls}" if calls else "")
    elif isinstance(message, ToolResultMessage):
        body = f"{message.name}: {message.content}"
    else:
        body = message.text
    body = " ".join(body.split())
    if len(body) > width:
        body = body[: width - 1] + "…"
    return f"  [{index}] {message.role:<9} {body}"
