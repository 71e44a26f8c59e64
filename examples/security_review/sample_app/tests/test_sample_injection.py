"""User input is data, never SQL: fails on the vulnerable ``find_user`` (string-formatted SQL),
passes once its query is parameterized."""

# mypy: disable-error-code="import-not-found"
# (The repository's mypy sees these tests from outside the app; pytest.ini puts `app` on the path.)

from __future__ import annotations

import sqlite3

import pytest
from app.users import create_user, find_user

PAYLOADS = {
    "always-true": "' OR '1'='1",
    "comment-out": "nobody' OR 1=1 --",
    "backslash-escape": "\\' OR 1=1 --",
    "union-select": "x' UNION SELECT 1, 'admin', email, password_hash FROM users --",
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_find_user_treats_input_as_data(db: sqlite3.Connection, payload: str) -> None:
    found = find_user(db, payload)
    assert found is None, f"payload {payload!r} returned {found!r}"


def test_usernames_with_quotes_round_trip(db: sqlite3.Connection) -> None:
    create_user(db, "o'brien", "ob@example.com", "shamrock shamrock")
    found = find_user(db, "o'brien")
    assert found is not None and found.username == "o'brien"
