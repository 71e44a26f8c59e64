"""Scripts for the offline ``scripted`` model.

A script is a function from what the conversation looks like so far (``ScriptView``) to the next
reply. It is deterministic, so a scripted run behaves the same every time and needs no API key,
but it can read earlier tool results, which lets a flagship script do real work on real data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable_agents.contracts.messages import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    UserMessage,
)


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    """A mapping is sent as JSON; a string is sent verbatim (to test malformed JSON)."""


@dataclass(frozen=True)
class ScriptedReply:
    text: str = ""
    calls: Sequence[ScriptedCall] = ()


@dataclass(frozen=True)
class ScriptView:
    """The conversation as a script sees it."""

    messages: Sequence[Message]
    step: int = 0
    """The run's model-call number (``ModelRequest.step``): 1 on the first call. Unlike ``turn``
    it still counts every call when context management sends only the recent messages. 0 when
    the view was built outside a model call."""

    @property
    def task(self) -> str:
        for message in self.messages:
            if isinstance(message, UserMessage):
                return message.text
        return ""

    @property
    def turn(self) -> int:
        """How many replies the model has given so far (0 on the first call), counted in the
        messages the view holds: under a truncating context policy, use ``step`` instead."""
        return sum(isinstance(m, AssistantMessage) for m in self.messages)

    def results(self, tool_name: str) -> list[ToolResultMessage]:
        return [
            m for m in self.messages if isinstance(m, ToolResultMessage) and m.name == tool_name
        ]

    def result_json(self, tool_name: str) -> Any:
        """The latest successful result of ``tool_name`` parsed as JSON, or ``None``."""
        for message in reversed(self.results(tool_name)):
            if not message.is_error:
                try:
                    return json.loads(message.content)
                except ValueError:
                    return None
        return None

    def errors(self) -> list[ToolResultMessage]:
        return [m for m in self.messages if isinstance(m, ToolResultMessage) and m.is_error]


Script = Callable[[ScriptView], ScriptedReply]


def sequence(*replies: ScriptedReply) -> Script:
    """A script that gives ``replies`` in order and then repeats the last one."""
    if not replies:
        raise ValueError("sequence() needs at least one reply")

    def script(view: ScriptView) -> ScriptedReply:
        return replies[min(view.turn, len(replies) - 1)]

    return script
