"""A Temporal codec server: lets the Web UI and the ``temporal`` CLI show encrypted and
externally stored payloads.

Protocol (the one the Web UI and CLI speak): ``POST /encode``, ``POST /decode`` and
``POST /download`` take and return ``{"payloads": [...]}``, each payload a protobuf-JSON
``temporal.api.common.v1.Payload`` (metadata values and data base64).

- ``/decode`` resolves external-storage references (fetches the stored payload from the same
  store the workers use) and then decrypts, mirroring the SDK's own inbound path. The Web UI
  asks it to keep references (``?preserveStorageRefs=true``, so it can fetch big payloads only on
  a click); this server resolves them anyway, because a reference tells a reader nothing.
- ``/download`` takes references only (the Web UI's download button) and returns them resolved
  and decrypted.
- ``/encode`` encrypts (payloads the UI sends, such as a signal's input); without keys it
  returns them unchanged.

The browser calls the server directly, so it answers CORS preflights, for the configured
origins only. Anyone who can call ``/decode`` can read every payload, so each POST must carry
``Authorization: Bearer <token>``, or the token as a path prefix (``/t/<token>/decode``: the
Web UI of a local dev server has no login and cannot send a header, so its endpoint is that
capability URL); unless the app is explicitly built without authentication. When bound to a
loopback address the server also requires a loopback ``Host`` header, so a web page cannot
reach it through DNS rebinding. Requests naming a namespace (``X-Namespace``, or a
``/{namespace}/decode`` path segment) are refused unless it is one this server serves.
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
from temporalio.converter import DataConverter, ExternalStorage, PayloadCodec

from durable_agents.codec._errors import DecryptionError

DEFAULT_ORIGINS: tuple[str, ...] = ("http://localhost:8233",)
"""Where the Web UI of ``temporal server start-dev`` is served from."""

TOKEN_ENV = "DURABLE_AGENTS_CODEC_TOKEN"
"""Environment variable holding the bearer token clients must present."""

LOOPBACK_HOSTS: frozenset[str] = frozenset({"localhost", "127.0.0.1", "::1"})
"""``Host`` names accepted when the server is bound to a loopback address."""

ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Namespace")
"""Request headers the Web UI sends (``X-Namespace`` names the namespace being viewed)."""

OPERATIONS = ("encode", "decode", "download")
"""The endpoints, each also under ``/{namespace}/`` and ``/t/{token}/``."""

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class RequestError(Exception):
    """A request this server cannot serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PayloadReader:
    """The SDK's inbound and outbound payload paths, outside a client or worker.

    Args:
        codec: The payload codec (encryption), if any.
        storage: The external storage the workers write to, if any.
    """

    def __init__(self, codec: PayloadCodec | None, storage: ExternalStorage | None) -> None:
        # Only the codec and storage stages are used, so the payload converter does not matter.
        self._converter = DataConverter(payload_codec=codec, external_storage=storage)
        self._storage = storage

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt (never offload: what the UI sends is small and goes straight to history)."""
        return await self._converter._encode_payload_sequence(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Resolve references, then decrypt: what a worker's data converter does on the way in."""
        converter = self._converter
        try:
            resolved = await converter._decode_reference_payload_sequence(payloads)
            resolved = await converter._external_retrieve_payload_sequence(resolved)
        except (RuntimeError, ValueError, OSError) as error:
            # TMPRL1105 (no storage configured), an unknown driver, a missing or corrupt file.
            raise RequestError(422, f"cannot resolve a stored payload: {error}") from error
        return await converter._decode_payload_sequence(resolved)

    async def download(self, payloads: Sequence[Payload]) -> list[Payload]:
        """``decode``, for storage references only (the Web UI's download button)."""
        if self._storage is None:
            raise RequestError(422, "this codec server has no payload store configured")
        if not all(self._storage._decode_reference(p) is not None for p in payloads):
            raise RequestError(400, "/download takes external storage references only")
        return await self.decode(payloads)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or host name) is the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(
    codec: PayloadCodec | None = None,
    *,
    storage: ExternalStorage | None = None,
    token: str | None,
    origins: Collection[str] = DEFAULT_ORIGINS,
    allowed_hosts: Collection[str] | None = None,
    namespaces: Collection[str] | None = None,
    insecure_no_auth: bool = False,
) -> Starlette:
    """The codec server as an ASGI app (serve it with uvicorn).

    Args:
        codec: The codec whose ``encode``/``decode`` the endpoints expose (encryption).
        storage: The external storage whose references ``/decode`` and ``/download`` resolve:
            the same store the workers write to.
        token: The bearer token every POST must present (compared in constant time), in the
            ``Authorization`` header or as the ``/t/<token>/`` path prefix.
        origins: Browser origins allowed to call the server (CORS, with credentials).
        allowed_hosts: ``Host`` header names to accept; ``None`` accepts any. Pass
            ``LOOPBACK_HOSTS`` when bound to loopback.
        namespaces: The namespaces served; a request naming another is refused with 403.
            ``None`` serves any.
        insecure_no_auth: Must be True for ``token=None``: anyone who reaches the server can
            then read payloads.

    Raises:
        ValueError: Neither a codec nor storage; no token and ``insecure_no_auth`` not set; an
            empty token.
    """
    if codec is None and storage is None:
        raise ValueError("a codec server needs a codec, external storage or both")
    if token is None and not insecure_no_auth:
        raise ValueError("a codec server needs a token unless insecure_no_auth=True")
    if token is not None and not token.strip():
        raise ValueError("the codec server token is empty")
    expected = token.strip().encode() if token is not None else None
    hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None
    served = frozenset(namespaces) if namespaces is not None else None
    reader = PayloadReader(codec, storage)
    transforms: dict[str, Transform] = {
        "encode": reader.encode,
        "decode": reader.decode,
        "download": reader.download,
    }

    def refusal(request: Request) -> Response | None:
        if hosts is not None and (request.url.hostname or "").lower() not in hosts:
            return _error(400, f"Host {request.headers.get('host', '')!r} is not allowed")
        for namespace in (request.path_params.get("namespace"), request.headers.get("x-namespace")):
            if served is not None and namespace and namespace not in served:
                return _error(403, f"namespace {namespace!r} is not served by this codec server")
        if expected is None:
            return None
        in_path = request.path_params.get("token")
        if in_path is not None:
            presented = str(in_path)
        else:
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
        # Also under a namespace segment, for ``--codec-endpoint 'http://host:port/{namespace}'``,
        # and under the token, for the Web UI of a dev server (which cannot send a header).
        routes=[
            Route(path, endpoint(transforms[name]), methods=["POST"])
            for name in OPERATIONS
            for path in (f"/{name}", f"/{{namespace}}/{name}", f"/t/{{token}}/{name}")
        ]
        + [Route("/healthz", _health, methods=["GET"])],
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
    except RequestError as error:
        return _error(error.status, str(error))
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in result]})


HEALTH_SERVICE = "durable-agents codec server"
"""What ``GET /healthz`` names, so a starter can tell this server from another on its port."""


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "service": HEALTH_SERVICE})


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)
