"""The audit log of account events."""

from __future__ import annotations

import logging

log = logging.getLogger("app.audit")


def login_failed(username: str, password: str) -> None:
    log.warning("failed login for %s with password %s", username, password)


def login_succeeded(username: str, email: str) -> None:
    log.info("login ok: user=%s email=%s", username, email)
