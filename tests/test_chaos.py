"""Chaos, reduced: concurrent flagship and soak runs survive kill -9 of workers and of the server.

``bench.chaos`` at a size for the test suite: 3 flagship runs (``finops-chaos-once``: side
effects held open after they commit, ``stop_cluster`` gated by approval, one run
continuing-as-new while it waits) and 3 ``soak`` runs that continue-as-new, on 3 real
``python worker.py`` processes, a polling one killed with SIGKILL every 3 seconds and replaced,
and the dev server (a separate one, with its database file, not the session's ``temporal_env``)
killed with SIGKILL and restarted right after the approvals went in. ``python -m bench.chaos``
is the full-size version.

Timing only paces the chaos; what is checked does not depend on it: approvals are held until
every flagship run waits for one (so every run sees the cluster running and notifies its owner),
and the restart follows that event, not the clock.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.chaos import ChaosOptions, ChaosReport, run_chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

REDUCED = ChaosOptions(
    flagship=3,
    soak=3,
    soak_steps=20,
    soak_continue_as_new=8,
    workers=3,
    kill_every=3.0,
    server_restarts=1,
    timeout=300.0,
)


@pytest.fixture(scope="module")
async def chaos(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosReport]:
    """One reduced chaos run, shared by the tests below (each checks one property of it)."""
    work_dir: Path = tmp_path_factory.mktemp("chaos")
    options = dataclasses.replace(REDUCED, seed=random.randrange(2**32), work_dir=work_dir)
    report = await run_chaos(options)
    print(f"\nchaos (reduced), seed {report.seed}, state and worker logs in {work_dir}")
    print(report.table())
    yield report


async def test_the_chaos_happened(chaos: ChaosReport) -> None:
    """Workers were killed -9 and replaced, and the server was killed and restarted on its db
    file; the existing client and the surviving workers carried on without being restarted."""
    assert chaos.worker_kills >= 1, f"no worker was killed:\n{chaos.table()}"
    assert chaos.server_restarts == REDUCED.server_restarts, (
        f"expected {REDUCED.server_restarts} server restart(s):\n{chaos.table()}"
    )
    for restart in chaos.restarts:
        assert restart.workers_back_seconds is not None, (
            f"no worker answered a status query within 60 s of a restart:\n{chaos.table()}"
        )
        assert restart.workers_survived == restart.workers_connected, (
            f"connected workers died with the server instead of reconnecting:\n{chaos.table()}"
        )
    assert not chaos.worker_exits_after_connecting, (
        f"connected workers exited on their own (did not ride out the restart): "
        f"{chaos.worker_exits_after_connecting}\n{chaos.table()}"
    )


async def test_every_run_completes(chaos: ChaosReport) -> None:
    """Every flagship and soak run ends with status ``completed``, whatever was killed."""
    assert chaos.runs == REDUCED.flagship + REDUCED.soak, chaos.table()
    assert chaos.runs_completed == chaos.runs, (
        f"runs not completed: {chaos.runs_not_completed}\n{chaos.table()}"
    )
    assert chaos.chain_runs > chaos.runs, (
        f"no run continued-as-new, so that path went untested:\n{chaos.table()}"
    )


async def test_each_effect_happens_exactly_once(chaos: ChaosReport) -> None:
    """In the inventory database, the system that performed the effects: one notification and
    one action row per flagship run, and the idle cluster stopped exactly once overall."""
    assert chaos.duplicate_effects == 0, f"duplicate effects:\n{chaos.table()}"
    assert chaos.missing_effects == 0, f"missing effects:\n{chaos.table()}"
    assert chaos.notifications_performed == chaos.notifications_expected == REDUCED.flagship, (
        chaos.table()
    )
    assert chaos.actions_performed == chaos.actions_expected == REDUCED.flagship, chaos.table()
    assert chaos.stops_performed == chaos.stops_expected == 1, chaos.table()


async def test_no_approval_is_lost(chaos: ChaosReport) -> None:
    """Every approval sent by signal (one per flagship run, some of them in flight when the
    server was killed) is in its run's result, approved by ``chaos``; none ended by timeout."""
    assert chaos.approvals_sent == REDUCED.flagship, (
        f"expected one approval per flagship run to be sent:\n{chaos.table()}"
    )
    assert chaos.approvals_lost == [], f"lost approvals: {chaos.approvals_lost}\n{chaos.table()}"
    assert chaos.approvals_recorded == chaos.approvals_sent, chaos.table()
    assert chaos.approvals_timed_out == 0, f"approvals ended by timeout:\n{chaos.table()}"


async def test_no_workflow_task_is_left_failing(chaos: ChaosReport) -> None:
    """In every run of every chain, the last workflow-task event is not a failure (failures
    and timeouts while workers die are allowed; they are counted in the table)."""
    assert chaos.workflow_tasks_left_failing == [], (
        f"runs whose last workflow task failed: {chaos.workflow_tasks_left_failing}\n"
        f"{chaos.table()}"
    )


async def test_no_other_problem(chaos: ChaosReport) -> None:
    """Nothing else the chaos checks found (soak step counts, stray effect rows ...)."""
    assert chaos.problems == [], "\n".join(chaos.problems) + "\n" + chaos.table()
