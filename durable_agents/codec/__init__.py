"""Payload encryption for durable-agents: an AES-256-GCM codec, its key ring and a codec server.

Workers and starters encrypt every payload (workflow and activity inputs and results, signals,
queries, memos, failure messages) before it reaches the Temporal server; only processes holding
the keys can read them. The Web UI and the ``temporal`` CLI read them through the codec server
(``python -m durable_agents.codec.server``). Setup, rotation and what stays in plaintext:
docs/encryption.md.

Usage::

    codec = codec_from_env()  # None when no keys are configured
    converter = encrypted(pydantic_data_converter, codec) if codec else pydantic_data_converter
    client = await Client.connect(address, data_converter=converter)

Errors::

    CodecError
    ├── KeyRingError          unusable key configuration (base64, length, duplicates, no keys)
    └── DecryptionError       a payload that cannot be decrypted (``.key_id`` names its key)
        └── UnknownKeyError   its key is not in the ring
"""

from durable_agents.codec._aesgcm import ENCRYPTED_ENCODING, KEY_ID_METADATA, AesGcmCodec
from durable_agents.codec._converter import codec_from_env, encrypted
from durable_agents.codec._errors import CodecError, DecryptionError, KeyRingError, UnknownKeyError
from durable_agents.codec._keys import (
    KEY_FILE_ENV,
    KEYS_ENV,
    KeyRing,
    format_key_entry,
    generate_key,
    new_key_id,
)
from durable_agents.codec._server import DEFAULT_ORIGINS, LOOPBACK_HOSTS, TOKEN_ENV, create_app

__all__ = [
    "DEFAULT_ORIGINS",
    "ENCRYPTED_ENCODING",
    "KEYS_ENV",
    "KEY_FILE_ENV",
    "KEY_ID_METADATA",
    "LOOPBACK_HOSTS",
    "TOKEN_ENV",
    "AesGcmCodec",
    "CodecError",
    "DecryptionError",
    "KeyRing",
    "KeyRingError",
    "UnknownKeyError",
    "codec_from_env",
    "create_app",
    "encrypted",
    "format_key_entry",
    "generate_key",
    "new_key_id",
]
