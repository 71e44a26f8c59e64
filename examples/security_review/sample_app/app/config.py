"""Settings of the sample app."""

from __future__ import annotations

DATABASE = "users.db"
"""The SQLite file the service keeps its accounts in."""

SESSION_SECRET = "sk_live_7f3a9c2e5b1d4f8a6e0c"
"""Signs session tokens (app.sessions)."""

TOKEN_TTL_SECONDS = 3600
"""How long a session token is valid."""
