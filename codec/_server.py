"""A Temporal codec server: lets the Web UI and the ``temporal`` CLI show encrypted payloads.

Protocol (the one the Web UI and CLI speak): ``POST /encode`` and ``POST /decode`` (also under
a namespace segment, ``/{namespace}/decode``) take and return ``{"payloads": [...]}``, each
payload a protobuf-JSON ``temporal.api.common.v1.Payload`` (metadata values and data base64).
One key ring serves every namespace. The browser calls the server directly, so it answers CORS
preflights, for the configured origins only.

Anyone who can call ``/decode`` can read every payload, so each POST must carry
``Authorization: Bearer <token>`` unless the app is explicitly built without authentication.
When bound to a loopback address the server also requires a loopback ``Host`` header, so a web
page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Collection, Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from codec._errors import DecryptionError

DEFAULT_ORIGINS: tuple[str, ...] = ("http://localhost:8233",)
"""Where the Web UI of ``temporal server start-dev`` is served from."""

TOKEN_ENV = "DURABLE_AGENTS_CODEC_TOKEN"
"""Environment variable holding the bearer token clients must present."""

LOOPBACK_HOSTS: frozenset[str] = frozenset({"localhost", "127.0.0.1", "::1"})
"""``Host`` names accepted when the server is bound to a loopback address."""

ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Namespace")
"""Request headers the Web UI sends (``X-Namespace`` names the namespace being viewed)."""

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or host name) is the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(
    codec: PayloadCodec,
    *,
    token: str | None,
    origins: Collection[str] = DEFAULT_ORIGINS,
    allowed_hosts: Collection[str] | None = None,
    insecure_no_auth: bool = False,
) -> Starlette:
    """The codec server as an ASGI app (serve it with uvicorn).

    Args:
        codec: The codec whose ``encode``/``decode`` the endpoints expose.
        token: The bearer token every POST must present (compared in constant time).
        origins: Browser origins allowed to call the server (CORS, with credentials).
        allowed_hosts: ``Host`` header names to accept; ``None`` accepts any. Pass
            ``LOOPBACK_HOSTS`` when bound to loopback.
        insecure_no_auth: Must be True for ``token=None``: anyone who reaches the server can
            then decrypt payloads.

    Raises:
        ValueError: No token and ``insecure_no_auth`` not set, or an empty token.
    """
    if token is None and not insecure_no_auth:
        raise ValueError("a codec server needs a token unless insecure_no_auth=True")
    if token is not None and not token.strip():
        raise ValueError("the codec server token is empty")
    expected = token.strip().encode() if token is not None else None
    hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None

    def refusal(request: Request) -> Response | None:
        if hosts is not None and (request.url.hostname or "").lower() not in hosts:
            return _error(400, f"Host {request.headers.get('host', '')!r} is not allowed")
        if expected is None:
            return None
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _error(401, "missing 'Authorization: Bearer <token>' header")
        if not hmac.compare_digest(presented.strip().encode(), expected):
            return _error(401, "invalid bearer token")
        return None

    def endpoint(transform: Transform) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            refused = refusal(request)
            if refused is not None:
                return refused
            return await _transform_body(await request.body(), transform)

        return handle

    return Starlette(
        # Also under a namespace segment, for ``--codec-endpoint 'http://host:port/{namespace}'``.
        routes=[
            Route(path, endpoint(transform), methods=["POST"])
            for name, transform in (("encode", codec.encode), ("decode", codec.decode))
            for path in (f"/{name}", f"/{{namespace}}/{name}")
        ],
        middleware=[
            # Outermost, so preflights (which carry no token) and 401s get CORS headers.
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_methods=["POST"],
                allow_headers=list(ALLOWED_HEADERS),
                allow_credentials=True,
                # A UI served from a LAN address calling a loopback codec server makes Chrome
                # send a private-network preflight; still only for the allowed origins.
                allow_private_network=True,
            )
        ],
    )


async def _transform_body(body: bytes, transform: Transform) -> Response:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return _error(400, f"request body is not valid JSON: {error}")
    if not isinstance(document, dict):
        return _error(400, 'request body must be a JSON object {"payloads": [...]}')
    payloads = Payloads()
    try:
        json_format.ParseDict(document, payloads)
    except json_format.ParseError as error:
        return _error(400, f'request body is not {{"payloads": [Payload, ...]}}: {error}')
    try:
        result = await transform(payloads.payloads)
    except DecryptionError as error:
        return _error(400, str(error))
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in result]})


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)
