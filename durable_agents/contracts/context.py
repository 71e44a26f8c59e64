"""How much of the conversation an agent sends to its model, and what it remembers of the rest.

``ContextPolicy`` is chosen per agent; ``ContextState`` is what the workflow carries between
model calls (and across continue-as-new) to apply it. The planning itself is in the pure
``conversation`` package. Fields are only ever added (with defaults), never renamed, so running
workflows keep decoding.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

ContextStrategy = Literal["keep_all", "truncate", "rolling_summary", "summarize"]
"""How the conversation is cut down to fit the model's context window:

- ``keep_all``: send every message (the behaviour before context management existed).
- ``truncate``: the task plus the most recent turns that fit; older turns are dropped.
- ``rolling_summary``: the task, a running summary, and a window of the most recent turns; each
  turn that leaves the window is folded into the summary by a model call.
- ``summarize``: send everything until the budget is exceeded, then fold all but the task and the
  most recent turns into one summary by a model call.
"""


class ContextPolicy(BaseModel):
    """An agent's context-window strategy and its limits.

    A *turn* is one atomic block of the conversation: a user message, or an assistant reply
    together with the results of every tool call it made. Blocks are never split, so a tool call
    is never sent without its result, nor a result without its call.
    """

    strategy: ContextStrategy = "keep_all"
    """See ``ContextStrategy``."""
    max_context_tokens: int = Field(default=100_000, gt=0)
    """Budget, in estimated tokens, for the messages sent on each model call (the task, the
    summary and the recent turns). The system prompt, the tool definitions and the reply
    (``max_tokens``) come on top, so leave room for them below the model's context window.
    Ignored by ``keep_all``."""
    keep_recent_turns: int = Field(default=10, gt=0)
    """Most recent turns kept verbatim: the most ``truncate`` sends, the window of
    ``rolling_summary``, and what ``summarize`` keeps when it folds. Fewer are sent when they do
    not fit ``max_context_tokens``; the latest turn is always sent."""
    fold_every_turns: int = Field(default=1, gt=0)
    """``rolling_summary`` only: fold once this many turns have left the window, so one summary
    call covers several turns (fewer, larger summary calls). 1 folds every turn as it leaves.
    Exceeding ``max_context_tokens`` folds at once regardless."""
    summary_model: str | None = None
    """``provider:model-name`` that writes the summaries, typically a cheaper model than the
    agent's; ``None`` uses the agent's own model."""
    summary_max_tokens: int = Field(default=1_024, gt=0)
    """Upper bound on the length of the summary (the summary call's ``max_tokens``). Space for
    it is reserved within ``max_context_tokens``."""

    @model_validator(mode="after")
    def _summary_fits_budget(self) -> Self:
        if self.summary_max_tokens >= self.max_context_tokens:
            raise ValueError(
                f"summary_max_tokens ({self.summary_max_tokens!r}) must be smaller than "
                f"max_context_tokens ({self.max_context_tokens!r}): the summary is sent within "
                "that budget"
            )
        return self

    @property
    def summarizes(self) -> bool:
        """Whether this strategy ever needs a summary model call."""
        return self.strategy in ("rolling_summary", "summarize")


class ContextState(BaseModel):
    """What the workflow remembers about the part of the conversation it no longer sends.

    The messages right after the task are the ones that leave the context first. Of the
    conversation as the workflow holds it, ``messages[1 : 1 + pending_folded]`` are no longer
    sent: the summary stands in for them (or, under ``truncate``, nothing does). The workflow
    may discard them with ``conversation.compact`` before continue-as-new.
    """

    summary: str = ""
    """The running summary of everything folded so far; empty until the first fold."""
    folded_messages: int = Field(default=0, ge=0)
    """How many messages have left the context over the whole run: folded into ``summary``, or
    dropped by ``truncate``. Only ever grows."""
    discarded_messages: int = Field(default=0, ge=0)
    """How many of the ``folded_messages`` the workflow has since removed from the conversation
    it holds (``conversation.compact``)."""
    estimated_tokens: int = Field(default=0, ge=0)
    """Estimated size of the messages sent on the latest model call."""
    summary_calls: int = Field(default=0, ge=0)
    """How many summary model calls have been applied."""

    @model_validator(mode="after")
    def _discarded_were_folded(self) -> Self:
        if self.discarded_messages > self.folded_messages:
            raise ValueError(
                f"discarded_messages ({self.discarded_messages!r}) cannot exceed "
                f"folded_messages ({self.folded_messages!r})"
            )
        return self

    @property
    def pending_folded(self) -> int:
        """Folded messages still present, right after the task, in the conversation held."""
        return self.folded_messages - self.discarded_messages
