"""What part of the conversation each model call sends: the context-window planner.

The conversation is cut only between *blocks*: a user message, or an assistant reply together
with the results of every tool call it made. Providers reject a tool result whose call is not in
the request, so a block is never split. The task (the first message, when it is a user message)
is always sent; so is the latest block, even when it alone exceeds the budget (the provider then
says the request is too big, rather than the agent silently losing its latest work).

What the model sees is ``task, [summary], recent blocks``. The summary is a user message right
after the task (see ``summary_message``): the system prompt and the task stay byte-identical on
every call, so the provider's prompt cache keeps serving them, and both adapters accept it
(Anthropic merges consecutive user messages into one turn, OpenAI takes them as they are),
whatever the first recent block starts with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from durable_agents.contracts.context import ContextPolicy, ContextState
from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    UserMessage,
)
from durable_agents.conversation.tokens import estimate_message_tokens, estimate_tokens

SUMMARY_HEADER = (
    "[Summary of the earlier conversation. Older turns were folded into it to fit the context "
    "window; it is background for the task above, not a new request.]"
)
"""First line of the summary message; ``is_summary_message`` recognises it."""


def summary_message(summary: str) -> UserMessage:
    """The message that stands in for the folded turns, sent right after the task."""
    return UserMessage(text=f"{SUMMARY_HEADER}\n\n{summary}")


def is_summary_message(message: Message) -> bool:
    return isinstance(message, UserMessage) and message.text.startswith(SUMMARY_HEADER)


def blocks(messages: Sequence[Message]) -> list[list[Message]]:
    """``messages`` cut into atomic blocks, in order; concatenated they give ``messages`` back.

    A block runs from an assistant message to the last tool result that answers one of its calls,
    and takes in anything in between. An assistant message whose results are not in yet is a
    block by itself. A tool result that answers no earlier call (invalid input; our loop never
    produces it) stays with the message before it, so planning never makes matters worse.
    """
    # reach[i]: the furthest message that must share a block with message i.
    reach = list(range(len(messages)))
    caller: dict[str, int] = {}
    for index, message in enumerate(messages):
        if isinstance(message, AssistantMessage):
            for call in message.tool_calls:
                caller[call.id] = index
        elif isinstance(message, ToolResultMessage):
            start = caller.get(message.tool_call_id, max(index - 1, 0))
            reach[start] = max(reach[start], index)
    result: list[list[Message]] = []
    start = 0
    furthest = -1
    for index in range(len(messages)):
        furthest = max(furthest, reach[index])
        if furthest == index:
            result.append(list(messages[start : index + 1]))
            start = index + 1
    return result


@dataclass(frozen=True)
class ContextPlan:
    """What to send on the next model call, and what to fold into the summary first.

    A plain dataclass rather than a pydantic model: it is never serialized, and building one must
    not re-validate a thousand messages.
    """

    send: list[Message]
    """The messages for ``ModelRequest.messages``: task, summary message (if any), recent
    blocks. When ``needs_summary`` is true this is a fallback that leaves ``to_fold`` out
    without summarizing it; fold, apply the summary and plan again instead."""
    to_fold: list[Message]
    """Whole blocks, oldest first, to fold into the summary before this call (see
    ``summary_request``); empty when no summary call is needed."""
    state: ContextState
    """The state that goes with sending ``send`` as it is: ``estimated_tokens`` set, and under
    ``truncate`` (or the fallback) the messages left out counted as folded."""
    estimated_tokens: int
    """Estimated input tokens of ``send``."""

    @property
    def needs_summary(self) -> bool:
        """Whether a summary model call should fold ``to_fold`` before this call."""
        return bool(self.to_fold)


def plan_context(
    messages: Sequence[Message], policy: ContextPolicy, state: ContextState, model: str
) -> ContextPlan:
    """Plan the next model call's context under ``policy``.

    Args:
        messages: The conversation as the workflow holds it, task first; after
            ``compact`` the folded messages are gone from it.
        policy: The agent's context policy.
        state: What has been folded so far; ``ContextState()`` at the start of a run.
        model: The agent's ``provider:model-name``, for token estimates.

    Returns:
        The plan. Under ``rolling_summary`` and ``summarize``, ``to_fold`` may ask for a summary
        call first; ``keep_all`` with a fresh state sends ``messages`` unchanged.
    """
    head = list(messages[:1]) if messages and isinstance(messages[0], UserMessage) else []
    rest = messages[len(head) :]
    skip = min(state.pending_folded, len(rest))
    prefix = head + ([summary_message(state.summary)] if state.summary else [])
    recent = blocks(rest[skip:])

    if policy.strategy == "keep_all":
        return _plan(prefix, recent, 0, state, model)

    sizes = [sum(estimate_message_tokens(m, model) for m in block) for block in recent]
    task_tokens = estimate_tokens(head, model)  # with the request's own overhead
    summary_tokens = estimate_message_tokens(prefix[-1], model) if state.summary else 0

    def fitting(summary_room: int) -> int:
        """How many of the latest blocks fit next to the task and ``summary_room`` tokens of
        summary: at most ``keep_recent_turns``, and always at least the latest one."""
        used = task_tokens + summary_room
        count = 0
        for size in reversed(sizes[-policy.keep_recent_turns :]):
            if count and used + size > policy.max_context_tokens:
                break
            used += size
            count += 1
        return count

    if policy.strategy == "truncate":
        return _plan(prefix, recent, len(recent) - fitting(summary_tokens), state, model)

    fits = task_tokens + summary_tokens + sum(sizes) <= policy.max_context_tokens
    window_full = len(recent) >= policy.keep_recent_turns + policy.fold_every_turns
    if fits and (policy.strategy == "summarize" or not window_full):
        return _plan(prefix, recent, 0, state, model)
    # Leave room for the summary the fold will produce (or the current one, if larger), so that
    # planning again with the new summary finds that the context fits.
    new_summary_room = estimate_message_tokens(summary_message(""), model)
    new_summary_room += policy.summary_max_tokens
    fold = len(recent) - fitting(max(new_summary_room, summary_tokens))
    to_fold = [message for block in recent[:fold] for message in block]
    return replace(_plan(prefix, recent, fold, state, model), to_fold=to_fold)


def _plan(
    prefix: list[Message],
    recent: list[list[Message]],
    leave_out: int,
    state: ContextState,
    model: str,
) -> ContextPlan:
    """The plan that sends ``prefix`` and all but the first ``leave_out`` of ``recent``."""
    send = prefix + [message for block in recent[leave_out:] for message in block]
    left_out = sum(len(block) for block in recent[:leave_out])
    tokens = estimate_tokens(send, model)
    return ContextPlan(
        send=send,
        to_fold=[],
        state=state.model_copy(
            update={
                "folded_messages": state.folded_messages + left_out,
                "estimated_tokens": tokens,
            }
        ),
        estimated_tokens=tokens,
    )


def compact(messages: Sequence[Message], state: ContextState) -> tuple[list[Message], ContextState]:
    """Drop the messages that are no longer sent, e.g. before continue-as-new.

    Returns the task followed by the messages still sent, and the state to carry with them.
    Planning with the result gives the same plan as with the full conversation.
    """
    head = list(messages[:1]) if messages and isinstance(messages[0], UserMessage) else []
    rest = messages[len(head) :]
    skip = min(state.pending_folded, len(rest))
    return head + list(rest[skip:]), state.model_copy(
        update={"discarded_messages": state.discarded_messages + skip}
    )
