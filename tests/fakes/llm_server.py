"""A loopback stand-in for the Anthropic Messages and OpenAI Chat Completions APIs.

Provider adapters are tested with the real ``anthropic`` and ``openai`` SDKs pointed at this
server, so the bytes on the wire are exactly what the SDKs send and parse. It is driven by a
queue of scripted outcomes and records every request it receives::

    with FakeLLMServer() as server:
        server.enqueue(HttpError.rate_limited(retry_after="1"), Reply(text="hi"))
        client = anthropic.AsyncAnthropic(api_key="k", base_url=server.base_url, max_retries=0)
        ...
        assert len(server.requests) == 2

Outcomes:

- ``Reply``: a normal reply (text and/or tool calls, usage), rendered in the wire format of the
  endpoint that was called, streamed as server-sent events when the request has ``"stream": true``
  (Anthropic's Messages events; OpenAI's chat-completion chunks, with usage in a last chunk when
  ``stream_options.include_usage`` asks for it). A streamed reply's text can come in
  ``text_chunks`` pieces, ``chunk_delay`` apart; it can hold after ``pause_after`` pieces until
  the test sets ``resume`` (so a test sees text arrive while the call is still open), or drop the
  connection after ``cut_after`` pieces (a stream cut halfway: the client gets an incomplete
  chunked body, as from a real network drop).
  With ``answer``, a structured-output reply the way each API delivers one: OpenAI's message
  content is the answer's JSON text (what ``response_format`` ``json_schema`` produces);
  Anthropic's content has a ``tool_use`` block calling the output tool with the answer as input.
- ``HttpError``: a status with a provider-style error body and optional headers.
- ``Delay``: wait, then play another outcome; longer than the client's timeout it causes one.
- ``DropConnection``: close the socket without sending a response.

With ``rate_limit`` (a ``RateLimit``) it also behaves like a provider's request limit: a request
above the rate, on any connection, is answered 429 with ``Retry-After`` and the provider's error
body, before it consumes an outcome; ``rate_limited`` counts those 429s. ``responder`` answers
requests the queue has no outcome for, from the request itself (so concurrent runs each get the
reply their conversation needs).

With ``prompt_cache`` (a ``PromptCache``, ``tests/fakes/prompt_cache.py``) a reply's input token
counts are measured from the request instead: uncached input, cache reads and cache writes, the
way each API caches prompts and bills them. Without it the scripted counts are sent as they are.
Either way, an Anthropic request with more ``cache_control`` blocks than the API accepts is
answered 400, as the API does.

Standard library only: a ``ThreadingHTTPServer`` on an ephemeral port in a background thread.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from tests.fakes.prompt_cache import (
    MAX_BREAKPOINTS,
    PromptCache,
    breakpoints_message,
    count_breakpoints,
)

Api = Literal["anthropic", "openai"]
ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
_ROUTES: dict[str, Api] = {ANTHROPIC_PATH: "anthropic", OPENAI_PATH: "openai"}


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call in a scripted reply."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    """A mapping, or raw text: OpenAI sends it verbatim (malformed JSON included); Anthropic
    needs an object, so text that is not a JSON object becomes ``{}`` there."""
    id: str | None = None
    """Generated in the provider's style (``toolu_...`` / ``call_...``) when not given."""


@dataclass(frozen=True)
class Reply:
    """A successful completion."""

    text: str = "Hello from the fake model."
    tool_calls: tuple[FakeToolCall, ...] = ()
    input_tokens: int = 25
    """Uncached input tokens (Anthropic's meaning); OpenAI's ``prompt_tokens`` adds cache reads."""
    output_tokens: int = 10
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str | None = None
    """Sent verbatim; by default ``tool_use``/``tool_calls`` with tool calls, else
    ``end_turn``/``stop``."""
    model: str | None = None
    """By default the model the request asked for."""
    answer: Mapping[str, Any] | None = None
    """A structured final answer. OpenAI: the message content is its JSON text (``text`` is
    ignored), next to any ``tool_calls``. Anthropic: a ``tool_use`` block calling
    ``answer_tool`` with it as input, after ``text`` and the other ``tool_calls``."""
    answer_tool: str = "final_answer"
    """Anthropic: the name of the output tool the answer calls."""
    answer_id: str | None = None
    """Anthropic: the output call's id; generated (``toolu_...``) when not given."""
    refusal: str | None = None
    """OpenAI: a refusal instead of content (``message.refusal``, ``content`` null)."""
    text_chunks: int = 1
    """Streamed: the text (OpenAI: the content) is sent as this many deltas."""
    chunk_delay: float = 0.0
    """Streamed: seconds between two text deltas."""
    pause_after: int | None = None
    """Streamed: after this many text deltas, hold the stream open until ``resume`` is set."""
    resume: threading.Event | None = None
    cut_after: int | None = None
    """Streamed: after this many text deltas, drop the connection mid-body. Not streamed: drop
    it without a response."""


@dataclass(frozen=True)
class HttpError:
    """An error response; the body is provider-shaped unless ``body`` is given."""

    status: int
    message: str = "fake error"
    error_type: str | None = None
    """Provider error type; derived from the status when not given."""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | str | None = None

    @classmethod
    def rate_limited(cls, retry_after: str | None = None, **headers: str) -> HttpError:
        all_headers = dict(headers)
        if retry_after is not None:
            all_headers["retry-after"] = retry_after
        return cls(429, "Number of requests has exceeded your rate limit.", headers=all_headers)

    @classmethod
    def server_error(cls, status: int = 500) -> HttpError:
        return cls(status, "Internal server error")

    @classmethod
    def bad_request(cls, message: str) -> HttpError:
        return cls(400, message)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before playing ``then`` (the default reply when ``None``)."""

    seconds: float
    then: Outcome | None = None


@dataclass(frozen=True)
class DropConnection:
    """Close the connection without sending anything back."""


Outcome = Reply | HttpError | Delay | DropConnection


@dataclass(frozen=True)
class RateLimit:
    """A provider's request limit across all connections, as a token bucket (the way Anthropic
    describes its limits: capacity refills continuously, not at fixed intervals)."""

    requests_per_second: float
    burst: int | None = None
    """Requests accepted at once after a quiet spell; default one second's worth."""

    @property
    def capacity(self) -> int:
        return max(1, self.burst if self.burst is not None else round(self.requests_per_second))


class _TokenBucket:
    def __init__(self, limit: RateLimit) -> None:
        self._rate = limit.requests_per_second
        self._capacity = float(limit.capacity)
        self._tokens = self._capacity
        self._updated = time.monotonic()

    def take(self, now: float) -> float:
        """0 when a request may pass now (it takes a token), else seconds until one may."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = max(now, self._updated)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: Any
    """The parsed JSON body (``None`` when it was not JSON)."""
    received_at: float
    """``time.monotonic()`` when the request had been read."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FakeLLMServer:
    """Scripted HTTP server for both provider APIs; see the module docstring."""

    def __init__(
        self,
        default: Outcome | None = None,
        host: str = "127.0.0.1",
        *,
        rate_limit: RateLimit | None = None,
        responder: Callable[[RecordedRequest], Outcome] | None = None,
        prompt_cache: PromptCache | None = None,
    ) -> None:
        self.default: Outcome = default or Reply()
        """Played when the queue is empty (and there is no ``responder``)."""
        self.rate_limit = rate_limit
        self.responder = responder
        """Picks the outcome for a request when the queue is empty."""
        self.prompt_cache = prompt_cache
        """Measures each reply's input, cache read and cache write tokens from its request."""
        self._bucket = _TokenBucket(rate_limit) if rate_limit is not None else None
        self._rate_limited = 0
        self._host = host
        self._queue: deque[Outcome] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self._host, 0), _make_handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a Delay
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Root URL, the ``base_url`` for the Anthropic SDK: ``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("FakeLLMServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for the OpenAI SDK, whose paths are relative to ``/v1``."""
        return self.base_url + "/v1"

    # -- scripting and inspection ----------------------------------------------------------

    def enqueue(self, *outcomes: Outcome) -> None:
        """Queue outcomes; each request consumes one, in order."""
        with self._lock:
            self._queue.extend(outcomes)

    @property
    def pending(self) -> int:
        """Outcomes queued but not yet played."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def rate_limited(self) -> int:
        """How many requests were answered 429 for exceeding ``rate_limit``."""
        with self._lock:
            return self._rate_limited

    def reset(self) -> None:
        """Forget queued outcomes, recorded requests and the ``rate_limited`` count."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._rate_limited = 0
            if self.rate_limit is not None:
                self._bucket = _TokenBucket(self.rate_limit)

    def _record(self, request: RecordedRequest, *, play: bool) -> Outcome | None:
        """Record ``request``; when ``play``, also take the outcome to answer it with."""
        with self._lock:
            self._requests.append(request)
            if not play:
                return None
            wait = self._bucket.take(request.received_at) if self._bucket is not None else 0.0
            if wait > 0:
                self._rate_limited += 1
                # Whole seconds, as Anthropic and OpenAI send it.
                return HttpError.rate_limited(retry_after=str(max(1, math.ceil(wait))))
            if self._queue:
                return self._queue.popleft()
            return self.responder(request) if self.responder is not None else self.default

    def _account_cache(self, reply: Reply, api: Api, body: dict[str, Any]) -> Reply | HttpError:
        """``reply`` with the request's measured token counts under ``prompt_cache``; a 400 for
        more cache breakpoints than Anthropic accepts, with or without it."""
        if api == "anthropic" and count_breakpoints(body) > MAX_BREAKPOINTS:
            return HttpError.bad_request(breakpoints_message(body))
        if self.prompt_cache is None:
            return reply
        cache = self.prompt_cache
        usage = cache.anthropic(body) if api == "anthropic" else cache.openai(body)
        return replace(
            reply,
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )


# -- HTTP handling ---------------------------------------------------------------------------


def _make_handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        fake = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLMServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        request = RecordedRequest(
            path=path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        api = _ROUTES.get(path)
        outcome = self.fake._record(request, play=api is not None)
        if api is None or outcome is None:
            self._send_json(404, {"error": {"message": f"no route for {path}"}})
            return
        self._play(outcome, api, body if isinstance(body, dict) else {})

    def _play(self, outcome: Outcome, api: Api, body: dict[str, Any]) -> None:
        try:
            if isinstance(outcome, Delay):
                if self.fake._stopping.wait(outcome.seconds):
                    return
                self._play(outcome.then or self.fake.default, api, body)
            elif isinstance(outcome, DropConnection):
                self._drop()
            elif isinstance(outcome, HttpError):
                self._send_error(outcome, api)
            else:
                reply = self.fake._account_cache(outcome, api, body)
                if isinstance(reply, HttpError):
                    self._send_error(reply, api)
                elif body.get("stream"):
                    self._send_stream(_stream_events(reply, api, body), reply)
                elif reply.cut_after is not None:
                    self._drop()
                else:
                    self._send_json(200, _render_reply(reply, api, body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, error: HttpError, api: Api) -> None:
        payload: Any = error.body if error.body is not None else _error_body(error, api)
        self._send_json(error.status, payload, error.headers)

    def _send_stream(self, events: Iterator[tuple[str | None, Any]], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        # Chunked, as the APIs send it: a connection dropped mid-body is a visible error.
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        for event, data in events:
            chunk = f"event: {event}\n" if event else ""
            chunk += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
            encoded = chunk.encode()
            self.wfile.write(f"{len(encoded):x}\r\n".encode() + encoded + b"\r\n")
            self.wfile.flush()
            if not _is_text_event(data):
                continue
            sent += 1
            if reply.cut_after is not None and sent >= reply.cut_after:
                self._drop()
                return
            if reply.pause_after is not None and sent == reply.pause_after:
                while not (reply.resume is None or reply.resume.is_set()):
                    if self.fake._stopping.wait(0.02):
                        return
            elif reply.chunk_delay and self.fake._stopping.wait(reply.chunk_delay):
                return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- wire formats ----------------------------------------------------------------------------

_ERROR_TYPES: dict[Api, dict[int, str]] = {
    "anthropic": {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    },
    "openai": {
        400: "invalid_request_error",
        401: "invalid_request_error",
        403: "invalid_request_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
        500: "server_error",
    },
}


def _error_body(error: HttpError, api: Api) -> dict[str, Any]:
    kind = error.error_type or _ERROR_TYPES[api].get(error.status, "api_error")
    if api == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": error.message}}
    return {"error": {"message": error.message, "type": kind, "param": None, "code": None}}


def _anthropic_input(arguments: Mapping[str, Any] | str) -> dict[str, Any]:
    if not isinstance(arguments, str):
        return dict(arguments)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _openai_arguments(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(dict(arguments))


def _call_id(call: FakeToolCall, api: Api) -> str:
    if call.id:
        return call.id
    if api == "anthropic":
        return f"toolu_01{uuid.uuid4().hex[:22]}"
    return f"call_{uuid.uuid4().hex[:24]}"


def _model(reply: Reply, body: dict[str, Any]) -> str:
    return reply.model or str(body.get("model") or "fake-model")


def _anthropic_stop_reason(reply: Reply) -> str:
    calls = reply.tool_calls or reply.answer is not None
    return reply.stop_reason or ("tool_use" if calls else "end_turn")


def _openai_finish_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": reply.cache_write_tokens,
        "cache_read_input_tokens": reply.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": reply.cache_write_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _openai_usage(reply: Reply) -> dict[str, Any]:
    prompt_tokens = reply.input_tokens + reply.cache_read_tokens
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": prompt_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    calls = list(reply.tool_calls)
    if reply.answer is not None:
        calls.append(FakeToolCall(reply.answer_tool, reply.answer, id=reply.answer_id))
    for call in calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": _call_id(call, "anthropic"),
                "name": call.name,
                "input": _anthropic_input(call.arguments),
            }
        )
    return blocks


def _openai_content(reply: Reply) -> str | None:
    if reply.refusal is not None:
        return None
    if reply.answer is not None:
        return json.dumps(dict(reply.answer))
    return reply.text or None


def _openai_tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": _call_id(call, "openai"),
            "type": "function",
            "function": {"name": call.name, "arguments": _openai_arguments(call.arguments)},
        }
        for call in reply.tool_calls
    ]


def _render_reply(reply: Reply, api: Api, body: dict[str, Any]) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "id": f"msg_01{uuid.uuid4().hex[:22]}",
            "type": "message",
            "role": "assistant",
            "model": _model(reply, body),
            "content": _anthropic_blocks(reply),
            "stop_reason": _anthropic_stop_reason(reply),
            "stop_sequence": None,
            "usage": _anthropic_usage(reply, reply.output_tokens),
        }
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _openai_content(reply),
        "refusal": reply.refusal,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = _openai_tool_calls(reply)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(reply, body),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _openai_finish_reason(reply),
            }
        ],
        "usage": _openai_usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def _split(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` pieces of about equal length (fewer when it is shorter)."""
    parts = max(1, min(parts, len(text)))
    size = math.ceil(len(text) / parts)
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def _is_text_event(data: Any) -> bool:
    """Whether a streamed event carries a piece of the reply's text (what ``text_chunks``,
    ``pause_after`` and ``cut_after`` count)."""
    if not isinstance(data, dict):
        return False
    if data.get("type") == "content_block_delta":
        return bool(data["delta"].get("type") == "text_delta")
    choices = data.get("choices") or []
    return bool(choices and choices[0]["delta"].get("content"))


def _stream_events(
    reply: Reply, api: Api, body: dict[str, Any]
) -> Iterator[tuple[str | None, Any]]:
    if api == "anthropic":
        return _anthropic_stream(reply, body)
    return _openai_stream(reply, body)


def _anthropic_stream(reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str | None, Any]]:
    message = _render_reply(reply, "anthropic", body)
    start = {**message, "content": [], "stop_reason": None, "usage": _anthropic_usage(reply, 1)}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            empty: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": piece}
                for piece in _split(block["text"], reply.text_chunks)
            ]
        else:
            empty = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": empty,
            },
        )
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _openai_stream(reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str | None, Any]]:
    chunk_base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(reply, body),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**chunk_base, "choices": [choice]}

    yield None, chunk({"role": "assistant", "content": "", "refusal": None})
    content = _openai_content(reply)
    if content:
        for piece in _split(content, reply.text_chunks):
            yield None, chunk({"content": piece})
    if reply.refusal is not None:
        yield None, chunk({"refusal": reply.refusal})
    for index, call in enumerate(_openai_tool_calls(reply)):
        header = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield None, chunk({"tool_calls": [{"index": index, **header}]})
        arguments = {"arguments": call["function"]["arguments"]}
        yield None, chunk({"tool_calls": [{"index": index, "function": arguments}]})
    yield None, chunk({}, _openai_finish_reason(reply))
    if (body.get("stream_options") or {}).get("include_usage"):
        yield None, {**chunk_base, "choices": [], "usage": _openai_usage(reply)}
    yield None, "[DONE]"
