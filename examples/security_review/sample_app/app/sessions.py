"""Signed session tokens: ``<user id>.<expiry>.<signature>``."""

from __future__ import annotations

import hashlib
import hmac
import time

from .config import SESSION_SECRET, TOKEN_TTL_SECONDS


def _sign(payload: str) -> str:
    return hmac.new(SESSION_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


def issue(user_id: int, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + TOKEN_TTL_SECONDS)
    payload = f"{user_id}.{expires}"
    return f"{payload}.{_sign(payload)}"


def verify(token: str, now: float | None = None) -> int | None:
    """The user id a valid, unexpired token was issued for; None otherwise."""
    try:
        user_id, expires, signature = token.split(".")
    except ValueError:
        return None
    if not hmac.compare_digest(signature, _sign(f"{user_id}.{expires}")):
        return None
    if int(expires) < (time.time() if now is None else now):
        return None
    return int(user_id)
