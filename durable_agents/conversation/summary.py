"""The summary model call: folding turns that leave the context window into a running summary.

``summary_request`` builds an ordinary ``ModelRequest`` for the ``call_model`` activity, so a
summary call gets the same retries, idempotency key and audit trail as any other model call;
``apply_summary`` records the answer in the ``ContextState``. The request carries no tools:
the folded turns are rendered as text, one user message each, because providers refuse tool
calls and results in a request that defines no tools. One message per folded message also
lets the offline scripted model (``read_summary_request``) summarize without parsing prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from durable_agents.contracts.context import ContextPolicy, ContextState
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    UserMessage,
)
from durable_agents.contracts.model import ModelRequest

SUMMARY_SYSTEM_PROMPT = """\
You maintain the running summary of an AI agent's conversation. Older messages are leaving the \
agent's context window; your summary replaces them, together with the previous summary. The \
agent will continue its task seeing only its task, your summary and its most recent messages.

Write one updated summary that merges the previous summary (if any) with the messages given. \
Keep, faithfully and compactly:
- facts and results learned, above all from tool results: exact ids, names, numbers, amounts, \
dates, paths and error messages;
- decisions taken and why;
- actions already done, especially tool calls with side effects, so they are not repeated;
- work still pending or planned next, open questions, and what failed and was tried.
Drop pleasantries, repetition and raw data the task does not need. Never invent anything, do \
not answer the task and do not address anyone: write terse plain-text bullet points, oldest \
first."""

TASK_TAG = "## The agent's task (for context; it stays in the agent's context, do not repeat it)"
PREVIOUS_SUMMARY_TAG = "## Previous summary"
ENTRY_TAG = "## Leaving the context:"
INSTRUCTION_TAG = "## Now"

MAX_CHARS_PER_MESSAGE = 20_000
"""How much of one folded message the summary model sees; longer ones keep their head and tail,
so one huge tool result cannot crowd out everything else."""


def summary_request(
    to_fold: Sequence[Message],
    state: ContextState,
    policy: ContextPolicy,
    *,
    agent: str,
    agent_model: str,
    step: int,
    idempotency_key: str,
    task: str = "",
    max_chars_per_message: int = MAX_CHARS_PER_MESSAGE,
) -> ModelRequest:
    """The ``call_model`` request that folds ``to_fold`` into ``state.summary``.

    Args:
        to_fold: ``ContextPlan.to_fold``.
        state: The state the plan was made with (its summary is the previous summary).
        policy: The agent's context policy: ``summary_model`` and ``summary_max_tokens``.
        agent: The agent's name.
        agent_model: The agent's own ``provider:model-name``, used when the policy names no
            ``summary_model``.
        step: The step whose context is being planned (``ModelRequest.step``).
        idempotency_key: A key for this summary call, different from the step's own model call.
        task: The agent's task, shown to the summarizer so it knows what matters.
        max_chars_per_message: Longer folded messages are clipped to this many characters.
    """
    if not to_fold:
        raise ValueError("summary_request needs at least one message to fold")
    messages: list[Message] = []
    if task:
        messages.append(UserMessage(text=f"{TASK_TAG}\n\n{task}"))
    if state.summary:
        messages.append(UserMessage(text=f"{PREVIOUS_SUMMARY_TAG}\n\n{state.summary}"))
    for message in to_fold:
        header, body = _render(message)
        messages.append(
            UserMessage(text=f"{ENTRY_TAG} {header}\n\n{_clip(body, max_chars_per_message)}")
        )
    merge = "the previous summary and " if state.summary else ""
    messages.append(
        UserMessage(
            text=f"{INSTRUCTION_TAG}\n\nWrite the updated summary of {merge}the "
            f"{len(to_fold)} messages above, in at most about "
            f"{policy.summary_max_tokens} tokens. Reply with the summary only."
        )
    )
    return ModelRequest(
        agent=agent,
        model=policy.summary_model or agent_model,
        system=SUMMARY_SYSTEM_PROMPT,
        messages=messages,
        tools=[],
        max_tokens=policy.summary_max_tokens,
        idempotency_key=idempotency_key,
        step=step,
        purpose="summary",
    )


def apply_summary(state: ContextState, response_text: str, folded_count: int) -> ContextState:
    """The state after the summary call for ``folded_count`` messages answered ``response_text``.

    Apply it to the state the plan was made with, then plan again. An empty answer keeps the
    previous summary: the folded messages are lost from view, but not everything before them.
    """
    if folded_count < 1:
        raise ValueError(f"folded_count must be positive, got {folded_count!r}")
    return state.model_copy(
        update={
            "summary": response_text.strip() or state.summary,
            "folded_messages": state.folded_messages + folded_count,
            "summary_calls": state.summary_calls + 1,
        }
    )


@dataclass(frozen=True)
class FoldedEntry:
    """One folded message as ``summary_request`` rendered it."""

    header: str
    """Who said it: ``user``, ``assistant``, ``assistant, calling get_costs``,
    ``result of get_costs`` or ``error from get_costs``."""
    body: str


@dataclass(frozen=True)
class SummaryInput:
    """What a summary request asks to fold, read back from the request."""

    task: str
    previous_summary: str
    entries: list[FoldedEntry]


def read_summary_request(request: ModelRequest) -> SummaryInput:
    """The parts of a ``summary_request``, for summarizers that need no model (the scripted
    one)."""
    task = previous = ""
    entries: list[FoldedEntry] = []
    for message in request.messages:
        if not isinstance(message, UserMessage):
            continue
        first, _, body = message.text.partition("\n\n")
        if first == TASK_TAG:
            task = body
        elif first == PREVIOUS_SUMMARY_TAG:
            previous = body
        elif first.startswith(ENTRY_TAG):
            entries.append(FoldedEntry(header=first.removeprefix(ENTRY_TAG).strip(), body=body))
    return SummaryInput(task=task, previous_summary=previous, entries=entries)


def _render(message: Message) -> tuple[str, str]:
    if isinstance(message, UserMessage):
        return "user", message.text
    if isinstance(message, ToolResultMessage):
        kind = "error from" if message.is_error else "result of"
        return f"{kind} {message.name} ({message.tool_call_id})", message.content
    assert isinstance(message, AssistantMessage)
    if not message.tool_calls:
        return "assistant", message.text
    names = ", ".join(call.name for call in message.tool_calls)
    lines = [message.text] if message.text else []
    lines += [f"-> {call.name} ({call.id}) {call.arguments}" for call in message.tool_calls]
    return f"assistant, calling {names}", "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[len(text) - tail :]}"
