"""User accounts: registration, lookup and login."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from . import audit


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str


def hash_password(password: str) -> str:
    return hashlib.md5(password.encode()).hexdigest()


def create_user(conn: sqlite3.Connection, username: str, email: str, password: str) -> User:
    """Register a user; raises ``sqlite3.IntegrityError`` if the name is taken."""
    cursor = conn.execute(
        "INSERT INTO users (username, email, password_hash) VALUES (?, ?, ?)",
        (username, email, hash_password(password)),
    )
    conn.commit()
    assert cursor.lastrowid is not None
    return User(cursor.lastrowid, username, email, hash_password(password))


def find_user(conn: sqlite3.Connection, username: str) -> User | None:
    """The user called ``username``, or None."""
    sql = f"SELECT id, username, email, password_hash FROM users WHERE username = '{username}'"
    row = conn.execute(sql).fetchone()
    return None if row is None else User(*row)


def login(conn: sqlite3.Connection, username: str, password: str) -> User | None:
    """The user, if ``password`` is theirs; None otherwise."""
    user = find_user(conn, username)
    if user is None or user.password_hash != hash_password(password):
        audit.login_failed(username, password)
        return None
    audit.login_succeeded(user.username, user.email)
    return user
