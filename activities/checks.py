"""The ``run_check`` activity: judge one candidate with a deterministic check.

How each outcome maps onto Temporal:

- an unknown check is a configuration error: ``UnknownCheck``, not retried, naming the checks
  this worker serves (the workflow then fails);
- a check that returns something other than an ``Evaluation`` has a bug no retry fixes:
  ``InvalidEvaluation``, not retried;
- a check that raises, or runs past its own ``timeout``, is retried by Temporal under the
  workflow's retry policy (a flaky test run, a busy machine).

The workflow cannot see the registry, so it sets one generous start-to-close timeout for every
check (``MAX_CHECK_TIMEOUT``, the longest a check may declare) and the activity enforces the
check's own ``timeout`` with ``asyncio.wait_for``. A sync check still running in its thread when
the timeout passes is abandoned, not stopped: Python cannot kill a thread.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._heartbeat import heartbeating
from durable_agents.agents import AgentRegistry
from durable_agents.checks import InvalidEvaluation
from durable_agents.contracts.patterns import CheckInput, Evaluation


class CheckActivities:
    def __init__(self, registry: AgentRegistry) -> None:
        self._registry = registry

    @activity.defn(name="run_check")
    async def run_check(self, input: CheckInput) -> Evaluation:
        check = self._registry.checks.get(input.check)
        if check is None:
            raise ApplicationError(
                f"unknown check {input.check!r}; this worker serves: "
                + (", ".join(sorted(self._registry.checks)) or "no checks"),
                type="UnknownCheck",
                non_retryable=True,
            )
        async with heartbeating():
            try:
                return await asyncio.wait_for(check.evaluate(input), timeout=check.timeout)
            except InvalidEvaluation as err:
                raise ApplicationError(
                    str(err), type="InvalidEvaluation", non_retryable=True
                ) from err
            except TimeoutError:
                raise ApplicationError(
                    f"check {check.name!r} ran past its timeout of {check.timeout:g} s",
                    type="CheckTimedOut",
                ) from None
