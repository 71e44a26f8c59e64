"""What the service does for ordinary users (passes before and after the security fix)."""

# mypy: disable-error-code="import-not-found"
# (The repository's mypy sees these tests from outside the app; pytest.ini puts `app` on the path.)

from __future__ import annotations

import sqlite3

import pytest
from app import sessions
from app.users import create_user, find_user, login


def test_find_user_returns_the_named_user(db: sqlite3.Connection) -> None:
    user = find_user(db, "alice")
    assert user is not None
    assert (user.username, user.email) == ("alice", "alice@example.com")


def test_find_user_returns_none_for_a_stranger(db: sqlite3.Connection) -> None:
    assert find_user(db, "mallory") is None


def test_login_needs_the_right_password(db: sqlite3.Connection) -> None:
    user = login(db, "bob", "hunter2hunter2")
    assert user is not None and user.username == "bob"
    assert login(db, "bob", "wrong") is None
    assert login(db, "nobody", "hunter2hunter2") is None


def test_usernames_are_unique(db: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        create_user(db, "alice", "other@example.com", "whatever")


def test_session_tokens_round_trip_and_expire() -> None:
    token = sessions.issue(7, now=1_000)
    assert sessions.verify(token, now=1_001) == 7
    assert sessions.verify(token, now=1_000_000) is None
    assert sessions.verify(token.replace(".", ".9", 1), now=1_001) is None
