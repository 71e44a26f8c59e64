"""The offline ``scripted`` model: deterministic replies from the agent's script.

Scripts are not part of an ``Agent``: the provider is given a ``ScriptBook``
(``durable_agents.testing``; the worker passes its registry's ``scripts``) and plays the one filed
under the request's agent name.

No key, no network. Token usage is estimated (about four characters a token) and priced at the
price table's ``scripted`` entry (a nominal price, not a real bill), so usage, cost and budget
accounting are exercised the same way as with a real provider.

Configuration (read once when the worker starts, never from activity input):

- ``SCRIPTED_MODEL_LATENCY_MS``: pretend each call takes this long (default 0).
- ``SCRIPTED_MODEL_JOURNAL``: append one line per call attempt (its idempotency key) to this
  file; crash tests count model calls with it.
- ``SCRIPTED_STREAM_CHUNK_MS``: when a run streams, the reply's text comes a few words at a time,
  this long apart (default 40), so ``starter.py run --stream`` shows it being "typed".
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.exceptions import ApplicationError

from activities.providers.base import TextSink
from activities.providers.pricing import SCRIPTED_MODEL, cost_usd
from durable_agents.contracts.messages import ToolCall, Usage
from durable_agents.contracts.model import ModelRequest, ModelResponse
from durable_agents.conversation.summary import read_summary_request
from durable_agents.testing import Script, ScriptView

if TYPE_CHECKING:
    from durable_agents.agents import AgentRegistry

CHARS_PER_TOKEN = 4

STREAM_CHUNK_MS = 40.0
"""Default pause between two streamed pieces of a scripted reply."""
STREAM_WORDS_PER_CHUNK = 3

SUMMARY_LINE_CHARS = 200
"""How much of each folded message the extractive summary keeps, on one line."""
SUMMARY_MAX_LINES = 60
"""The extractive summary keeps this many of its latest lines, so it never grows unbounded."""
SUMMARY_MAX_CHARS = 12_000
"""And at most this many UTF-8 bytes (fewer when the request's ``max_tokens`` asks for less)."""


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN) if text else 0


def extractive_summary(request: ModelRequest) -> str:
    """The scripted model's answer to a ``purpose == "summary"`` request.

    No model and no script: the previous summary's lines, then one line per folded message (who
    said it, then the start of what it said), keeping only the latest lines that fit
    ``SUMMARY_MAX_LINES`` and the smaller of ``SUMMARY_MAX_CHARS`` and ``max_tokens`` worth of
    text. Deterministic, so a scripted run with a summarizing context policy replays the same.
    """
    folded = read_summary_request(request)
    lines = [line for line in folded.previous_summary.splitlines() if line.strip()]
    lines += [
        _one_line(f"- {entry.header}: {entry.body}", SUMMARY_LINE_CHARS) for entry in folded.entries
    ]
    lines = lines[-SUMMARY_MAX_LINES:]
    limit = min(SUMMARY_MAX_CHARS, request.max_tokens * CHARS_PER_TOKEN)
    size = sum(len(line.encode()) + 1 for line in lines) - 1
    while lines and size > limit:
        size -= len(lines.pop(0).encode()) + 1
    return "\n".join(lines)


def stream_pieces(text: str, words: int = STREAM_WORDS_PER_CHUNK) -> list[str]:
    """``text`` cut after every ``words`` words; the pieces join back to ``text`` exactly."""
    pieces = re.findall(r"\s*\S+", text)
    chunks = ["".join(pieces[i : i + words]) for i in range(0, len(pieces), words)]
    rest = text[len("".join(chunks)) :]  # trailing whitespace
    if rest and chunks:
        chunks[-1] += rest
    elif rest:
        chunks.append(rest)
    return chunks


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _summary_response(request: ModelRequest) -> ModelResponse:
    text = extractive_summary(request)
    prompt_text = request.system + "".join(m.model_dump_json() for m in request.messages)
    usage = Usage(input_tokens=estimate_tokens(prompt_text), output_tokens=estimate_tokens(text))
    cost = cost_usd(SCRIPTED_MODEL, usage)
    return ModelResponse(
        text=text,
        usage=usage,
        cost_usd=cost or 0.0,
        priced=cost is not None,
        stop_reason="end_turn",
        model="scripted",
    )


class ScriptedProvider:
    name = "scripted"

    def __init__(
        self,
        scripts: Mapping[str, Script],
        *,
        latency_seconds: float = 0.0,
        journal: Path | None = None,
        stream_chunk_seconds: float = STREAM_CHUNK_MS / 1000,
    ) -> None:
        """``scripts``: agent name -> script (a ``ScriptBook``), read at each call, so scripts
        added to it later are played too."""
        self._scripts = scripts
        self._latency = latency_seconds
        self._journal = journal
        self._chunk_pause = stream_chunk_seconds

    @property
    def scripts(self) -> Mapping[str, Script]:
        """The scripts this provider plays: an agent runs on it only if it has one here."""
        return self._scripts

    @classmethod
    def from_env(cls, registry: AgentRegistry) -> ScriptedProvider:
        """The worker's scripted model, playing ``registry.scripts``."""
        journal = os.environ.get("SCRIPTED_MODEL_JOURNAL")
        return cls(
            registry.scripts,
            latency_seconds=float(os.environ.get("SCRIPTED_MODEL_LATENCY_MS", "0")) / 1000,
            journal=Path(journal) if journal else None,
            stream_chunk_seconds=float(
                os.environ.get("SCRIPTED_STREAM_CHUNK_MS", str(STREAM_CHUNK_MS))
            )
            / 1000,
        )

    async def stream(
        self, request: ModelRequest, model_name: str, on_text: TextSink
    ) -> ModelResponse:
        """``complete``, its text then passed on a few words at a time (a real model's pace,
        roughly), so a streamed offline run shows text arriving."""
        response = await self.complete(request, model_name)
        for index, piece in enumerate(stream_pieces(response.text)):
            if index and self._chunk_pause:
                await asyncio.sleep(self._chunk_pause)
            on_text(piece)
        return response

    async def complete(self, request: ModelRequest, model_name: str) -> ModelResponse:
        if self._journal is not None:
            with self._journal.open("a") as journal:
                journal.write(request.idempotency_key + "\n")
        if self._latency:
            await asyncio.sleep(self._latency)
        if request.purpose == "summary":
            return _summary_response(request)
        script = self._scripts.get(request.agent)
        if script is None:
            raise ApplicationError(
                f"agent {request.agent!r} has no script for the offline scripted model",
                type="NoScript",
                non_retryable=True,
            )
        reply = script(ScriptView(messages=request.messages, step=request.step))
        calls = [
            ToolCall(
                id=f"call_{request.step}_{index}",
                name=call.name,
                arguments=call.arguments
                if isinstance(call.arguments, str)
                else json.dumps(dict(call.arguments)),
            )
            for index, call in enumerate(reply.calls)
        ]
        prompt_text = request.system + "".join(m.model_dump_json() for m in request.messages)
        prompt_text += "".join(t.model_dump_json() for t in request.tools)
        output_text = reply.text + "".join(c.name + c.arguments for c in calls)
        usage = Usage(
            input_tokens=estimate_tokens(prompt_text), output_tokens=estimate_tokens(output_text)
        )
        cost = cost_usd(SCRIPTED_MODEL, usage)
        return ModelResponse(
            text=reply.text,
            tool_calls=calls,
            usage=usage,
            cost_usd=cost or 0.0,
            priced=cost is not None,
            stop_reason="tool_use" if calls else "end_turn",
            model="scripted",
        )
