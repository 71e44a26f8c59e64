"""docker-compose.yml resolves: ``docker-compose config`` (Debian's 1.29, which CI installs) or
``docker compose config`` parses and validates the file without a Docker engine, and the
services it resolves are the stack docs/deploys.md describes."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from durable_agents.runtime.settings import PROJECT_ROOT


def compose_command() -> list[str] | None:
    """``docker-compose``, else ``docker compose`` when the plugin is installed, else None."""
    if compose := shutil.which("docker-compose"):
        return [compose]
    if docker := shutil.which("docker"):
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


COMPOSE = compose_command()


# `docker-compose` 1.29 prints short forms ("agent-data:/data:rw", "127.0.0.1:8081:8081/tcp"),
# `docker compose` v2 long ones (mappings); these read both.
def volume_source(volume: str | dict[str, Any]) -> str:
    return str(volume["source"]) if isinstance(volume, dict) else volume.split(":")[0]


def port_mapping(port: str | dict[str, Any]) -> str:
    if isinstance(port, dict):
        return f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
    return port.split("/")[0]


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    if COMPOSE is None:
        pytest.skip(
            "neither docker-compose nor the docker compose plugin is installed "
            "(CI installs Debian's docker-compose: .ci/run)"
        )
    done = subprocess.run(
        [*COMPOSE, "-f", "docker-compose.yml", "config"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        # Only the file's defaults: variables in a developer's shell must not change the result.
        env={"PATH": os.environ.get("PATH", ""), "COMPOSE_PROJECT_NAME": "durable-agents"},
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_stack_resolves_to_its_services(resolved: dict[str, Any]) -> None:
    """Temporal with its two one-shot admin-tools jobs, the Web UI, the codec server, two
    workers and PostgreSQL; the server images are pinned tags, not auto-setup or latest."""
    services = resolved["services"]
    assert set(services) == {
        "postgresql",
        "temporal-admin-tools",
        "temporal",
        "temporal-create-namespace",
        "temporal-ui",
        "codec-server",
        "worker-1",
        "worker-2",
    }
    assert services["temporal"]["image"] == "temporalio/server:1.32.0"
    assert services["temporal-admin-tools"]["image"] == "temporalio/admin-tools:1.32.0"
    assert services["temporal-create-namespace"]["image"] == "temporalio/admin-tools:1.32.0"
    assert services["temporal-ui"]["image"] == "temporalio/ui:2.54.1"
    for service in services.values():
        image = service.get("image", "")
        assert "auto-setup" not in image and not image.endswith(":latest"), image
    schema_job = services["temporal-admin-tools"]["command"][0]
    assert "temporal-sql-tool --plugin postgres12" in schema_job
    assert "update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned" in schema_job
    assert (
        "temporal operator namespace create -n default"
        in (services["temporal-create-namespace"]["command"][0])
    )


def test_startup_order_waits_for_schema_and_namespace(resolved: dict[str, Any]) -> None:
    """The server starts after the schema job succeeded; workers after the namespace exists."""
    services = resolved["services"]
    assert services["temporal"]["depends_on"]["temporal-admin-tools"] == {
        "condition": "service_completed_successfully"
    }
    for worker in ("worker-1", "worker-2"):
        depends = services[worker]["depends_on"]
        assert depends["temporal-create-namespace"]["condition"] == "service_completed_successfully"
        assert depends["postgresql"]["condition"] == "service_healthy"


def test_workers_share_ledger_payloads_and_build(resolved: dict[str, Any]) -> None:
    """Both workers: the PostgreSQL effects ledger, the payload store the codec server reads,
    and one deployment build, current when it starts."""
    services = resolved["services"]
    one, two = services["worker-1"], services["worker-2"]
    assert one["environment"] == two["environment"]
    env = one["environment"]
    assert env["EFFECTS_DSN"] == "postgresql://temporal:temporal@postgresql:5432/effects"
    assert services["postgresql"]["environment"]["POSTGRES_DB"] == "effects"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert (env["DURABLE_AGENTS_DEPLOYMENT"], env["DURABLE_AGENTS_BUILD_ID"]) == (
        "durable-agents",
        "local",
    )
    assert env["DURABLE_AGENTS_SET_CURRENT"] == "true"
    codec = services["codec-server"]
    assert codec["environment"]["PAYLOAD_STORE_DIR"] == env["PAYLOAD_STORE_DIR"]
    assert env["PAYLOAD_STORE_DIR"].startswith("/data/")
    mounts = {
        name: {volume_source(v) for v in services[name]["volumes"]}
        for name in ("worker-1", "worker-2", "codec-server")
    }
    assert mounts["worker-1"] == mounts["worker-2"] == mounts["codec-server"] == {"agent-data"}
    assert one["image"] == codec["image"] == "durable-agents:local"


def test_web_ui_decodes_through_the_codec_server(resolved: dict[str, Any]) -> None:
    """The UI's codec endpoint is the published codec port with the server's token, and the
    codec server allows the UI's origin."""
    services = resolved["services"]
    codec = services["codec-server"]
    token = codec["environment"]["DURABLE_AGENTS_CODEC_TOKEN"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == (
        f"http://localhost:8081/t/{token}"
    )
    assert "--origin=http://localhost:8080" in codec["command"]
    assert "127.0.0.1:8081:8081" in {port_mapping(p) for p in codec["ports"]}
