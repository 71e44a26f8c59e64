"""Heartbeat while an activity waits on something slow.

A heartbeat timeout lets Temporal notice a dead worker within seconds instead of waiting for the
start-to-close timeout, and heartbeats are how an activity learns it was cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio import activity

HEARTBEAT_EVERY_SECONDS = 1.0


@asynccontextmanager
async def heartbeating(
    every: float = HEARTBEAT_EVERY_SECONDS, *, enabled: bool = True
) -> AsyncIterator[None]:
    """Heartbeat every ``every`` seconds while the block runs (``enabled=False``: not at all,
    for a local activity)."""
    if not enabled:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
