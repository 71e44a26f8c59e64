"""The worker: the one place that wires workflows and activities to the task queue (through
``durable_agents.plugin.AgentsPlugin``, which any worker can use), and model calls of a
rate-limited provider to that provider's own queue (``durable_agents.runtime.rate_limits``).

Run ``python worker.py``. With ``TEMPORAL_ADDRESS`` unset it uses (and if needed starts) the
embedded dev server. SIGINT/SIGTERM stop polling, let running activities finish for up to
``GRACEFUL_SHUTDOWN`` and exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import timedelta
from types import TracebackType

from temporalio.client import Client
from temporalio.worker import Worker

from activities.model import ModelActivities
from activities.providers.base import ModelProvider
from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry, default_registry
from durable_agents.effects import EffectLedger
from durable_agents.mcp_tools import McpServer
from durable_agents.payload_storage import close_storage
from durable_agents.plugin import AgentsPlugin
from durable_agents.runtime.client import connect
from durable_agents.runtime.deployment import WorkerDeployment, set_current_version, worker_options
from durable_agents.runtime.rate_limits import ProviderRateLimit, rate_limits_from_env
from durable_agents.runtime.search_attributes import ensure_agent_status_attribute
from durable_agents.runtime.settings import TemporalSettings
from examples import AGENT_MODULES

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
MAX_CONCURRENT_ACTIVITIES = 1_000
"""Activities one worker runs at once. Agent activities mostly wait (on a model API, on a tool's
server), so the SDK's default of 100 would cap a worker at 100 agents mid-call; override with
``WORKER_MAX_CONCURRENT_ACTIVITIES``."""
CONNECT_PATIENCE = timedelta(minutes=2)
"""How long a starting worker keeps trying to reach Temporal (a server restarting, a worker
started first) before it gives up."""
TOOL_THREADS = 64
"""Threads for sync tools (``asyncio.to_thread``); the default pool has ``cpu_count + 4``."""

log = logging.getLogger("durable_agents.worker")


def providers_from_env(registry: AgentRegistry) -> dict[str, ModelProvider]:
    """Provider clients, built once per worker; a provider is present when its key is set.

    A provider's SDK is imported only when the environment configures it: ``anthropic`` and
    ``openai`` take seconds to import on a small machine, and a worker restarted after a crash
    resumes its runs only once it polls."""
    providers: dict[str, ModelProvider] = {"scripted": ScriptedProvider.from_env(registry)}
    configured: list[ModelProvider | None] = []
    if os.environ.get("ANTHROPIC_API_KEY"):
        from activities.providers.anthropic_provider import AnthropicProvider

        configured.append(AnthropicProvider.from_env())
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_COMPATIBLE_BASE_URL"):
        from activities.providers.openai_provider import OpenAIProvider

        configured += [OpenAIProvider.from_env(), OpenAIProvider.compatible_from_env()]
    for provider in configured:
        if provider is not None:
            providers[provider.name] = provider
    return providers


class AgentWorkers:
    """The agent worker and one model worker per rate-limited provider, started and stopped
    together: ``async with build_worker(...):`` serves the task queue and the providers' queues.
    """

    def __init__(self, agents: Worker, model_workers: Sequence[Worker] = ()) -> None:
        self.agents = agents
        """Polls the run's task queue: workflows and every activity."""
        self.model_workers = tuple(model_workers)
        """Each polls one provider's queue, with only ``call_model`` and the queue's limit."""
        self._running: AsyncExitStack | None = None

    @property
    def workers(self) -> tuple[Worker, ...]:
        return (*self.model_workers, self.agents)

    async def __aenter__(self) -> AgentWorkers:
        async with AsyncExitStack() as stack:  # a worker that fails to start stops the others
            for worker in self.workers:
                await stack.enter_async_context(worker)
            self._running = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._running is None:
            raise RuntimeError("AgentWorkers were never started")
        running, self._running = self._running, None
        await self.shutdown()  # all at once: each may wait GRACEFUL_SHUTDOWN for its activities
        await running.__aexit__(exc_type, exc, tb)

    async def shutdown(self) -> None:
        """Stop polling and wait for running activities (up to ``GRACEFUL_SHUTDOWN``)."""
        await asyncio.gather(*(worker.shutdown() for worker in self.workers))


def build_worker(
    client: Client,
    task_queue: str,
    *,
    registry: AgentRegistry | None = None,
    providers: Mapping[str, ModelProvider] | None = None,
    ledger: EffectLedger | None = None,
    mcp_servers: Mapping[str, McpServer] | None = None,
    status_search_attribute: bool = False,
    max_concurrent_activities: int = MAX_CONCURRENT_ACTIVITIES,
    workflows: Sequence[type] = (),
    rate_limits: Sequence[ProviderRateLimit] | None = None,
    deployment: WorkerDeployment | None = None,
) -> AgentWorkers:
    """The workers for ``task_queue``: use as ``async with build_worker(...):``.

    Args:
        registry: The agents served; default: those discovered under ``agents/``.
        providers: Model providers by name; default: from the environment's API keys.
        ledger: The effects ledger for side-effecting tools; default: ``ledger_from_env()``.
        mcp_servers: MCP servers agents may use; default: ``servers_from_env()``.
        status_search_attribute: Runs keep the ``AgentStatus`` search attribute current; only
            pass True once ``ensure_agent_status_attribute`` confirmed the server has it.
        workflows: Your own workflows (``AgentHost``) to serve next to ``AgentWorkflow``.
        rate_limits: Providers whose model calls go to their own queue, rate-limited by the
            server; default: ``<PROVIDER>_REQUESTS_PER_MINUTE`` from the environment.
        deployment: Poll as this worker deployment build, runs pinned to it
            (``runtime.deployment``); default None: unversioned.
    """
    registry = registry or default_registry(AGENT_MODULES)
    providers = providers if providers is not None else providers_from_env(registry)
    if rate_limits is None:
        rate_limits = rate_limits_from_env(task_queue, providers)
    plugin = AgentsPlugin(
        registry=registry,
        providers=providers,
        ledger=ledger,
        mcp_servers=mcp_servers,
        status_search_attribute=status_search_attribute,
        data_converter=client.data_converter,
        model_task_queues={limit.provider: limit.task_queue for limit in rate_limits},
    )
    agents = Worker(
        client,
        task_queue=task_queue,
        plugins=[plugin],
        workflows=list(workflows),
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_concurrent_activities=max_concurrent_activities,
        **worker_options(deployment),
    )
    call_model = ModelActivities(providers).call_model
    model_workers = [
        Worker(
            client,
            task_queue=limit.task_queue,
            activities=[call_model],
            # Enforced by the server for the whole queue, whichever workers poll it; every
            # worker must set the same value (the last poller's wins).
            max_task_queue_activities_per_second=limit.activities_per_second,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            max_concurrent_activities=max_concurrent_activities,
            # The same build as the agent worker: a pinned run's model calls stay on its build.
            deployment_config=deployment.worker_config() if deployment else None,
        )
        for limit in rate_limits
    ]
    return AgentWorkers(agents, model_workers)


def example_workflows() -> list[type]:
    """The example workflows ``python worker.py`` serves next to the shipped ones (and
    ``starter.py replay-check`` replays)."""
    from examples.bill_review import BillReview
    from examples.security_review.workflow import SecurityReviewWorkflow

    return [BillReview, SecurityReviewWorkflow]


async def connect_patiently(settings: TemporalSettings) -> Client:
    """``connect``, retried with backoff for up to ``CONNECT_PATIENCE``."""
    deadline = time.monotonic() + CONNECT_PATIENCE.total_seconds()
    delay = 0.5
    while True:
        try:
            return await connect(settings)
        except RuntimeError as err:  # the SDK's "Failed client connect: ..."
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "cannot reach Temporal at %s (%s); retrying in %.1f s", settings.address, err, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = TemporalSettings.from_env()
    deployment = WorkerDeployment.from_env()
    client = await connect_patiently(settings)
    workers = build_worker(
        client,
        settings.task_queue,
        workflows=example_workflows(),
        deployment=deployment,
        status_search_attribute=await ensure_agent_status_attribute(client),
        max_concurrent_activities=int(
            os.environ.get("WORKER_MAX_CONCURRENT_ACTIVITIES", MAX_CONCURRENT_ACTIVITIES)
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(TOOL_THREADS, thread_name_prefix="tool"))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with workers:
        log.info(
            "worker polling task queue %r on %s (namespace %r); Ctrl-C to stop",
            settings.task_queue,
            settings.address,
            settings.namespace,
        )
        if deployment is not None:
            if deployment.set_current:
                await set_current_version(client, deployment.version)
            log.info(
                "worker deployment %r build %r%s; runs stay on the build they started on",
                deployment.version.deployment_name,
                deployment.version.build_id,
                " (now current)" if deployment.set_current else "",
            )
        for model_worker in workers.model_workers:
            per_second = model_worker.config().get("max_task_queue_activities_per_second") or 0
            log.info(
                "model calls limited to %g a minute on task queue %r",
                per_second * 60,
                model_worker.task_queue,
            )
        await stop.wait()
        log.info("shutting down: waiting up to %s for running activities", GRACEFUL_SHUTDOWN)
    await close_storage(client.data_converter.external_storage)
    log.info("worker stopped")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as err:
        log.error("worker failed: %s", err)
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter teardown: the SDK's runtime threads can abort it after a failure.
        os._exit(1)
