"""The one data converter every client, worker and starter uses, from the environment.

pydantic JSON for our contracts; then, when configured, AES-GCM encryption of every payload and
failure message (``codec``: ``DURABLE_AGENTS_CODEC_KEYS`` / ``DURABLE_AGENTS_CODEC_KEY_FILE``);
then external storage for large payloads (``payload_storage``: ``PAYLOAD_STORE``, default a local
directory), so conversations and big tool outputs never travel through history in full. The SDK
encodes before it offloads: stored payloads are ciphertext when encryption is on.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from codec import codec_from_env, encrypted
from payload_storage import storage_from_env, with_storage


def data_converter_from_env(environ: Mapping[str, str] | None = None) -> DataConverter:
    """pydantic, plus encryption and external storage as the environment configures them."""
    converter = pydantic_data_converter
    codec = codec_from_env(environ)
    if codec is not None:
        converter = encrypted(converter, codec)
    storage = storage_from_env(environ)
    if storage is not None:
        converter = with_storage(converter, storage)
    return converter
