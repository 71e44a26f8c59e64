"""Worker deployment versioning: a run stays on the build it started on, and moves to the
current build when it continues as new.

Off unless ``DURABLE_AGENTS_DEPLOYMENT`` names the deployment; then ``DURABLE_AGENTS_BUILD_ID``
names this worker's build (the Dockerfile sets it from the ``BUILD_ID`` build argument). The
worker polls as that version (the SDK's ``WorkerDeploymentConfig``), its workflows are PINNED
(every task of a run goes to the build that started it, so a deploy never replays a run on code
it was not recorded with), and ``UpgradeOnContinueAsNew`` starts each continued run on the
deployment's *current* build instead of inheriting the old one. New runs go to the current
build; ``DURABLE_AGENTS_SET_CURRENT=true`` makes a starting worker promote its own build
(``set_current_version``), else promote with ``temporal worker deployment set-current-version``.
See docs/deploys.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn, TypedDict

from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    ContinueAsNewInput,
    Interceptor,
    WorkerDeploymentConfig,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ContinueAsNewVersioningBehavior

DEPLOYMENT_ENV = "DURABLE_AGENTS_DEPLOYMENT"
BUILD_ID_ENV = "DURABLE_AGENTS_BUILD_ID"
SET_CURRENT_ENV = "DURABLE_AGENTS_SET_CURRENT"
PROMOTE_PATIENCE = timedelta(seconds=60)
"""How long a starting worker retries making its build current: the server refuses until it
has seen the new version's pollers on every task queue of the current version."""


class DeploymentConfigError(ValueError):
    """The deployment variables are set but unusable."""


@dataclass(frozen=True)
class WorkerDeployment:
    """This worker's place in a worker deployment."""

    version: WorkerDeploymentVersion
    """Deployment name and build id."""
    set_current: bool = False
    """Make this build the deployment's current version once the worker polls."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerDeployment | None:
        """The deployment the environment names, or ``None`` (versioning off) when
        ``DURABLE_AGENTS_DEPLOYMENT`` is unset or empty.

        Raises:
            DeploymentConfigError: No build id, a ``.`` in the deployment name (the version's
                canonical form is ``name.build``), or a bad ``DURABLE_AGENTS_SET_CURRENT``.
        """
        env = os.environ if environ is None else environ
        name = env.get(DEPLOYMENT_ENV, "").strip()
        if not name:
            return None
        build_id = env.get(BUILD_ID_ENV, "").strip()
        if not build_id:
            raise DeploymentConfigError(
                f"{DEPLOYMENT_ENV}={name!r} needs {BUILD_ID_ENV}: the build this worker runs"
            )
        if "." in name:
            raise DeploymentConfigError(f"{DEPLOYMENT_ENV}={name!r}: the name may not hold '.'")
        raw = env.get(SET_CURRENT_ENV, "").strip().lower()
        if raw not in ("", "true", "false", "1", "0", "yes", "no"):
            raise DeploymentConfigError(f"{SET_CURRENT_ENV}={raw!r} is not true or false")
        return cls(WorkerDeploymentVersion(name, build_id), set_current=raw in ("true", "1", "yes"))

    def worker_config(self) -> WorkerDeploymentConfig:
        """Poll as this version; workflows without their own behaviour are PINNED."""
        return WorkerDeploymentConfig(
            version=self.version,
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )


class VersioningOptions(TypedDict, total=False):
    """Keyword arguments of ``Worker(...)`` for a versioned worker."""

    deployment_config: WorkerDeploymentConfig
    interceptors: list[Interceptor]


def worker_options(deployment: WorkerDeployment | None) -> VersioningOptions:
    """``Worker(..., **worker_options(deployment))``: nothing when versioning is off."""
    if deployment is None:
        return {}
    return {
        "deployment_config": deployment.worker_config(),
        "interceptors": [UpgradeOnContinueAsNew()],
    }


class UpgradeOnContinueAsNew(Interceptor):
    """Continue-as-new starts the next run on the deployment's current build (AUTO_UPGRADE for
    its first task; PINNED again from then on), unless the workflow chose a behaviour itself.

    It changes a field of the continue-as-new command only, not which commands a run makes, so
    histories recorded with or without it replay the same."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _UpgradeInbound


class _UpgradeInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_UpgradeOutbound(outbound))


class _UpgradeOutbound(WorkflowOutboundInterceptor):
    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        if input.initial_versioning_behavior is None:
            input.initial_versioning_behavior = ContinueAsNewVersioningBehavior.AUTO_UPGRADE
        super().continue_as_new(input)


async def set_current_version(
    client: Client,
    version: WorkerDeploymentVersion,
    *,
    patience: timedelta = PROMOTE_PATIENCE,
    identity: str = "durable-agents worker",
) -> None:
    """Make ``version`` the deployment's current version: new runs start on it.

    Retries while the server has not yet seen this version poll (it refuses with
    FAILED_PRECONDITION or NOT_FOUND) or another client changed the deployment at the same time
    (ABORTED), for up to ``patience``. Setting the version that is already current succeeds.
    """
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=version.deployment_name,
        build_id=version.build_id,
        identity=identity,
    )
    deadline = asyncio.get_running_loop().time() + patience.total_seconds()
    delay = 0.2
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError as err:
            waiting = err.status in (
                RPCStatusCode.FAILED_PRECONDITION,
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.ABORTED,  # a concurrent change: another replica promoting too
            )
            if not waiting or asyncio.get_running_loop().time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
