"""The docker-compose stack (Temporal on PostgreSQL with its admin-tools jobs, Web UI, codec
server, two workers, the effects ledger on PostgreSQL) runs a flagship agent.

Needs a Docker engine and the ``docker compose`` plugin (testcontainers drives v2); on machines
without them (these CI machines have only the client) the test is skipped and says why.
tests/test_compose.py validates the file itself everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import docker
import pytest
from docker.errors import DockerException

from durable_agents.runtime.settings import PROJECT_ROOT


def docker_engine_problem() -> str | None:
    try:
        docker.from_env().ping()
    except DockerException as err:
        return f"no Docker engine reachable ({err.__class__.__name__}); the compose stack needs one"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return "the docker compose plugin (v2) is not installed; testcontainers needs it"
    return None


@pytest.mark.skipif(docker_engine_problem() is not None, reason=str(docker_engine_problem()))
def test_compose_stack_runs_the_flagship() -> None:
    """docker compose up brings up Temporal (schema and namespace by the admin-tools jobs) and
    two versioned workers that complete a finops run."""
    from testcontainers.compose import DockerCompose

    # wait=False: `up --wait` would treat the one-shot admin-tools jobs' exit as a failure in
    # some compose releases; the UI answering and the run completing are the readiness checks.
    with DockerCompose(str(PROJECT_ROOT), wait=False, build=True) as stack:
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
        result = json.loads(done.stdout)
        assert result["status"] == "completed"
