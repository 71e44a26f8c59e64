"""The accounts database: one SQLite table."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL
)
"""


def connect(path: str) -> sqlite3.Connection:
    """Open (and if needed create) the accounts database at ``path`` (":memory:" works)."""
    conn = sqlite3.connect(path)
    conn.execute(SCHEMA)
    return conn
