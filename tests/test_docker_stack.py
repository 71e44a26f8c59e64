"""The docker-compose stack (Temporal on PostgreSQL, Web UI, worker) runs a flagship agent.

Needs a Docker engine; on machines without one (these CI machines have only the client) the test
is skipped and says why.
"""

from __future__ import annotations

import docker
import pytest
from docker.errors import DockerException

from durable_agents.runtime.settings import PROJECT_ROOT


def docker_engine_problem() -> str | None:
    try:
        docker.from_env().ping()
    except DockerException as err:
        return f"no Docker engine reachable ({err.__class__.__name__}); the compose stack needs one"
    return None


@pytest.mark.skipif(docker_engine_problem() is not None, reason=str(docker_engine_problem()))
def test_compose_stack_runs_the_flagship() -> None:
    """docker compose up brings up Temporal and a worker that completes a finops run."""
    import os
    import subprocess
    import sys

    from testcontainers.compose import DockerCompose

    with DockerCompose(str(PROJECT_ROOT), wait=True, build=True) as stack:
        stack.wait_for("http://localhost:8080")
        done = subprocess.run(
            [sys.executable, "starter.py", "run", "finops", "check the bill", "--json"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "TEMPORAL_ADDRESS": "localhost:7233"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert '"status": "completed"' in done.stdout
