"""The ``@check`` decorator and the ``Check`` type.

A check is a deterministic evaluator: a Python function that judges one candidate answer (run the
tests, lint the code, count the items) and returns an ``Evaluation``. It runs on the worker as
the ``run_check`` activity, so ``EvaluatorOptimizerWorkflow`` can use it in place of an
evaluator agent (``{"evaluator": {"check": "<name>"}}``)::

    from durable_agents.checks import check
    from durable_agents.contracts.patterns import CheckInput, Evaluation

    @check("sample-app-tests", description="Runs the sample app's tests.", timeout=180)
    def sample_app_tests(input: CheckInput) -> Evaluation:
        ...

A ``Check`` at the top level of a module that discovery scans is registered like an ``Agent``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import overload

import pydantic

from durable_agents.contracts.patterns import CheckInput, Evaluation

CheckFunction = Callable[[CheckInput], Evaluation | Awaitable[Evaluation]]
"""``fn(input: CheckInput) -> Evaluation``, sync or async."""

DEFAULT_CHECK_TIMEOUT = 120.0
"""Seconds one attempt of a check may run unless it says otherwise."""

MAX_CHECK_TIMEOUT = 3_600.0
"""The longest timeout a check may declare: the ``run_check`` activity's own start-to-close
timeout, which the workflow sets without seeing the check (see ``activities.checks``)."""


class InvalidEvaluation(Exception):
    """A check returned something that is not an ``Evaluation`` (a bug in the check: not
    retried)."""


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    function: CheckFunction
    timeout: float = DEFAULT_CHECK_TIMEOUT
    """Seconds one attempt may run; past it the attempt fails and Temporal retries it."""

    async def evaluate(self, input: CheckInput) -> Evaluation:
        """Run the check on one candidate (a sync check in a thread, off the event loop).

        Raises:
            InvalidEvaluation: The check returned neither an ``Evaluation`` nor something that
                validates as one (a dict with ``score`` and ``accept``).
            Exception: Whatever the check raised.
        """
        result: object
        if inspect.iscoroutinefunction(self.function):
            result = self.function(input)
        else:
            result = await asyncio.to_thread(self.function, input)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Evaluation):
            return result
        try:
            return Evaluation.model_validate(result)
        except pydantic.ValidationError as err:
            raise InvalidEvaluation(
                f"check {self.name!r} returned {_excerpt(result)}, not an Evaluation: "
                + "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or '(value)'}: {e['msg']}"
                    for e in err.errors(include_url=False)
                )
            ) from None


def _excerpt(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@overload
def check(name: CheckFunction, /) -> Check: ...


@overload
def check(
    name: str | None = None, *, description: str = "", timeout: float = DEFAULT_CHECK_TIMEOUT
) -> Callable[[CheckFunction], Check]: ...


def check(
    name: str | CheckFunction | None = None,
    *,
    description: str = "",
    timeout: float = DEFAULT_CHECK_TIMEOUT,
) -> Check | Callable[[CheckFunction], Check]:
    """Turn ``fn(input: CheckInput) -> Evaluation`` into a ``Check``.

    Args:
        name: The name an ``EvaluatorOptimizerInput`` refers to it by (``{"check": name}``);
            defaults to the function name. ``@check`` without parentheses works too.
        description: What it checks; defaults to the function's docstring.
        timeout: Seconds one attempt may run (at most ``MAX_CHECK_TIMEOUT``).
    """
    if callable(name):
        return check()(name)
    if not 0 < timeout <= MAX_CHECK_TIMEOUT:
        raise ValueError(
            f"check {name!r}: timeout must be in (0, {MAX_CHECK_TIMEOUT:g}] seconds, "
            f"got {timeout!r}"
        )

    def wrap(function: CheckFunction) -> Check:
        if len(inspect.signature(function).parameters) != 1:
            raise TypeError(
                f"check {function.__name__!r} must take one parameter (input: CheckInput)"
            )
        return Check(
            name=name or function.__name__,
            description=description or inspect.getdoc(function) or "",
            function=function,
            timeout=float(timeout),
        )

    return wrap
