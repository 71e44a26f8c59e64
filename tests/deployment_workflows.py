"""Two builds of one workflow type, for tests/test_deployment.py: each returns the build that
ran its last task, so a test can see which build a run (or its continued run) was on."""

from __future__ import annotations

from temporalio import workflow

WORKFLOW_TYPE = "DeployedWorkflow"


class _Deployed:
    build = ""

    def __init__(self) -> None:
        self._go: str | None = None

    @workflow.signal
    def go(self, how: str) -> None:
        """``finish``: return this build; ``continue``: continue as new, then return."""
        self._go = how

    async def _run(self, continued: bool) -> str:
        if continued:
            return self.build
        await workflow.wait_condition(lambda: self._go is not None)
        if self._go == "continue":
            workflow.continue_as_new(True)
        return self.build


@workflow.defn(name=WORKFLOW_TYPE)
class DeployedOnA(_Deployed):
    build = "a"

    @workflow.run
    async def run(self, continued: bool) -> str:
        return await self._run(continued)


@workflow.defn(name=WORKFLOW_TYPE)
class DeployedOnB(_Deployed):
    build = "b"

    @workflow.run
    async def run(self, continued: bool) -> str:
        return await self._run(continued)
