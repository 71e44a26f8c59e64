"""``AgentsPlugin``: everything a worker needs to run agents, for any client, worker or replayer.

One Temporal ``SimplePlugin`` contributes the library's activities (``load_agent``,
``call_model``, ``run_tool``, ``list_mcp_tools``, ``call_mcp_tool``, ``notify_escalation``,
``run_check``), the shipped workflows (``AgentWorkflow``, which runs also serve as children, and
``ParallelAgentsWorkflow``, ``RouterWorkflow``, ``PipelineWorkflow``, ``SupervisorWorkflow``,
``EvaluatorOptimizerWorkflow``), the data converter (pydantic, storage hints, encryption and
payload storage from the environment), the failure types and the resume timings
(``runtime.resume_timings``: workflow-task and sticky-queue timeouts that move a dead worker's
runs to a live one within seconds). A user's own workflows
(``AgentHost``) need only this plugin next to them::

    plugin = AgentsPlugin(registry=my_registry)
    client = await Client.connect("localhost:7233", plugins=[plugin])
    worker = Worker(client, task_queue="agents", workflows=[MyWorkflow])  # plugin applied

``worker.py`` builds its worker the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import pydantic
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkerConfig

from activities.agent_catalog import AgentCatalogActivities
from activities.checks import CheckActivities
from activities.model import ModelActivities
from activities.notifications import NotificationActivities
from activities.providers.base import ModelProvider
from activities.tools import ToolActivities
from durable_agents.agents import AgentRegistry
from durable_agents.effects import EffectLedger, ledger_from_env
from durable_agents.mcp_tools import McpActivities, McpServer, servers_from_env
from durable_agents.runner import policies
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.resume_timings import ResumeTimings
from workflows.agent import AgentWorkflow
from workflows.evaluator_optimizer import EvaluatorOptimizerWorkflow
from workflows.parallel import ParallelAgentsWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.router import RouterWorkflow
from workflows.supervisor import SupervisorWorkflow

SHIPPED_WORKFLOWS = (
    AgentWorkflow,
    ParallelAgentsWorkflow,
    RouterWorkflow,
    PipelineWorkflow,
    SupervisorWorkflow,
    EvaluatorOptimizerWorkflow,
)
"""The workflows every worker with this plugin serves (and every replayer needs)."""

SDK_STICKY_TIMEOUT = timedelta(seconds=10)
"""The SDK's default ``sticky_queue_schedule_to_start_timeout``, which the plugin replaces."""

MAX_INLINE_REQUEST_BYTES = 1_500_000
"""Largest model request a run may send when payloads stay in history (2 MB server limit, with
room for the JSON around the text)."""


class AgentsPlugin(SimplePlugin):
    """The durable-agents activities, ``AgentWorkflow``, converter and failure types.

    Args:
        registry: The agents served.
        providers: Model providers by name (see ``worker.providers_from_env``).
        ledger: The effects ledger for side-effecting tools; default ``ledger_from_env()``.
        mcp_servers: MCP servers agents may use; default ``servers_from_env()``.
        status_search_attribute: Runs keep ``AgentStatus`` current (only once the server has
            the attribute: ``runtime.search_attributes.ensure_agent_status_attribute``).
        data_converter: The converter for clients and replayers; default
            ``data_converter_from_env()``. A worker uses its client's converter.
        model_task_queues: Provider -> the rate-limited queue its model calls go to
            (``runtime.rate_limits``); each run records it. Something must poll those queues
            with ``call_model``: ``worker.build_worker`` starts a worker per queue.
    """

    def __init__(
        self,
        *,
        registry: AgentRegistry,
        providers: Mapping[str, ModelProvider],
        ledger: EffectLedger | None = None,
        mcp_servers: Mapping[str, McpServer] | None = None,
        status_search_attribute: bool = False,
        data_converter: DataConverter | None = None,
        model_task_queues: Mapping[str, str] | None = None,
    ) -> None:
        converter = data_converter if data_converter is not None else data_converter_from_env()
        ledger = ledger if ledger is not None else ledger_from_env()
        mcp = McpActivities(mcp_servers if mcp_servers is not None else servers_from_env(), ledger)
        catalog = AgentCatalogActivities(
            registry,
            providers,
            compatible_model=os.environ.get("OPENAI_COMPATIBLE_MODEL"),
            status_search_attribute=status_search_attribute,
            # Without external storage every payload stays in history, under the 2 MB cap.
            max_request_bytes=None
            if converter.external_storage is not None
            else MAX_INLINE_REQUEST_BYTES,
            model_task_queues=model_task_queues,
        )
        super().__init__(
            "durable-agents",
            data_converter=converter,
            activities=[
                catalog.load_agent,
                ModelActivities(providers).call_model,
                ToolActivities(registry, ledger).run_tool,
                CheckActivities(registry).run_check,
                mcp.list_mcp_tools,
                mcp.call_mcp_tool,
                NotificationActivities().notify_escalation,
            ],
            workflows=list(SHIPPED_WORKFLOWS),
            workflow_failure_exception_types=[pydantic.ValidationError],
            interceptors=[ResumeTimings()],
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """The plugin's workflows, activities and interceptors, and the sticky queue's
        schedule-to-start timeout of ``policies`` unless the worker set another than the SDK's
        default (a dead worker's runs move to another within it)."""
        config = super().configure_worker(config)
        if config.get("sticky_queue_schedule_to_start_timeout") in (None, SDK_STICKY_TIMEOUT):
            config["sticky_queue_schedule_to_start_timeout"] = (
                policies.STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT
            )
        return config
