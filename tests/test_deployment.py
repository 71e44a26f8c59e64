"""Worker deployment versioning on the dev server: a run stays on the build it started on while
another build is current, new runs go to the current build, and a continued run moves to it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.providers.scripted import ScriptedProvider
from durable_agents.agents import AgentRegistry
from durable_agents.contracts import AgentInput, AgentResult, AgentStatusView
from durable_agents.contracts.approvals import ApprovalSignal
from durable_agents.runtime.deployment import (
    DeploymentConfigError,
    WorkerDeployment,
    set_current_version,
)
from tests.deployment_workflows import WORKFLOW_TYPE, DeployedOnA, DeployedOnB
from tests.worker_processes import WorkerProcess
from worker import AgentWorkers, build_worker


def versioned_worker(
    client: Client, task_queue: str, registry: AgentRegistry, cls: type, build: WorkerDeployment
) -> AgentWorkers:
    """``worker.build_worker`` as ``python worker.py`` calls it with the deployment variables."""
    return build_worker(
        client, task_queue, registry=registry, mcp_servers={}, workflows=[cls], deployment=build,
        providers={"scripted": ScriptedProvider(registry.scripts)},
    )  # fmt: skip


def builds() -> tuple[WorkerDeployment, WorkerDeployment]:
    name = f"agents-{uuid.uuid4().hex[:8]}"
    return (
        WorkerDeployment(WorkerDeploymentVersion(name, "a")),
        WorkerDeployment(WorkerDeploymentVersion(name, "b")),
    )


async def test_runs_stay_on_their_build_and_move_at_continue_as_new(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """Build A (``worker.build_worker``, as ``python worker.py`` runs it) starts two runs; build B
    becomes current. The run finishing now finishes on A, a new run runs on B, and the run
    that continues as new continues on B."""
    a, b = builds()
    async with versioned_worker(client, task_queue, registry, DeployedOnA, a):
        await set_current_version(client, a.version)
        stays = await client.start_workflow(
            WORKFLOW_TYPE, False, id=f"stays-{uuid.uuid4()}", task_queue=task_queue
        )
        moves = await client.start_workflow(
            WORKFLOW_TYPE, False, id=f"moves-{uuid.uuid4()}", task_queue=task_queue
        )
        await stays.describe()  # started (on A) before B exists
        async with versioned_worker(client, task_queue, registry, DeployedOnB, b):
            await set_current_version(client, b.version)
            fresh = await client.start_workflow(
                WORKFLOW_TYPE, False, id=f"fresh-{uuid.uuid4()}", task_queue=task_queue
            )
            for handle, how in ((stays, "finish"), (moves, "continue"), (fresh, "finish")):
                await handle.signal("go", how)
            assert await stays.result() == "a"
            assert await fresh.result() == "b"
            assert await client.get_workflow_handle(moves.id).result() == "b"
    info = (await stays.describe()).raw_description.workflow_execution_info.versioning_info
    assert info.deployment_version.build_id == "a"
    assert info.behavior == 1  # VERSIONING_BEHAVIOR_PINNED


async def test_without_the_interceptor_a_continued_run_inherits_its_build(client: Client) -> None:
    """The control: a PINNED run continued as new without ``UpgradeOnContinueAsNew`` stays on
    the old build (the server's inheritance rule), so the interceptor is what moves it."""
    a, b = builds()
    task_queue = f"test-{uuid.uuid4()}"

    def plain(build: WorkerDeployment, cls: type) -> Worker:
        return Worker(
            client, task_queue=task_queue, workflows=[cls], deployment_config=build.worker_config()
        )

    async with plain(a, DeployedOnA):
        await set_current_version(client, a.version)
        moves = await client.start_workflow(
            WORKFLOW_TYPE, False, id=f"moves-{uuid.uuid4()}", task_queue=task_queue
        )
        await moves.describe()
        async with plain(b, DeployedOnB):
            await set_current_version(client, b.version)
            await moves.signal("go", "continue")
            assert await client.get_workflow_handle(moves.id).result() == "a"


def test_versioning_is_off_unless_the_environment_names_a_deployment() -> None:
    """Unset or empty: off. Set: the build id is required, the name may not hold '.', and
    DURABLE_AGENTS_SET_CURRENT must be a boolean."""
    assert WorkerDeployment.from_env({}) is None
    assert WorkerDeployment.from_env({"DURABLE_AGENTS_DEPLOYMENT": " "}) is None
    on = WorkerDeployment.from_env(
        {"DURABLE_AGENTS_DEPLOYMENT": "agents", "DURABLE_AGENTS_BUILD_ID": "v2",
         "DURABLE_AGENTS_SET_CURRENT": "true"}
    )  # fmt: skip
    assert on == WorkerDeployment(WorkerDeploymentVersion("agents", "v2"), set_current=True)
    with pytest.raises(DeploymentConfigError, match="needs DURABLE_AGENTS_BUILD_ID"):
        WorkerDeployment.from_env({"DURABLE_AGENTS_DEPLOYMENT": "agents"})
    with pytest.raises(DeploymentConfigError, match="may not hold"):
        WorkerDeployment.from_env(
            {"DURABLE_AGENTS_DEPLOYMENT": "a.b", "DURABLE_AGENTS_BUILD_ID": "1"}
        )
    with pytest.raises(DeploymentConfigError, match="not true or false"):
        WorkerDeployment.from_env(
            {"DURABLE_AGENTS_DEPLOYMENT": "a", "DURABLE_AGENTS_BUILD_ID": "1",
             "DURABLE_AGENTS_SET_CURRENT": "maybe"}
        )  # fmt: skip


async def current_build(client: Client, deployment: str) -> str | None:
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError:
        return None  # not created until a versioned worker polls
    routing = described.worker_deployment_info.routing_config
    return routing.current_deployment_version.build_id or None


async def wait_until_current(client: Client, deployment: str, build_id: str) -> None:
    for _ in range(600):
        if await current_build(client, deployment) == build_id:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"build {build_id!r} never became current")


async def pinned_build(handle: WorkflowHandle[object, AgentResult]) -> str:
    info = (await handle.describe()).raw_description.workflow_execution_info
    return info.versioning_info.deployment_version.build_id


@pytest.mark.slow  # two worker.py processes and two flagship runs: about a minute
async def test_a_run_waiting_for_a_human_finishes_on_its_build(
    client: Client,
    task_queue: str,
    worker_env: dict[str, str],
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    """``python worker.py`` with the deployment variables: v1 makes itself current, a finops run
    starts and waits for an approval; v2 starts and makes itself current; a new run goes to v2,
    and the waiting run, approved, completes on v1."""
    deployment = f"agents-{uuid.uuid4().hex[:8]}"
    env = {
        **worker_env,
        "SCRIPTED_MODEL_LATENCY_MS": "0",
        "DURABLE_AGENTS_DEPLOYMENT": deployment,
        "DURABLE_AGENTS_SET_CURRENT": "true",
    }
    workers.append(WorkerProcess({**env, "DURABLE_AGENTS_BUILD_ID": "v1"}, tmp_path / "v1.log"))
    await wait_until_current(client, deployment, "v1")

    async def start() -> WorkflowHandle[object, AgentResult]:
        return await client.start_workflow(
            "AgentWorkflow", AgentInput(agent="finops", task="Why did the bill spike?"),
            id=f"pinned-{uuid.uuid4()}", task_queue=task_queue, result_type=AgentResult,
        )  # fmt: skip

    waiting = await start()
    for _ in range(600):
        if (await waiting.query("status", result_type=AgentStatusView)).pending_approvals:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the run never asked for an approval")

    workers.append(WorkerProcess({**env, "DURABLE_AGENTS_BUILD_ID": "v2"}, tmp_path / "v2.log"))
    await wait_until_current(client, deployment, "v2")
    fresh = await start()
    for _ in range(600):
        if (await fresh.query("status", result_type=AgentStatusView)).pending_approvals:
            break
        await asyncio.sleep(0.1)
    await waiting.signal("approve", ApprovalSignal(approver="deploy-test"))
    await fresh.signal("approve", ApprovalSignal(approver="deploy-test"))
    assert (await asyncio.wait_for(waiting.result(), timeout=120)).status == "completed"
    assert (await asyncio.wait_for(fresh.result(), timeout=120)).status == "completed"
    assert await pinned_build(waiting) == "v1"
    assert await pinned_build(fresh) == "v2"
