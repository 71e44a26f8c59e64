"""Provider SDK errors mapped onto Temporal retry semantics, in one place.

The SDKs' own retries are off, so this mapping decides what Temporal retries::

    SDK error (anthropic or openai)      ApplicationError type       retried   next_retry_delay
    -----------------------------------  --------------------------  --------  ----------------
    APITimeoutError                      ProviderTimeout             yes
    APIConnectionError                   ProviderConnectionError     yes
    APIStatusError 408                   ProviderTimeout             yes       Retry-After
    APIStatusError 409                   ProviderConflict            yes       Retry-After
    APIStatusError 429                   ProviderRateLimited         yes       Retry-After
    APIStatusError >= 500                ProviderServerError         yes       Retry-After
    APIStatusError 401, 403              ProviderAuthError           no
    APIStatusError other 4xx             ProviderBadRequest          no
    error event in a 200 stream          by the event's error type   no for request errors
                                         (ProviderServerError ...)   (invalid, auth, ...)
    httpx timeout mid-stream             ProviderTimeout             yes
    httpx transport error mid-stream     ProviderConnectionError     yes
    StreamIncomplete                     ProviderConnectionError     yes
    anything else                        ProviderError               yes

Streaming (``stream``) reads the body as it arrives, past the point where the SDKs wrap
transport errors: a connection dropped mid-stream surfaces as the raw ``httpx`` error, and a
stream that simply stops early as ``StreamIncomplete``; both are mapped like the dropped
connection they are.

``Retry-After`` means the response's ``retry-after-ms`` header, else ``Retry-After`` in seconds
or as an HTTP date; without one Temporal's retry policy picks the delay. Non-retryable errors
carry the provider's own message so the workflow failure says what was wrong with the request.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    # Imported only where an SDK error is being mapped: importing both SDKs costs a worker
    # seconds of start-up, which matters most right after a crash.
    import anthropic
    import openai

_SDK_PACKAGES = ("anthropic", "openai")
_HTTP_PACKAGES = ("httpx", "httpx2")
"""The HTTP clients under the SDKs (the anthropic SDK has its own copy, ``httpx2``)."""

_STREAM_ERROR_TYPES = {
    "overloaded_error": "ProviderServerError",
    "api_error": "ProviderServerError",
    "rate_limit_error": "ProviderRateLimited",
    "timeout_error": "ProviderTimeout",
}
"""Errors an Anthropic stream reports in an ``error`` event, after its 200, that are retried."""
_STREAM_REQUEST_ERRORS = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
    }
)
"""Stream errors about the request itself: not retried (other unknown types are)."""

_RETRYABLE_STATUS_TYPES = {
    408: "ProviderTimeout",
    409: "ProviderConflict",
    429: "ProviderRateLimited",
}


class StreamIncomplete(Exception):
    """A streamed reply ended before the provider said it was complete (no ``message_stop`` /
    ``finish_reason``): the connection went away mid-reply."""


def to_activity_error(err: BaseException) -> BaseException:
    """Map a provider SDK exception to an ``ApplicationError`` Temporal knows how to retry."""
    if isinstance(err, ApplicationError):
        return err
    if isinstance(err, StreamIncomplete):
        return ApplicationError(f"stream ended early: {err}", type="ProviderConnectionError")
    provider = _provider_of(err)
    if type(err).__module__.partition(".")[0] in _HTTP_PACKAGES:
        return _from_transport(err)
    if type(err).__module__.partition(".")[0] not in _SDK_PACKAGES:
        # Unknown failures may be transient; the retry policy's attempt limit bounds the cost.
        return ApplicationError(f"{provider} call failed: {err!r}", type="ProviderError")
    import anthropic
    import openai

    if isinstance(err, (anthropic.APIStatusError, openai.APIStatusError)):
        return _from_status(err)
    if isinstance(err, (anthropic.APITimeoutError, openai.APITimeoutError)):
        return ApplicationError(
            f"{provider} request timed out: {err.message}", type="ProviderTimeout"
        )
    if isinstance(err, (anthropic.APIConnectionError, openai.APIConnectionError)):
        cause = f" ({err.__cause__!r})" if err.__cause__ is not None else ""
        return ApplicationError(
            f"{provider} connection failed: {err.message}{cause}", type="ProviderConnectionError"
        )
    # Unknown failures may be transient; the retry policy's attempt limit bounds the cost.
    return ApplicationError(f"{provider} call failed: {err!r}", type="ProviderError")


def _from_transport(err: BaseException) -> ApplicationError:
    """An ``httpx`` error raised while a streamed body was being read (by class name: the
    anthropic SDK ships its own copy of httpx, ``httpx2``)."""
    bases = {cls.__name__ for cls in type(err).__mro__}
    if "TimeoutException" in bases:
        return ApplicationError(f"stream timed out: {err!r}", type="ProviderTimeout")
    if "TransportError" in bases:
        return ApplicationError(
            f"connection failed mid-stream: {err!r}", type="ProviderConnectionError"
        )
    return ApplicationError(f"provider call failed: {err!r}", type="ProviderError")


def _from_status(err: anthropic.APIStatusError | openai.APIStatusError) -> ApplicationError:
    status = err.status_code
    message = f"{_provider_of(err)} returned {status}: {_provider_message(err)}"
    if status < 400:
        # An error event inside a stream whose response was a 200: its type says what it is.
        kind = _stream_error_type(err)
        message = f"{_provider_of(err)} stream failed ({kind}): {_provider_message(err)}"
        if kind in _STREAM_ERROR_TYPES:
            return ApplicationError(message, type=_STREAM_ERROR_TYPES[kind])
        if kind in _STREAM_REQUEST_ERRORS:
            return ApplicationError(message, type="ProviderBadRequest", non_retryable=True)
        return ApplicationError(message, type="ProviderError")
    if status in _RETRYABLE_STATUS_TYPES or status >= 500:
        return ApplicationError(
            message,
            type=_RETRYABLE_STATUS_TYPES.get(status, "ProviderServerError"),
            next_retry_delay=retry_after(err.response.headers),
        )
    kind = "ProviderAuthError" if status in (401, 403) else "ProviderBadRequest"
    return ApplicationError(message, type=kind, non_retryable=True)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> timedelta | None:
    """The delay a response asks for, from ``retry-after-ms`` or ``Retry-After``.

    Args:
        headers: Response headers: the SDK's case-insensitive headers, or a plain mapping with
            lower-case names.
        now: Reference time for an HTTP-date ``Retry-After``; the current time by default.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return _non_negative(timedelta(milliseconds=float(millis)))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _non_negative(timedelta(seconds=float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _non_negative(when - (now or datetime.now(UTC)))


def _non_negative(delay: timedelta) -> timedelta:
    return max(delay, timedelta(0))


def _provider_of(err: BaseException) -> str:
    module = type(err).__module__.partition(".")[0]
    return module if module in ("anthropic", "openai") else "provider"


def _stream_error_type(err: anthropic.APIStatusError | openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("type"), str):
            return str(error["type"])
    return "unknown"


def _provider_message(err: anthropic.APIStatusError | openai.APIStatusError) -> str:
    # The SDKs' own messages embed the whole body ("Error code: 400 - {...}"); prefer the
    # provider's human-readable text. Anthropic keeps the full body, OpenAI only its "error".
    body = err.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    if isinstance(body, str) and body:
        return body
    return err.message
