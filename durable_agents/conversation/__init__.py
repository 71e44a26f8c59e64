"""Context-window management for agent conversations: pure, deterministic, sandbox-safe.

Plain Python over the ``contracts`` models: no I/O, no clock, no randomness, so the workflow can
call it directly (import it inside ``workflow.unsafe.imports_passed_through()`` with
``contracts``, so its pydantic models keep one class identity). The summary itself is written by
an ordinary ``call_model`` activity built by ``summary_request``.
"""

from durable_agents.conversation.summary import (
    SUMMARY_SYSTEM_PROMPT,
    FoldedEntry,
    SummaryInput,
    apply_summary,
    read_summary_request,
    summary_request,
)
from durable_agents.conversation.tokens import (
    TokenProfile,
    estimate_message_tokens,
    estimate_text_tokens,
    estimate_tokens,
    profile_for,
)
from durable_agents.conversation.window import (
    SUMMARY_HEADER,
    ContextPlan,
    blocks,
    compact,
    is_summary_message,
    plan_context,
    summary_message,
)

__all__ = [
    "SUMMARY_HEADER",
    "SUMMARY_SYSTEM_PROMPT",
    "ContextPlan",
    "FoldedEntry",
    "SummaryInput",
    "TokenProfile",
    "apply_summary",
    "blocks",
    "compact",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "is_summary_message",
    "plan_context",
    "profile_for",
    "read_summary_request",
    "summary_message",
    "summary_request",
]
