"""Exactly-once side effects for tools: the effects ledger (see ``effects.ledger``)."""

from durable_agents.effects.ledger import (
    DEFAULT_LEASE,
    EffectInProgress,
    EffectLedger,
    EffectLedgerError,
    EffectState,
    EffectTransaction,
    LedgerOutcome,
    PostgresEffectLedger,
    SqliteEffectLedger,
    SqliteEffectTransaction,
    ledger_from_env,
)

__all__ = [
    "DEFAULT_LEASE",
    "EffectInProgress",
    "EffectLedger",
    "EffectLedgerError",
    "EffectState",
    "EffectTransaction",
    "LedgerOutcome",
    "PostgresEffectLedger",
    "SqliteEffectLedger",
    "SqliteEffectTransaction",
    "ledger_from_env",
]
