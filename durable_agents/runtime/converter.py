"""The one data converter every client, worker and starter uses, from the environment.

pydantic JSON for our contracts, with each value's storage hint in its metadata; then, when
configured, AES-GCM encryption of every payload and failure message (``codec``:
``DURABLE_AGENTS_CODEC_KEYS`` / ``DURABLE_AGENTS_CODEC_KEY_FILE``); then external storage
(``payload_storage``: ``PAYLOAD_STORE``, default a local directory) for conversation-carrying
payloads from 2 KiB and any other payload from 32 KiB, so conversations and big tool outputs
never travel through history in full while ordinary results stay readable with the stock tools.
The SDK encodes before it offloads: stored payloads are ciphertext when encryption is on.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from durable_agents.codec import codec_from_env, encrypted
from durable_agents.payload_storage import (
    hinting_pydantic_data_converter,
    storage_from_env,
    with_storage,
)


def data_converter_from_env(environ: Mapping[str, str] | None = None) -> DataConverter:
    """pydantic, plus encryption and external storage as the environment configures them."""
    storage = storage_from_env(environ)
    # Storage hints only where the storage's selector removes them again (see payload_storage).
    converter = pydantic_data_converter if storage is None else hinting_pydantic_data_converter
    codec = codec_from_env(environ)
    if codec is not None:
        converter = encrypted(converter, codec)
    if storage is not None:
        converter = with_storage(converter, storage)
    return converter
