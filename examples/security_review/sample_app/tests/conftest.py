"""Fixtures of the sample app's tests: a fresh in-memory database with two users."""

# mypy: disable-error-code="import-not-found"
# (The repository's mypy sees these tests from outside the app; pytest.ini puts `app` on the path.)

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from app import db as database
from app.users import create_user


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = database.connect(":memory:")
    create_user(conn, "alice", "alice@example.com", "correct horse battery")
    create_user(conn, "bob", "bob@example.com", "hunter2hunter2")
    try:
        yield conn
    finally:
        conn.close()
