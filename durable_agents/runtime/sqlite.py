"""SQLite habits shared by the inventory and the effects ledger."""

from __future__ import annotations

import sqlite3
import time


def enable_wal(conn: sqlite3.Connection, timeout_ms: int) -> None:
    """Switch ``conn``'s database to WAL, so readers run while a writer holds the lock.

    Switching a new file needs an exclusive lock, and SQLite may report "locked" without waiting
    when several processes open a fresh file at once, so this retries for up to ``timeout_ms``.
    The mode is persistent: later connections find it set.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
