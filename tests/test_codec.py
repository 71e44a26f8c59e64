"""Payload encryption: the key ring, the AES-GCM codec, encoded failures, the codec server, and
real runs on the dev server whose Event History must hold no plaintext (and no API key)."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.applications import Starlette
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.providers.openai_provider import OpenAIProvider
from durable_agents import codec
from durable_agents.agents import AgentRegistry
from durable_agents.codec import (
    ENCRYPTED_ENCODING,
    KEY_FILE_ENV,
    KEY_ID_METADATA,
    KEYS_ENV,
    LOOPBACK_HOSTS,
    AesGcmCodec,
    DecryptionError,
    KeyRing,
    KeyRingError,
    UnknownKeyError,
    codec_from_env,
    create_app,
    encrypted,
    format_key_entry,
    generate_key,
)
from durable_agents.contracts import AgentInput, AgentResult
from durable_agents.runtime.devserver import find_temporal_cli
from tests.conftest import running_worker
from tests.fakes.llm_server import FakeLLMServer, Reply

REPO = Path(__file__).resolve().parent.parent
K1, K2, K3 = generate_key(), generate_key(), generate_key()
TOKEN = "test-codec-token-0123456789"
UI_ORIGIN = "http://localhost:8233"
API_KEY = "sk-test-DO-NOT-LEAK-1234"


def ring(*ids: str) -> KeyRing:
    """A key ring of the fixed test keys, in the order given (newest last)."""
    keys = {"k1": K1, "k2": K2, "k3": K3}
    return KeyRing((key_id, keys[key_id]) for key_id in ids)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def json_payload(value: Any) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


def test_public_api_is_pinned() -> None:
    """``codec.__all__`` is the public surface; additions and removals are deliberate."""
    assert sorted(codec.__all__) == [
        "AesGcmCodec",
        "CodecError",
        "DEFAULT_ORIGINS",
        "DecryptionError",
        "ENCRYPTED_ENCODING",
        "KEYS_ENV",
        "KEY_FILE_ENV",
        "KEY_ID_METADATA",
        "KeyRing",
        "KeyRingError",
        "LOOPBACK_HOSTS",
        "TOKEN_ENV",
        "UnknownKeyError",
        "codec_from_env",
        "create_app",
        "encrypted",
        "format_key_entry",
        "generate_key",
        "new_key_id",
    ]


# -- key ring ---------------------------------------------------------------------------------


def test_keys_from_env_string_newest_last() -> None:
    """Comma-separated entries (spaces tolerated) load in order; the last one is the newest."""
    keys = KeyRing.from_string(f" k1={b64(K1)} , k2={b64(K2)},")
    assert keys.ids == ("k1", "k2")
    assert keys.newest_id == "k2"
    assert keys.key("k1") == K1 and keys.key("k2") == K2
    assert b64(K1) not in repr(keys) and "k1" in repr(keys)


def test_keys_from_file_skip_blanks_and_comments(tmp_path: Path) -> None:
    """A key file takes one entry per line, skipping blank lines and ``#`` comments."""
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2025-01\n\nk1={b64(K1)}\n  # next\nk2={b64(K2)}  # current\n")
    keys = KeyRing.from_file(path)
    assert keys.ids == ("k1", "k2") and keys.newest_id == "k2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"k1={b64(K1)},k2={b64(K2[:24])}", "entry 2: key 'k2' is 24 bytes; AES-256 needs 32"),
        (f"k1={b64(K1)[:-2]}!!", "entry 1: key 'k1' is not valid base64"),
        (f"k1={b64(K1)},k1={b64(K2)}", "entry 2: key id 'k1' appears twice (first in"),
        (" , ", f"{KEYS_ENV} holds no keys"),
        (b64(K1), "entry 1: expected key_id=base64key"),  # a key pasted without its id
        (f"k1 {b64(K1)}", "entry 1: expected key_id=base64key"),
        (f"bad id={b64(K1)}", "entry 1: a key id must be 1-64 letters"),
    ],
    ids=["length", "base64", "duplicate", "empty", "no-id", "no-equals", "bad-id"],
)
def test_key_errors_name_the_entry_but_never_key_material(value: str, expected: str) -> None:
    """Each way a key list can be wrong gives a message saying where and what, without key
    material."""
    with pytest.raises(KeyRingError) as raised:
        KeyRing.from_string(value)
    message = str(raised.value)
    assert expected in message
    for key in (K1, K2):
        assert b64(key)[:16] not in message and b64(key[:24])[:16] not in message


def test_key_file_errors_name_the_line(tmp_path: Path) -> None:
    """Errors in a key file name the file and line; a file of comments only has no keys; a
    missing file says it cannot be read."""
    path = tmp_path / "keys"
    path.write_text(f"# keys\nk1={b64(K1)}\n\nk2={b64(K2[:16])}\n")
    with pytest.raises(KeyRingError, match=rf"{path}:4: key 'k2' is 16 bytes"):
        KeyRing.from_file(path)
    path.write_text("# nothing yet\n\n")
    with pytest.raises(KeyRingError, match="holds no keys"):
        KeyRing.from_file(path)
    with pytest.raises(KeyRingError, match="cannot read key file"):
        KeyRing.from_file(tmp_path / "missing")


def test_keys_from_env(tmp_path: Path) -> None:
    """``from_env`` reads either variable, returns None when neither is set (empty counts as
    unset) and refuses both at once."""
    assert KeyRing.from_env({}) is None
    assert KeyRing.from_env({KEYS_ENV: "", KEY_FILE_ENV: " "}) is None
    keys = KeyRing.from_env({KEYS_ENV: f"k1={b64(K1)},k2={b64(K2)}"})
    assert keys is not None and keys.newest_id == "k2"
    path = tmp_path / "keys"
    path.write_text(f"k3={b64(K3)}\n")
    keys = KeyRing.from_env({KEY_FILE_ENV: str(path)})
    assert keys is not None and keys.ids == ("k3",)
    with pytest.raises(KeyRingError, match="not both"):
        KeyRing.from_env({KEYS_ENV: f"k1={b64(K1)}", KEY_FILE_ENV: str(path)})
    assert codec_from_env({}) is None
    from_env = codec_from_env({KEYS_ENV: f"k1={b64(K1)}"})
    assert from_env is not None and from_env.keys.ids == ("k1",)


def test_key_ring_constructor_validates() -> None:
    """Keys given in code are held to the same rules as configured ones."""
    with pytest.raises(KeyRingError, match="holds no keys"):
        KeyRing([])
    with pytest.raises(KeyRingError, match="'k1' is 31 bytes"):
        KeyRing([("k1", K1[:31])])
    with pytest.raises(KeyRingError, match="'k1' appears more than once"):
        KeyRing([("k1", K1), ("k1", K2)])


def test_keys_cli_prints_a_usable_entry() -> None:
    """``python -m durable_agents.codec.keys new --id ID`` prints a line the key ring accepts,
    with a fresh 32-byte key; ``check`` lists the configured ids without key material."""
    new = subprocess.run(
        [sys.executable, "-m", "durable_agents.codec.keys", "new", "--id", "k9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    line = new.stdout.strip()
    keys = KeyRing.from_string(line)
    assert keys.ids == ("k9",) and len(keys.key("k9")) == 32
    assert format_key_entry("k9", keys.key("k9")) == line
    check = subprocess.run(
        [sys.executable, "-m", "durable_agents.codec.keys", "check"],
        cwd=REPO,
        env={**os.environ, KEYS_ENV: f"k1={b64(K1)},{line}", KEY_FILE_ENV: ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "k1, k9" in check.stdout and "new payloads use k9" in check.stdout
    assert line.split("=", 1)[1] not in check.stdout


# -- the codec ---------------------------------------------------------------------------------


async def test_round_trip_restores_every_payload_exactly() -> None:
    """Encode then decode gives back the same payloads (metadata and data), for JSON, null and
    binary values alike."""
    aes = AesGcmCodec(ring("k1"))
    originals = pydantic_data_converter.payload_converter.to_payloads(
        [{"task": "add 1 and 2"}, None, b"\x00\xff raw", "text"]
    )
    encoded = await aes.encode(originals)
    assert all(p.metadata["encoding"] == ENCRYPTED_ENCODING for p in encoded)
    assert all(p.metadata[KEY_ID_METADATA] == b"k1" for p in encoded)
    assert await aes.decode(encoded) == originals
    assert await aes.encode(encoded) == encoded  # already encrypted: left alone


async def test_ciphertext_holds_no_plaintext() -> None:
    """The encrypted payload shows neither the data nor its original encoding, and two
    encodings of the same value differ (a fresh nonce each time)."""
    aes = AesGcmCodec(ring("k1"))
    secret = "the launch code is 0000-SECRET-0000"
    original = json_payload({"secret": secret})
    first, second = await aes.encode([original, original])
    for payload in (first, second):
        raw = payload.SerializeToString()
        assert secret.encode() not in raw and b"SECRET" not in raw
        assert first.data != second.data
    assert first.data[:12] != second.data[:12]


async def test_plain_payloads_pass_through_decode() -> None:
    """Payloads written before encryption was turned on still decode (unchanged)."""
    aes = AesGcmCodec(ring("k1"))
    plain = json_payload({"written": "before encryption"})
    assert await aes.decode([plain]) == [plain]


async def test_rotation_decodes_old_keys_and_encrypts_with_the_newest() -> None:
    """After a key is added, payloads under the old key still decode and new payloads use the
    new key id; a process that lacks the new key cannot read them."""
    original = json_payload({"step": 1})
    before = AesGcmCodec(ring("k1"))
    after = AesGcmCodec(ring("k1", "k2"))
    [old] = await before.encode([original])
    assert await after.decode([old]) == [original]
    [new] = await after.encode([original])
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    assert await after.decode([new]) == [original]
    with pytest.raises(UnknownKeyError) as raised:
        await before.decode([new])
    assert raised.value.key_id == "k2"


async def test_unknown_key_id_is_named() -> None:
    """A payload under a key the ring does not hold fails with an error naming that key id
    (and the ids that are known), never key material."""
    [payload] = await AesGcmCodec(ring("k3")).encode([json_payload(1)])
    with pytest.raises(UnknownKeyError) as raised:
        await AesGcmCodec(ring("k1", "k2")).decode([payload])
    message = str(raised.value)
    assert "'k3'" in message and "k1, k2" in message
    assert raised.value.key_id == "k3"
    assert all(b64(key)[:16] not in message for key in (K1, K2, K3))


async def test_tampering_is_detected() -> None:
    """A flipped ciphertext bit, a key id swapped for another known key, a truncated payload
    and a missing key id all fail authentication instead of decoding to something else."""
    aes = AesGcmCodec(ring("k1", "k2"))
    [payload] = await aes.encode([json_payload({"amount": 10})])

    flipped = Payload()
    flipped.CopyFrom(payload)
    flipped.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    swapped = Payload()
    swapped.CopyFrom(payload)
    swapped.metadata[KEY_ID_METADATA] = b"k1"  # encrypted with k2
    truncated = Payload()
    truncated.CopyFrom(payload)
    truncated.data = payload.data[:20]
    anonymous = Payload()
    anonymous.CopyFrom(payload)
    del anonymous.metadata[KEY_ID_METADATA]

    for tampered, key_id, why in [
        (flipped, "k2", "failed authentication"),
        (swapped, "k1", "failed authentication"),
        (truncated, "k2", "truncated"),
        (anonymous, None, "no 'encryption-key-id' metadata"),
    ]:
        with pytest.raises(DecryptionError, match=why) as raised:
            await aes.decode([tampered])
        assert raised.value.key_id == key_id


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    """With ``encrypted(...)``, an error's message, stack trace and details travel only inside
    the encrypted ``encoded_attributes`` payload, and decode back to the same error."""
    converter = encrypted(pydantic_data_converter, AesGcmCodec(ring("k1")))
    secret = "card 4111-1111-1111-1111 was declined"
    try:
        raise ApplicationError(secret, {"card": "4111-1111"}, type="PaymentDeclined")
    except ApplicationError as error:
        failure = Failure()
        await converter.encode_failure(error, failure)
    raw = failure.SerializeToString()
    assert b"4111" not in raw and b"declined" not in raw
    assert b"test_failure_messages" not in raw  # the stack trace names this function
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCRYPTED_ENCODING
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == secret and decoded.type == "PaymentDeclined"
    assert decoded.details == ({"card": "4111-1111"},)

    plain = Failure()  # the control: without the helper the message is stored as is
    await pydantic_data_converter.encode_failure(ApplicationError(secret), plain)
    assert b"4111" in plain.SerializeToString()


def test_encrypted_refuses_to_drop_an_existing_codec() -> None:
    """``encrypted`` will not silently replace a codec the converter already has."""
    first = encrypted(pydantic_data_converter, AesGcmCodec(ring("k1")))
    with pytest.raises(ValueError, match="already has a payload codec"):
        encrypted(first, AesGcmCodec(ring("k2")))
    assert first.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert first.failure_converter_class is DefaultFailureConverterWithEncodedAttributes


# -- the codec server --------------------------------------------------------------------------


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a thread; yields its base URL.

    The socket is listening before the thread starts, so requests never race the startup.
    """
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def call(
    base_url: str,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns status, lower-cased headers and the body (parsed if JSON)."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        connection.request(method, path, body=data, headers=dict(headers or {}))
        response = connection.getresponse()
        raw = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    is_json = found.get("content-type", "").startswith("application/json")
    return response.status, found, json.loads(raw) if is_json else raw


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


@pytest.fixture
def codec_server() -> Iterator[str]:
    with serving(create_app(AesGcmCodec(ring("k1", "k2")), token=TOKEN)) as url:
        yield url


def test_server_requires_the_bearer_token(codec_server: str) -> None:
    """A POST without a token, with a wrong token or with another scheme is refused with 401
    and a JSON error; nothing is decoded."""
    body = as_json([json_payload("x")])
    for headers, error in [
        ({}, "missing 'Authorization: Bearer <token>' header"),
        (auth("wrong-token"), "invalid bearer token"),
        (auth(TOKEN[:-1]), "invalid bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "missing 'Authorization: Bearer <token>' header"),
    ]:
        for path in ("/encode", "/decode"):
            status, found, answer = call(codec_server, "POST", path, body, headers)
            assert status == 401, (path, headers)
            assert answer == {"error": error}
            assert found["www-authenticate"] == "Bearer"


def test_server_cors_allows_only_configured_origins(codec_server: str) -> None:
    """The Web UI's origin passes the preflight (with credentials and the headers it sends)
    and gets ``Access-Control-Allow-Origin`` on responses; any other origin gets neither."""
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    status, found, _ = call(
        codec_server, "OPTIONS", "/decode", None, {"Origin": UI_ORIGIN, **preflight}
    )
    assert status == 200
    assert found["access-control-allow-origin"] == UI_ORIGIN
    assert found["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in found["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    assert "POST" in found["access-control-allow-methods"]

    evil = "http://evil.example"
    status, found, _ = call(codec_server, "OPTIONS", "/decode", None, {"Origin": evil, **preflight})
    assert status == 400
    assert "access-control-allow-origin" not in found

    body = as_json([json_payload("x")])
    status, found, _ = call(codec_server, "POST", "/encode", body, {**auth(), "Origin": UI_ORIGIN})
    assert status == 200 and found["access-control-allow-origin"] == UI_ORIGIN
    status, found, _ = call(codec_server, "POST", "/encode", body, {"Origin": UI_ORIGIN})
    assert status == 401 and found["access-control-allow-origin"] == UI_ORIGIN  # UI sees why
    status, found, _ = call(codec_server, "POST", "/encode", body, {**auth(), "Origin": evil})
    assert "access-control-allow-origin" not in found


async def test_server_encode_then_decode_round_trip(codec_server: str) -> None:
    """``/encode`` returns payloads encrypted with the newest key (readable by the workers'
    codec), and ``/decode`` (also under a namespace segment) turns them back into the
    originals, in protobuf JSON."""
    originals = pydantic_data_converter.payload_converter.to_payloads(
        [{"task": "secret task"}, None, "text"]
    )
    headers = {**auth(), "X-Namespace": "default", "Origin": UI_ORIGIN}
    status, _, encoded = call(codec_server, "POST", "/encode", as_json(originals), headers)
    assert status == 200
    assert "secret task" not in json.dumps(encoded)
    payloads = [json_format.ParseDict(p, Payload()) for p in encoded["payloads"]]
    assert all(p.metadata[KEY_ID_METADATA] == b"k2" for p in payloads)
    assert await AesGcmCodec(ring("k2")).decode(payloads) == originals

    for path in ("/decode", "/default/decode"):  # the CLI may template in the namespace
        status, _, decoded = call(codec_server, "POST", path, encoded, headers)
        assert status == 200
        assert [json_format.ParseDict(p, Payload()) for p in decoded["payloads"]] == originals
        assert decoded == as_json(originals)
    assert call(codec_server, "POST", "/decode", {"payloads": []}, auth())[2] == {"payloads": []}


def test_server_rejects_malformed_bodies(codec_server: str) -> None:
    """A body that is not JSON, or not ``{"payloads": [...]}``, gets 400 and a clear error."""
    for body, error in [
        (b"{not json", "request body is not valid JSON"),
        (b"\xff\xfe", "request body is not valid JSON"),
        (b"[]", 'request body must be a JSON object {"payloads": [...]}'),
        (b'{"payloads": "x"}', 'request body is not {"payloads": [Payload, ...]}'),
        (b'{"payloads": [{"data": "a"}]}', 'request body is not {"payloads": [Payload, ...]}'),
        (b'{"items": []}', 'request body is not {"payloads": [Payload, ...]}'),
    ]:
        status, _, answer = call(codec_server, "POST", "/decode", body, auth())
        assert status == 400, body
        assert answer["error"].startswith(error), (body, answer)


async def test_server_decode_error_names_the_key(codec_server: str) -> None:
    """A payload under a key the server does not hold gets 400 naming that key id."""
    foreign = await AesGcmCodec(ring("k3")).encode([json_payload("x")])
    status, _, answer = call(codec_server, "POST", "/decode", as_json(foreign), auth())
    assert status == 400
    assert "'k3'" in answer["error"]
    assert b64(K3)[:16] not in answer["error"]


def test_server_bound_to_loopback_rejects_foreign_host_names() -> None:
    """With loopback host names required, a request naming another host (as after DNS
    rebinding) is refused before the token is even looked at; loopback names pass."""
    app = create_app(
        AesGcmCodec(ring("k1")), token=None, insecure_no_auth=True, allowed_hosts=LOOPBACK_HOSTS
    )
    body = as_json([json_payload("x")])
    with serving(app) as url:
        status, _, answer = call(url, "POST", "/encode", body, {"Host": "evil.example:8081"})
        assert status == 400 and "is not allowed" in answer["error"]
        for host in ("localhost:8081", "127.0.0.1"):
            assert call(url, "POST", "/encode", body, {"Host": host})[0] == 200


def test_create_app_needs_a_token_or_an_explicit_opt_out() -> None:
    """Building the app without a token is refused unless ``insecure_no_auth`` is passed."""
    aes = AesGcmCodec(ring("k1"))
    with pytest.raises(ValueError, match="needs a token"):
        create_app(aes, token=None)
    with pytest.raises(ValueError, match="token is empty"):
        create_app(aes, token="  ")


def server_process(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable_agents.codec.server",
            "--port",
            "0",
            "--log-level",
            "warning",
            *args,
        ],
        cwd=REPO,
        env={**os.environ, KEYS_ENV: f"k1={b64(K1)}", KEY_FILE_ENV: "", **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def test_server_cli_refuses_to_start_without_a_token() -> None:
    """``python -m durable_agents.codec.server`` with neither ``--token`` nor the env var exits
    with an error that says how to fix it, and never listens."""
    process = server_process(DURABLE_AGENTS_CODEC_TOKEN="")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "refusing to start without a token" in stderr
    assert "listening" not in stderr


def test_server_cli_without_auth_warns_and_serves() -> None:
    """With ``--insecure-no-auth`` the server warns loudly, then answers without a token."""
    process = server_process("--insecure-no-auth", DURABLE_AGENTS_CODEC_TOKEN="")
    try:
        assert process.stderr is not None
        lines: list[str] = []
        while not (lines and "listening on" in lines[-1]):
            line = process.stderr.readline()
            assert line, f"server exited: {''.join(lines)}"
            lines.append(line)
        assert "WARNING: codec server running WITHOUT authentication" in "".join(lines)
        url = lines[-1].split("listening on ", 1)[1].split()[0]
        status, _, answer = call(url, "POST", "/encode", as_json([json_payload("x")]))
        assert status == 200 and answer["payloads"][0]["metadata"][KEY_ID_METADATA]
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stderr is not None:
            process.stderr.close()


# -- end to end on the dev server ---------------------------------------------------------------


@pytest.fixture
def aes() -> AesGcmCodec:
    return AesGcmCodec(ring("k1", "k2"))


@pytest.fixture
async def encrypted_client(temporal_env: WorkflowEnvironment, aes: AesGcmCodec) -> Client:
    """A client on the session's dev server whose converter encrypts with ``aes``."""
    return await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace="default",
        data_converter=encrypted(pydantic_data_converter, aes),
    )


async def run_adder(
    client: Client, task_queue: str, registry: AgentRegistry, task: str
) -> tuple[str, AgentResult, WorkflowHistory]:
    """Run ``test-adder`` to completion on ``client``; returns its id, result and history."""
    workflow_id = f"codec-{uuid.uuid4()}"
    async with running_worker(client, task_queue, registry):
        result = await client.execute_workflow(
            "AgentWorkflow",
            AgentInput(agent="test-adder", task=task),
            id=workflow_id,
            task_queue=task_queue,
            result_type=AgentResult,
        )
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return workflow_id, result, history


def history_bytes(history: WorkflowHistory) -> bytes:
    return History(events=history.events).SerializeToString()


def forms(text: str) -> set[str]:
    """The ways ``text`` can be stored: as is, escaped inside a JSON string, and (when it is
    JSON) re-serialized compactly."""
    found = {text, json.dumps(text)[1:-1]}
    try:
        found.add(json.dumps(json.loads(text), separators=(",", ":")))
    except ValueError:
        pass
    return found


def secrets_of(task: str, result: AgentResult) -> list[str]:
    """What must not be readable in history: the task, tool arguments and outputs, the answer."""
    assert len(result.tool_calls) == 2  # the run did call its tools
    texts = [task, result.output]
    for call_record in result.tool_calls:
        texts += [call_record.arguments, call_record.result_preview]
    return texts


def plaintext_payloads(history: WorkflowHistory) -> list[str]:
    """Paths of payloads in ``history`` that are not encrypted, aside from those the SDK never
    encodes: search attributes, headers, and the bookkeeping of local activity markers
    (``details[data]``: sequence number, attempt, activity type, times; the local activity's
    result is in ``details[result]``, encrypted)."""

    def walk(message: Message, path: str) -> Iterator[tuple[str, Payload]]:
        if isinstance(message, Payload):
            yield path, message
            return
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(item, Message):
                        yield from walk(item, f"{path}.{field.name}[{key}]")
            elif field.is_repeated:
                for index, item in enumerate(value):
                    yield from walk(item, f"{path}.{field.name}[{index}]")
            else:
                yield from walk(value, f"{path}.{field.name}")

    return [
        path
        for event in history.events
        for path, payload in walk(event, f"event{event.event_id}")
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING
        and ".search_attributes" not in path
        and ".header" not in path
        and ".marker_recorded_event_attributes.details[data]" not in path
    ]


async def test_encrypted_run_leaves_no_plaintext_in_history(
    encrypted_client: Client,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """A whole agent run through an encrypted client and worker: the task, tool arguments, tool
    outputs and the answer appear nowhere in the stored history (JSON or raw proto bytes),
    every payload in it is encrypted with the newest key, and the result still decodes through
    the encrypted client (but not through a client without the keys)."""
    task = f"Add the numbers in ledger PLAINTEXT-{uuid.uuid4().hex}"
    workflow_id, result, history = await run_adder(encrypted_client, task_queue, registry, task)
    assert result.status == "completed" and result.output == "The sums are 3 and 42."

    raw, as_text = history_bytes(history), history.to_json()
    for secret in secrets_of(task, result):
        for form in forms(secret):
            assert form.encode() not in raw, form
            assert form not in as_text, form
    assert plaintext_payloads(history) == []
    [started_input] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert started_input.metadata[KEY_ID_METADATA] == b"k2"  # the newest key

    handle = encrypted_client.get_workflow_handle(workflow_id, result_type=AgentResult)
    assert await handle.result() == result
    keyless = temporal_env.client.get_workflow_handle(workflow_id, result_type=AgentResult)
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await keyless.result()


async def test_plain_run_shows_plaintext_in_history(
    client: Client, task_queue: str, registry: AgentRegistry
) -> None:
    """The control for the test above: without encryption every secret is readable in the raw
    history bytes, so the scan there would catch a leak."""
    task = f"Add the numbers in ledger PLAINTEXT-{uuid.uuid4().hex}"
    _, result, history = await run_adder(client, task_queue, registry, task)
    raw = history_bytes(history)
    for secret in secrets_of(task, result):
        assert any(form.encode() in raw for form in forms(secret)), secret
    assert plaintext_payloads(history) != []


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
async def test_api_key_never_reaches_history(
    temporal_env: WorkflowEnvironment,
    aes: AesGcmCodec,
    task_queue: str,
    registry: AgentRegistry,
    encrypt: bool,
) -> None:
    """A run on a real provider SDK (against the fake OpenAI API) authenticates with the API
    key, yet the key is nowhere in history, with or without encryption: keys live in the
    worker's provider clients, never in workflow or activity inputs."""
    converter = encrypted(pydantic_data_converter, aes) if encrypt else pydantic_data_converter
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace="default",
        data_converter=converter,
    )
    with FakeLLMServer() as llm:
        llm.enqueue(Reply(text="Nothing to add."))
        providers = {
            "openai": OpenAIProvider(
                openai.AsyncOpenAI(api_key=API_KEY, base_url=llm.openai_base_url, max_retries=0)
            )
        }
        workflow_id = f"codec-key-{uuid.uuid4()}"
        async with running_worker(client, task_queue, registry, providers):
            result = await client.execute_workflow(
                "AgentWorkflow",
                AgentInput(agent="test-adder", task="add nothing", model="openai:gpt-4.1-mini"),
                id=workflow_id,
                task_queue=task_queue,
                result_type=AgentResult,
            )
        assert llm.requests[0].header("authorization") == f"Bearer {API_KEY}"
    assert result.output == "Nothing to add."
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for needle in (API_KEY, "DO-NOT-LEAK"):
        assert needle.encode() not in history_bytes(history)
        assert needle not in history.to_json()


async def test_temporal_cli_reads_results_through_the_codec_server(
    encrypted_client: Client,
    temporal_env: WorkflowEnvironment,
    aes: AesGcmCodec,
    task_queue: str,
    registry: AgentRegistry,
) -> None:
    """The ``temporal`` CLI, pointed at the codec server with the bearer token, shows the
    decrypted result; without the codec server it shows only ciphertext. This is the protocol
    the Web UI speaks too."""
    workflow_id, result, _ = await run_adder(encrypted_client, task_queue, registry, "add")
    command = [
        find_temporal_cli(),
        "workflow",
        "result",
        "--workflow-id",
        workflow_id,
        "--address",
        temporal_env.client.service_client.config.target_host,
    ]
    with serving(create_app(aes, token=TOKEN)) as url:
        decoded = await run([*command, "--codec-endpoint", url, "--codec-auth", f"Bearer {TOKEN}"])
    assert result.output in decoded
    encoded = await run(command)
    assert result.output not in encoded and "YmluYXJ5L2VuY3J5cHRlZA==" in encoded


async def run(command: list[str]) -> str:
    """Run a command without blocking the event loop; returns its stdout (it must succeed)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()
