"""Choose and attach external payload storage from the environment."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Literal, get_args

from temporalio.converter import DataConverter, ExternalStorage, StorageDriver

from durable_agents.payload_storage._hints import DEFAULT_INLINE_LIMIT_BYTES, hinted_selector
from durable_agents.payload_storage._local import (
    DEFAULT_STORE_DIR,
    STORE_DIR_ENV,
    LocalFileStorageDriver,
)

PayloadStoreKind = Literal["local", "s3", "off"]
"""Values of ``PAYLOAD_STORE``."""

DEFAULT_OFFLOAD_THRESHOLD_BYTES = 2 * 1024
"""Conversation-carrying payloads (hint ``offload``) at least this large go to the store; 2 KiB.

The goal is that the history bytes a step adds do not depend on how long the conversation is.
Every ``call_model`` activity carries the whole conversation so far (and a continue-as-new
input carries what is still needed of it), so the one payload per step that grows with the
conversation is exactly the kind that must leave history. A threshold of a couple of KiB sends
each of them out, leaving a reference of about 250 bytes in its place. The SDK's own default of
256 KiB would still let each step copy up to 256 KiB of conversation into history. Payloads
without that hint follow ``PAYLOAD_INLINE_LIMIT_BYTES`` instead (see ``_hints``)."""


def storage_from_env(environ: Mapping[str, str] | None = None) -> ExternalStorage | None:
    """The external storage the environment asks for, or ``None`` when it is off.

    Variables:
        ``PAYLOAD_STORE``: ``local`` (default), ``s3`` or ``off``.
        ``PAYLOAD_OFFLOAD_THRESHOLD_BYTES``: minimum size of a conversation-carrying payload
        to offload (default 2048).
        ``PAYLOAD_INLINE_LIMIT_BYTES``: other payloads stay in history below this size
        (default 32768); ``status`` query answers always stay inline.
        ``PAYLOAD_STORE_DIR``: the ``local`` store's directory (default ``.data/payloads``
        under the project root).
        ``PAYLOAD_STORE_S3_BUCKET``: the ``s3`` store's bucket (required for ``s3``; it must
        already exist).
        ``PAYLOAD_STORE_S3_PREFIX``: optional prefix for every object key.
        ``PAYLOAD_STORE_S3_ENDPOINT``, else ``AWS_ENDPOINT_URL_S3``: an S3-compatible endpoint.
        ``PAYLOAD_STORE_S3_REGION``, else the AWS chain (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
        profile).

    Args:
        environ: Where to read the variables; ``os.environ`` when ``None``.

    Returns:
        The storage to give to :func:`with_storage`, or ``None`` for ``PAYLOAD_STORE=off``.

    Raises:
        ValueError: An unknown ``PAYLOAD_STORE``, ``s3`` without a bucket, or a size that is
            not a non-negative integer.
    """
    env = os.environ if environ is None else environ
    kind = env.get("PAYLOAD_STORE", "").strip().lower() or "local"
    if kind not in get_args(PayloadStoreKind):
        choices = ", ".join(repr(k) for k in get_args(PayloadStoreKind))
        raise ValueError(f"PAYLOAD_STORE={env['PAYLOAD_STORE']!r} is not one of {choices}")
    if kind == "off":
        return None
    threshold = _size(env, "PAYLOAD_OFFLOAD_THRESHOLD_BYTES", DEFAULT_OFFLOAD_THRESHOLD_BYTES)
    inline_limit = _size(env, "PAYLOAD_INLINE_LIMIT_BYTES", DEFAULT_INLINE_LIMIT_BYTES)
    driver = (
        LocalFileStorageDriver(env.get(STORE_DIR_ENV) or DEFAULT_STORE_DIR)
        if kind == "local"
        else _s3_driver(env)
    )
    return ExternalStorage(
        drivers=[driver],
        # The selector sees every payload (it removes the storage hints) and applies both sizes.
        payload_size_threshold=0,
        driver_selector=hinted_selector(driver, threshold, inline_limit),
    )


def with_storage(converter: DataConverter, storage: ExternalStorage | None) -> DataConverter:
    """``converter`` with ``storage`` as its external storage (``None`` turns storage off).

    Give the result to ``Client.connect(data_converter=...)``: workers built on that client use
    it too. Every client, worker and ``Replayer`` that reads these histories needs the same
    storage (same drivers, same store), or decoding fails with ``TMPRL1105``.
    """
    return dataclasses.replace(converter, external_storage=storage)


async def close_storage(storage: ExternalStorage | None) -> None:
    """Releases connections held by the storage's drivers (the S3 client); safe to call twice."""
    if storage is None:
        return
    for driver in storage.drivers:
        aclose = getattr(driver, "aclose", None)
        if aclose is not None:
            await aclose()


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{name}={raw!r} is not a non-negative integer of bytes")
    return value


def _s3_driver(env: Mapping[str, str]) -> StorageDriver:
    # Imported here: aioboto3 and the S3 driver take over half a second to import, which
    # processes using the local store should not pay.
    from durable_agents.payload_storage._s3 import ClosableS3StorageDriver, LazyAioboto3S3Client

    bucket = env.get("PAYLOAD_STORE_S3_BUCKET", "").strip()
    if not bucket:
        raise ValueError(
            "PAYLOAD_STORE=s3 needs PAYLOAD_STORE_S3_BUCKET, the name of an existing bucket"
        )
    client = LazyAioboto3S3Client(
        endpoint_url=env.get("PAYLOAD_STORE_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or None,
        region_name=env.get("PAYLOAD_STORE_S3_REGION") or None,
        key_prefix=env.get("PAYLOAD_STORE_S3_PREFIX", ""),
    )
    return ClosableS3StorageDriver(client, bucket)
