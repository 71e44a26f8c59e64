"""What a workflow uses to run agents: approvals, idempotency keys, timeouts and retry policies,
and reading raw input, signals and updates. Sandbox-safe: no I/O at import."""
