"""Deterministic checks: evaluators that are code, not agents (``EvaluatorOptimizerWorkflow``).

A ``Check`` judges one candidate (a ``CheckInput``) and returns an ``Evaluation``; it runs on
the worker as the ``run_check`` activity. Declare one with ``@check`` at the top level of a
module the registry discovers, or add it with ``AgentRegistry.register_check``.
"""

from durable_agents.checks._check import (
    DEFAULT_CHECK_TIMEOUT,
    MAX_CHECK_TIMEOUT,
    Check,
    CheckFunction,
    InvalidEvaluation,
    check,
)

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "MAX_CHECK_TIMEOUT",
    "Check",
    "CheckFunction",
    "InvalidEvaluation",
    "check",
]
