"""Provider rate limits, enforced by Temporal rather than by a limiter of our own.

A provider with a limit in the environment (``ANTHROPIC_REQUESTS_PER_MINUTE``, ...) gets its own
task queue, ``<task queue>-model-<provider>``. Runs send that provider's ``call_model``
activities there (``WorkerSettings.model_task_queues``, recorded by ``load_agent``), and every
worker polls it with ``max_task_queue_activities_per_second``: the *server* then dispatches no
more than that many model calls a second, however many workers poll. See ``docs/rate-limits.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

REQUESTS_PER_MINUTE_ENV = {
    "anthropic": "ANTHROPIC_REQUESTS_PER_MINUTE",
    "openai": "OPENAI_REQUESTS_PER_MINUTE",
    "compatible": "COMPATIBLE_REQUESTS_PER_MINUTE",
}
"""Provider -> the environment variable holding its limit, in requests per minute."""


def model_task_queue(task_queue: str, provider: str) -> str:
    """The queue ``provider``'s model calls go to when it has a limit."""
    return f"{task_queue}-model-{provider}"


@dataclass(frozen=True)
class ProviderRateLimit:
    """One provider's queue-wide limit on model calls."""

    provider: str
    """``anthropic``, ``openai`` or ``compatible``."""
    requests_per_minute: float
    """Model calls (attempts included: a retry is a new activity task) the server dispatches
    per minute from ``task_queue``, across every worker polling it."""
    task_queue: str
    """The provider's own queue: ``model_task_queue(<run's queue>, provider)``."""

    @property
    def activities_per_second(self) -> float:
        """The value for the ``Worker`` option ``max_task_queue_activities_per_second``."""
        return self.requests_per_minute / 60


def rate_limits_from_env(
    task_queue: str,
    providers: Iterable[str],
    environ: Mapping[str, str] | None = None,
) -> list[ProviderRateLimit]:
    """The limits set for the worker's ``providers``; providers without one get none.

    Raises:
        ValueError: A limit is not a positive number (the message names the variable).
    """
    env = os.environ if environ is None else environ
    limits = []
    for provider in providers:
        name = REQUESTS_PER_MINUTE_ENV.get(provider)
        raw = env.get(name, "").strip() if name else ""
        if not name or not raw:
            continue
        try:
            per_minute = float(raw)
        except ValueError:
            per_minute = math.nan
        if not math.isfinite(per_minute) or per_minute <= 0:
            raise ValueError(f"{name}={raw!r}: expected a positive number of requests per minute")
        limits.append(
            ProviderRateLimit(provider, per_minute, model_task_queue(task_queue, provider))
        )
    return limits
