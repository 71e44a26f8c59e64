"""Prompt-cache accounting for the loopback LLM server, the way the real APIs bill it.

``FakeLLMServer(prompt_cache=PromptCache())`` measures each request instead of reporting the
scripted reply's token counts: the prompt's size is estimated at ``CHARS_PER_TOKEN`` characters a
token of its canonical JSON (the offline scripted model's estimate), and split into uncached
input, cache reads and cache writes:

- **Anthropic** caches only where the request asks, with ``cache_control`` breakpoints (at most
  ``MAX_BREAKPOINTS``; more is a 400, with or without accounting). The prompt is the sequence
  tools, system blocks, message blocks; a breakpoint's prefix is every block up to and including
  it, compared as canonical JSON without the ``cache_control`` markers themselves. A request
  reads the longest prefix written before and not expired, looked for at each breakpoint and up
  to ``LOOKBACK_BLOCKS`` blocks before it; it writes the prefix of each breakpoint past that
  point at least the model's minimum cacheable length long. Usage: ``cache_read_input_tokens``
  for what was read, ``cache_creation_input_tokens`` from there to the last prefix written,
  ``input_tokens`` for the rest. Entries live 5 minutes (``"ttl": "1h"``: an hour) from their
  last use.
- **OpenAI** caches automatically: a prompt of at least ``OPENAI_MIN_TOKENS`` tokens is cached
  in prefixes of ``OPENAI_MIN_TOKENS`` plus multiples of ``OPENAI_INCREMENT_TOKENS``; a request
  reports the longest of them seen before as ``prompt_tokens_details.cached_tokens``
  (``prompt_tokens`` counts them too). Writes cost nothing extra.

Caches are per model. Entries never leave before they expire (the real caches may evict early).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 4
"""As ``activities.providers.scripted`` estimates tokens."""
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
"""How many blocks before a breakpoint (besides its own) Anthropic looks for an earlier entry."""
ANTHROPIC_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
ANTHROPIC_DEFAULT_MIN_TOKENS = 1024
"""Sonnet 4.x, Opus 4 and 4.1."""
ANTHROPIC_MIN_TOKENS = {
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-7": 4096,
    "claude-haiku-4-5": 4096,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}
"""Minimum cacheable prefix by model family, where it is not the default."""
OPENAI_MIN_TOKENS = 1024
OPENAI_INCREMENT_TOKENS = 128
OPENAI_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class CacheUsage:
    """One request's input tokens, split the way the provider bills them."""

    input_tokens: int
    """Neither read from nor written to the cache."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class _Unit:
    """One block of an Anthropic prompt: its canonical text, and its breakpoint if it has one."""

    text: str
    ttl: str | None


class PromptCache:
    """The server's prompt caches, one entry per cached prefix; thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        anthropic_min_tokens: int | None = None,
    ) -> None:
        """``clock`` tells the time in seconds (for expiry); ``anthropic_min_tokens`` replaces
        the per-model minimum cacheable length."""
        self._clock = clock
        self._anthropic_min_tokens = anthropic_min_tokens
        self._expiry: dict[str, tuple[float, float]] = {}
        """Prefix digest -> (expiry time, TTL seconds)."""
        self._lock = threading.Lock()

    def anthropic(self, body: dict[str, Any]) -> CacheUsage:
        """Usage for a Messages API request (with at most ``MAX_BREAKPOINTS``)."""
        units = list(_anthropic_units(body))
        digests = list(_prefix_digests(str(body.get("model")), (u.text for u in units)))
        tokens = _cumulative_tokens(len(unit.text) for unit in units)
        total = tokens[-1] if tokens else 0
        breakpoints = [index for index, unit in enumerate(units) if unit.ttl is not None]
        minimum = self._anthropic_min_tokens or anthropic_min_tokens(str(body.get("model")))
        with self._lock:
            now = self._clock()
            read_at = max(
                (
                    index
                    for point in breakpoints
                    for index in range(point, max(point - LOOKBACK_BLOCKS - 1, -1), -1)
                    if self._live(digests[index], now)
                ),
                default=-1,
            )
            if read_at >= 0:
                self._touch(digests[read_at], now)
            read = tokens[read_at] if read_at >= 0 else 0
            written = [p for p in breakpoints if p > read_at and tokens[p] >= minimum]
            for point in written:
                ttl = ANTHROPIC_TTL_SECONDS.get(units[point].ttl or "5m", 300.0)
                self._expiry[digests[point]] = (now + ttl, ttl)
        write = tokens[written[-1]] - read if written else 0
        return CacheUsage(total - read - write, cache_read_tokens=read, cache_write_tokens=write)

    def openai(self, body: dict[str, Any]) -> CacheUsage:
        """Usage for a Chat Completions request."""
        prefix = {key: body.get(key) for key in ("tools", "response_format") if key in body}
        text = _canonical(prefix) + "".join(_canonical(m) for m in body.get("messages") or [])
        total = len(text) // CHARS_PER_TOKEN
        if total < OPENAI_MIN_TOKENS:
            return CacheUsage(total)
        lengths = range(OPENAI_MIN_TOKENS, total + 1, OPENAI_INCREMENT_TOKENS)
        ends = [length * CHARS_PER_TOKEN for length in lengths]
        chunks = (text[start:end] for start, end in zip([0, *ends], ends, strict=False))
        digests = list(_prefix_digests(str(body.get("model")), chunks))
        with self._lock:
            now = self._clock()
            hits = [
                length for length, d in zip(lengths, digests, strict=True) if self._live(d, now)
            ]
            cached = hits[-1] if hits else 0
            for digest in digests:
                self._expiry[digest] = (now + OPENAI_TTL_SECONDS, OPENAI_TTL_SECONDS)
        return CacheUsage(total - cached, cache_read_tokens=cached)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._expiry.clear()

    def _live(self, digest: str, now: float) -> bool:
        entry = self._expiry.get(digest)
        return entry is not None and entry[0] > now

    def _touch(self, digest: str, now: float) -> None:
        # A read restarts the entry's time to live.
        ttl = self._expiry[digest][1]
        self._expiry[digest] = (now + ttl, ttl)


def anthropic_min_tokens(model: str) -> int:
    """The minimum cacheable prefix of ``model``: its family's (longest prefix), else 1024."""
    families = [family for family in ANTHROPIC_MIN_TOKENS if model.startswith(family)]
    if not families:
        return ANTHROPIC_DEFAULT_MIN_TOKENS
    return ANTHROPIC_MIN_TOKENS[max(families, key=len)]


def count_breakpoints(body: dict[str, Any]) -> int:
    """How many ``cache_control`` blocks a Messages API request has."""
    return sum(unit.ttl is not None for unit in _anthropic_units(body))


def breakpoints_message(body: dict[str, Any]) -> str:
    """The API's 400 message for too many breakpoints."""
    found = count_breakpoints(body)
    return (
        f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
    )


def _anthropic_units(body: dict[str, Any]) -> Iterator[_Unit]:
    """The prompt's blocks in cache order: tools, system, then each message's content."""
    for tool in body.get("tools") or []:
        yield _unit(tool, where="tools")
    system = body.get("system")
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system or []:
        yield _unit(block, where="system")
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks or []:
            yield _unit(block, where=f"messages[{index}] {message.get('role')}")


def _unit(block: dict[str, Any], where: str) -> _Unit:
    """``block`` without its cache marker, tagged with where it is; and the marker's TTL."""
    marker = block.get("cache_control")
    bare = {key: value for key, value in block.items() if key != "cache_control"}
    ttl = (marker.get("ttl") or "5m") if isinstance(marker, dict) else None
    return _Unit(where + _canonical(bare), ttl)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _prefix_digests(model: str, pieces: Iterable[str]) -> Iterator[str]:
    """The digest of every prefix: the model, then the pieces up to and including each one."""
    running = hashlib.sha256(model.encode())
    for piece in pieces:
        running.update(b"\x00" + piece.encode())
        yield running.copy().hexdigest()


def _cumulative_tokens(lengths: Iterable[int]) -> list[int]:
    """Tokens up to and including each block, estimated from the running character count."""
    out: list[int] = []
    chars = 0
    for length in lengths:
        chars += length
        out.append(chars // CHARS_PER_TOKEN)
    return out
