"""``starter.py replay-check``: replay recent histories from a server against the current code.

The check to run before a deploy. For each workflow type the worker serves it lists recent runs
(open and closed) on the task queue, fetches their histories and replays them with a
``Replayer`` built like the worker (the same workflows, ``AgentsPlugin`` with its data converter
and failure types, the client's plugins such as tracing, and the deployment interceptor). A run
the new code would decide differently fails with a nondeterminism error here instead of in
production, where the workflow task would retry forever.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Plugin as WorkerPlugin
from temporalio.worker import Replayer

from durable_agents.agents import AgentRegistry
from durable_agents.plugin import SHIPPED_WORKFLOWS, AgentsPlugin
from durable_agents.runtime.deployment import UpgradeOnContinueAsNew

DEFAULT_SINCE = timedelta(days=7)
DEFAULT_LIMIT = 50


class ReplayCheckError(ValueError):
    """Bad arguments: an unknown ``--workflow`` or a workflow class without a type name."""


@dataclass(frozen=True)
class ReplayFailure:
    workflow_id: str
    run_id: str
    error: str


@dataclass
class TypeReport:
    """What replaying one workflow type's recent runs found."""

    workflow_type: str
    replayed: int = 0
    failures: list[ReplayFailure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def text(self) -> str:
        line = f"{self.workflow_type}: replayed {self.replayed}, failed {self.failed}"
        if self.failures:
            first = self.failures[0]
            line += (
                f"\n  first nondeterminism: workflow {first.workflow_id} run {first.run_id}\n"
                f"  {first.error}"
            )
        return line

    def as_json(self) -> dict[str, object]:
        return {
            "workflow_type": self.workflow_type,
            "replayed": self.replayed,
            "failed": self.failed,
            "failures": [vars(f) for f in self.failures],
        }


def workflow_type(cls: type) -> str:
    """The type name a ``@workflow.defn`` class registers."""
    definition = workflow._Definition.from_class(cls)  # the SDK's only public-ish accessor
    if definition is None or definition.name is None:
        raise ReplayCheckError(f"{cls.__qualname__} is not a named @workflow.defn class")
    return definition.name


def load_workflow(spec: str) -> type:
    """``package.module:ClassName`` -> the class."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ReplayCheckError(f"--workflow {spec!r}: expected MODULE:CLASS")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ReplayCheckError(f"--workflow {spec!r}: {err}") from None
    if not isinstance(cls, type):
        raise ReplayCheckError(f"--workflow {spec!r} is not a class")
    workflow_type(cls)
    return cls


def served_workflows(extra: Iterable[type], overrides: Sequence[type] = ()) -> list[type]:
    """The shipped workflows and ``extra``, each override replacing the class of its type name
    (or added): what the replayer registers."""
    by_type = {workflow_type(cls): cls for cls in (*SHIPPED_WORKFLOWS, *extra)}
    by_type.update({workflow_type(cls): cls for cls in overrides})
    return list(by_type.values())


def build_replayer(client: Client, registry: AgentRegistry, workflows: Sequence[type]) -> Replayer:
    """A replayer for ``workflows`` (see ``served_workflows``), configured as
    ``worker.build_worker`` configures the worker: ``AgentsPlugin`` (converter, failure types),
    the client's worker plugins (tracing) and the deployment interceptor, which changes no
    command but is there in a versioned worker."""
    plugin = AgentsPlugin(
        registry=registry, providers={}, data_converter=client.data_converter, mcp_servers={}
    )
    plugin.workflows = []  # the workflows come from ``workflows``, overrides included
    client_plugins = [p for p in client.config()["plugins"] if isinstance(p, WorkerPlugin)]
    return Replayer(
        workflows=list(workflows),
        plugins=[*client_plugins, plugin],
        interceptors=[UpgradeOnContinueAsNew()],
    )


def describe_failure(failure: Exception) -> str:
    """The error's type and the core's message (``[TMPRL1100] Nondeterminism error: ...``)
    without the activation-completion wrapper around it."""
    text = str(failure)
    inner = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    return f"{type(failure).__name__}: {inner.group(1) if inner else text}"


async def check(
    client: Client,
    replayer: Replayer,
    workflow_types: Sequence[str],
    *,
    task_queue: str,
    since: timedelta = DEFAULT_SINCE,
    limit: int = DEFAULT_LIMIT,
    query: str | None = None,
) -> list[TypeReport]:
    """Replay up to ``limit`` runs of each type started within ``since`` on ``task_queue``
    (narrowed by the visibility ``query``), newest first."""
    start = (datetime.now(UTC) - since).strftime("%Y-%m-%dT%H:%M:%SZ")
    reports = []
    for name in workflow_types:
        report = TypeReport(name)
        visibility = (
            f'WorkflowType = "{name}" AND TaskQueue = "{task_queue}" AND StartTime > "{start}"'
        )
        if query:
            visibility += f" AND ({query})"
        async for execution in client.list_workflows(visibility, limit=limit):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            report.replayed += 1
            if result.replay_failure is not None:
                error = describe_failure(result.replay_failure)
                report.failures.append(ReplayFailure(execution.id, execution.run_id, error))
        reports.append(report)
    return reports
