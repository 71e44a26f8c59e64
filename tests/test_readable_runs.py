"""Runs read with the stock tools, in the default configuration (payload offload on).

The Temporal CLI, with no extra flags, reads a flagship run's status (its pending approval),
approves it by signal and reads its result and its tool calls; the codec server resolves what
is offloaded (a 200 KB tool result, the conversation), with and without encryption, and refuses
a wrong token or a namespace it does not serve.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from durable_agents.agents import AgentRegistry
from durable_agents.codec import AesGcmCodec, KeyRing, create_app
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.payload_storage import storage_from_env
from durable_agents.runtime.converter import data_converter_from_env
from durable_agents.runtime.devserver import find_temporal_cli
from tests.conftest import running_worker
from tests.test_cli import address, run_cli
from tests.test_codec import TOKEN, as_json, auth, call, serving

REFERENCE = "temporal.api.sdk.v1.ExternalStorageReference"
FLAGSHIP_TASK = "Our cloud bill spiked this week. Find out why and stop what is idle."


async def temporal(client: Client, *args: str) -> str:
    """``temporal ARGS --address ...``; returns stdout (the command must succeed)."""
    done = await run_cli(find_temporal_cli(), *args, "--address", address(client))
    assert done.returncode == 0, done.stderr
    return done.stdout


async def wait_for_pending_approval(client: Client, workflow_id: str) -> dict[str, Any]:
    """The first pending approval, as ``temporal workflow query --name status`` shows it."""
    for _ in range(300):
        out = await temporal(
            client, "workflow", "query", "--workflow-id", workflow_id, "--name", "status",
            "--output", "json",
        )  # fmt: skip
        answer = json.loads(out)
        [status] = answer["queryResult"]
        assert REFERENCE not in json.dumps(status)
        if status["pending_approvals"]:
            return dict(status["pending_approvals"][0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} never asked for an approval")


async def test_temporal_cli_drives_a_flagship_run_with_offload_on(
    stored_client: Client, task_queue: str, registry: AgentRegistry, payload_dir: Path
) -> None:
    """With payload offload on (the default), the plain Temporal CLI starts the flagship, reads
    the pending approval's id, tool, arguments and deadline from the ``status`` query, approves
    it by ``temporal workflow signal`` with that id, reads the result's output, and ``workflow
    show`` displays tool arguments, tool results and model replies; only the conversation
    (model requests) is offloaded."""
    workflow_id = f"cli-offload-{uuid.uuid4()}"
    run = ["--workflow-id", workflow_id]
    async with running_worker(stored_client, task_queue, registry):
        await temporal(
            stored_client, "workflow", "start", "--type", "AgentWorkflow", "--task-queue",
            task_queue, *run, "--input", json.dumps({"agent": "finops", "task": FLAGSHIP_TASK}),
        )  # fmt: skip
        approval = await wait_for_pending_approval(stored_client, workflow_id)
        assert approval["tool"] == "stop_cluster"
        assert approval["arguments"]["cluster_id"] == "gpu-train-7"
        assert approval["id"].startswith("apr-") and approval["deadline"]
        signal = {"approver": "cli-user", "approval_id": approval["id"]}
        await temporal(
            stored_client, "workflow", "signal", *run, "--name", "approve",
            "--input", json.dumps(signal),
        )  # fmt: skip
        result = json.loads(
            await temporal(stored_client, "workflow", "result", *run, "--output", "json")
        )["result"]
    assert result["status"] == "completed" and result["steps"] == 5
    assert "stopped gpu-train-7" in result["output"]
    assert {"usage", "cost_usd"} <= set(result)
    assert result["approvals"][0]["approver"] == "cli-user"

    shown = await temporal(stored_client, "workflow", "show", *run, "--detailed")
    assert "priya.raman@example.com" in shown  # a tool result
    assert "gpu-train-7" in shown  # tool arguments
    assert "FinOps report" in shown  # the model's final reply
    assert "userMetadata.summary: tool stop_cluster(gpu-train-7, " in shown
    assert "userMetadata.summary: model step 5 · scripted" in shown
    # The five model requests carry the conversation: exactly they went to the store.
    assert shown.count("claimData.hash_value") == 5
    assert len([p for p in payload_dir.rglob("*") if p.is_file()]) >= 5


async def soak_run(client: Client, task_queue: str, registry: AgentRegistry) -> str:
    """A ``soak`` run whose tool returns 200 KB once: a big tool result and a long request."""
    workflow_id = f"soak-big-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="soak", task="steps=1 bytes=200000"),
            id=workflow_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
    assert result.status == "completed" and result.steps == 2
    return workflow_id


def references(history_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Every payload in a history (JSON form) that is an external-storage reference."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            metadata = node.get("metadata")
            if isinstance(metadata, dict) and "messageType" in metadata:
                if base64.b64decode(metadata["messageType"]).decode() == REFERENCE:
                    found.append(node)
                    return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(history_json)
    return found


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
async def test_codec_server_resolves_offloaded_payloads(
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    registry: AgentRegistry,
    tmp_path: Path,
    encrypt: bool,
) -> None:
    """A 200 KB tool result and the conversation are offloaded; the codec server's ``/decode``
    and ``/download`` return them resolved (and decrypted), the Temporal CLI pointed at it shows
    them, a wrong token is refused, and so is a namespace the server does not serve."""
    env = {"PAYLOAD_STORE_DIR": str(tmp_path / "payloads")}
    aes = None
    if encrypt:
        key = base64.b64encode(b"s" * 32).decode()
        env["DURABLE_AGENTS_CODEC_KEYS"] = f"k1={key}"
        keys = KeyRing.from_env(env)
        assert keys is not None
        aes = AesGcmCodec(keys)
    client = await Client.connect(
        address(temporal_env.client),
        namespace="default",
        data_converter=data_converter_from_env(env),
    )
    workflow_id = await soak_run(client, task_queue, registry)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    refs = references(json.loads(history.to_json()))
    # The 200 KB tool result and the second model request (which carries it); the first
    # request, the replies and the result are small and stay inline.
    assert len(refs) == 2

    app = create_app(aes, storage=storage_from_env(env), token=TOKEN, namespaces=["default"])
    with serving(app) as url:
        status, _, decoded = call(url, "POST", "/decode", {"payloads": refs}, auth())
        assert status == 200
        texts = [json_format.ParseDict(p, Payload()).data.decode() for p in decoded["payloads"]]
        assert not any(REFERENCE in t for t in texts)
        assert any("chunk 1: the quick brown fox" in t and len(t) > 200_000 for t in texts)
        assert any('"messages"' in t and "steps=1 bytes=200000" in t for t in texts)

        status, _, downloaded = call(url, "POST", "/download", {"payloads": refs[:1]}, auth())
        assert status == 200 and downloaded["payloads"] == decoded["payloads"][:1]
        inline = json_format.MessageToDict(Payload(metadata={"encoding": b"json/plain"}, data=b"1"))
        assert call(url, "POST", "/download", {"payloads": [inline]}, auth())[0] == 400

        assert call(url, "POST", "/decode", {"payloads": refs}, auth("wrong"))[0] == 401
        assert call(url, "POST", f"/t/{TOKEN}/decode", {"payloads": refs})[0] == 200
        assert call(url, "POST", "/t/wrong/decode", {"payloads": refs})[0] == 401
        other = {**auth(), "X-Namespace": "finance"}
        status, _, answer = call(url, "POST", "/decode", {"payloads": refs}, other)
        assert status == 403 and "'finance'" in answer["error"]

        shown = await temporal(
            client, "workflow", "show", "--workflow-id", workflow_id, "--detailed",
            "--codec-endpoint", url, "--codec-auth", f"Bearer {TOKEN}",
        )  # fmt: skip
    assert "claimData" not in shown
    assert "chunk 1: the quick brown fox" in shown
    plain = await temporal(client, "workflow", "show", "--workflow-id", workflow_id, "--detailed")
    assert "claimData" in plain


def test_codec_server_without_store_or_keys_is_refused() -> None:
    """``python -m durable_agents.codec.server`` with nothing to decode says so and exits 2."""
    from durable_agents.codec.server import main

    assert main(["--token", TOKEN], {"PAYLOAD_STORE": "off"}) == 2


async def test_codec_server_errors_name_the_missing_payload(tmp_path: Path) -> None:
    """A reference whose stored file is gone gets 422 naming it, not a crash."""
    env = {"PAYLOAD_STORE_DIR": str(tmp_path)}
    converter = data_converter_from_env(env)
    [reference] = await converter.encode(["x" * 40_000])
    for stored in tmp_path.rglob("*"):
        if stored.is_file():
            stored.unlink()
    with serving(create_app(storage=storage_from_env(env), token=TOKEN)) as url:
        status, _, answer = call(url, "POST", "/decode", as_json([reference]), auth())
    assert status == 422 and "cannot resolve a stored payload" in answer["error"]
