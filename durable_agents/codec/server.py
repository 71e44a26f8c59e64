"""Run the codec server for the Web UI and the ``temporal`` CLI.

Usage::

    DURABLE_AGENTS_CODEC_TOKEN=... python -m durable_agents.codec.server --port 8081

Options: ``--host`` (default 127.0.0.1), ``--token`` (or ``DURABLE_AGENTS_CODEC_TOKEN``; the
variable keeps the token out of the process list), ``--origin`` (repeatable; default
http://localhost:8233), ``--namespace`` (repeatable; default ``$TEMPORAL_NAMESPACE`` or
``default``), ``--insecure-no-auth`` (no token; a warning is printed). It reads the payload
store (``PAYLOAD_STORE`` ...) and the keys (``DURABLE_AGENTS_CODEC_KEYS`` or
``DURABLE_AGENTS_CODEC_KEY_FILE``) from the environment, as the workers do: it resolves stored
payloads, decrypts, or both. The embedded dev server starts one by itself (``runtime.codecserver``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping, Sequence

import uvicorn

from durable_agents.codec._converter import codec_from_env
from durable_agents.codec._errors import KeyRingError
from durable_agents.codec._keys import KEY_FILE_ENV, KEYS_ENV
from durable_agents.codec._server import (
    DEFAULT_ORIGINS,
    LOOPBACK_HOSTS,
    TOKEN_ENV,
    create_app,
    is_loopback,
)
from durable_agents.payload_storage import storage_from_env


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse arguments, check keys and token, then serve until interrupted."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m durable_agents.codec.server",
        description="Codec server: /encode, /decode and /download for the Temporal Web UI and CLI.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081; 0: any)")
    parser.add_argument("--token", help=f"bearer token clients must send (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--origin",
        action="append",
        dest="origins",
        metavar="ORIGIN",
        help=f"browser origin allowed by CORS, repeatable (default {DEFAULT_ORIGINS[0]})",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="namespace served, repeatable (default $TEMPORAL_NAMESPACE or 'default')",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without a token: anyone who can reach the server can decrypt payloads",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = parser.parse_args(argv)

    token: str | None = args.token or env.get(TOKEN_ENV, "").strip() or None
    if token is not None and args.insecure_no_auth:
        parser.error(f"--insecure-no-auth was given, but so was a token (--token or {TOKEN_ENV})")
    if token is None and not args.insecure_no_auth:
        parser.error(
            f"refusing to start without a token: pass --token or set {TOKEN_ENV} "
            "(or --insecure-no-auth, for a loopback-only development setup)"
        )
    try:
        codec = codec_from_env(env)
        storage = storage_from_env(env)
    except (KeyRingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if codec is None and storage is None:
        print(
            f"error: nothing to decode: no keys ({KEYS_ENV} or {KEY_FILE_ENV}) and "
            "PAYLOAD_STORE=off",
            file=sys.stderr,
        )
        return 2
    namespaces = tuple(args.namespaces or (env.get("TEMPORAL_NAMESPACE") or "default",))

    origins = tuple(args.origins or DEFAULT_ORIGINS)
    loopback = is_loopback(args.host)
    app = create_app(
        codec,
        storage=storage,
        token=token,
        origins=origins,
        allowed_hosts=LOOPBACK_HOSTS if loopback else None,
        namespaces=namespaces,
        insecure_no_auth=args.insecure_no_auth,
    )
    # Bound here rather than by uvicorn, so --port 0 works and the real address is printed.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.create_server((args.host, args.port), family=family)
    port = sock.getsockname()[1]
    url = f"http://{f'[{args.host}]' if family == socket.AF_INET6 else args.host}:{port}"
    if args.insecure_no_auth:
        print(
            f"WARNING: codec server running WITHOUT authentication: anyone who can reach {url} "
            "can decrypt every payload."
            + ("" if loopback else " It is not bound to loopback; use a token."),
            file=sys.stderr,
        )
    keys = (
        f"keys: {', '.join(codec.keys.ids)}; encrypting with {codec.keys.newest_id}"
        if codec is not None
        else "no encryption keys"
    )
    store = ", ".join(d.name() for d in storage.drivers) if storage is not None else "none"
    print(
        f"codec server listening on {url} ({keys}; payload store: {store}; "
        f"namespaces: {', '.join(namespaces)}; CORS origins: {', '.join(origins)})",
        file=sys.stderr,
        flush=True,
    )
    # No access log: the Web UI's endpoint carries the token in its path (/t/<token>/decode).
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
