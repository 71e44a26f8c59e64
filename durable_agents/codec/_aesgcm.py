"""AES-256-GCM payload codec: whole payloads (metadata and data) encrypted before they leave the
process, so the Temporal server and its database only ever store ciphertext.

An encrypted payload looks like this::

    metadata: {"encoding": b"binary/encrypted", "encryption-key-id": b"<key id>"}
              (plus the payload-storage hint, if the payload has one)
    data:     12-byte random nonce || AES-GCM ciphertext and 16-byte tag

The plaintext is the serialized original ``Payload`` proto, so its encoding (``json/plain``,
``binary/null`` ...) is hidden too and restored exactly on decode. The key id is the associated
data: a payload whose key-id metadata was changed fails authentication instead of decrypting to
garbage. The codec runs in the worker and client processes, outside the workflow sandbox.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from durable_agents.codec._errors import DecryptionError
from durable_agents.codec._keys import KeyRing
from durable_agents.payload_storage import STORAGE_HINT_METADATA

ENCRYPTED_ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata value of a payload this codec encrypted."""

KEY_ID_METADATA = "encryption-key-id"
"""Metadata key naming the key a payload was encrypted with."""

NONCE_SIZE = 12
"""Bytes of random nonce in front of each ciphertext (96 bits, as GCM recommends)."""

_TAG_SIZE = 16

PLAINTEXT_METADATA: tuple[str, ...] = (STORAGE_HINT_METADATA,)
"""Metadata moved onto the encrypted envelope: the payload-storage hint (``offload`` or
``inline``), which external storage reads (and removes) after the codec has run. It says what
kind of payload this is, nothing of its content."""


class AesGcmCodec(PayloadCodec):
    """Encrypts every payload with the newest key of a ``KeyRing``; decrypts with any of them.

    Rotation: add a new key at the end of the ring on every process that encodes or decodes.
    New payloads use it at once; payloads written under older keys still decode as long as
    their keys stay in the ring.

    Args:
        keys: The key ring; its newest key encrypts.
    """

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        self._ciphers = {key_id: AESGCM(keys.key(key_id)) for key_id in keys}

    @property
    def keys(self) -> KeyRing:
        """The key ring this codec encrypts and decrypts with."""
        return self._keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the newest key.

        Payloads that are already encrypted are passed through, so encoding is idempotent.
        """
        return [p if _is_encrypted(p) else self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload; others (never encrypted) pass through unchanged.

        Raises:
            UnknownKeyError: A payload names a key that is not in the ring.
            DecryptionError: A payload fails authentication (altered data or key id) or is not
                a payload once decrypted.
        """
        return [self.decrypt(p) if _is_encrypted(p) else p for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """Encrypt one payload with the newest key (synchronous form of ``encode``)."""
        key_id = self._keys.newest_id
        metadata = {"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode()}
        moved = {k: v for k, v in payload.metadata.items() if k in PLAINTEXT_METADATA}
        if moved:
            metadata.update(moved)
            payload = Payload(
                metadata={k: v for k, v in payload.metadata.items() if k not in moved},
                data=payload.data,
                external_payloads=payload.external_payloads,
            )
        nonce = secrets.token_bytes(NONCE_SIZE)
        ciphertext = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), key_id.encode()
        )
        return Payload(metadata=metadata, data=nonce + ciphertext)

    def decrypt(self, payload: Payload) -> Payload:
        """Decrypt one encrypted payload (synchronous form of ``decode``)."""
        raw_key_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_key_id is None:
            raise DecryptionError(
                f"encrypted payload has no {KEY_ID_METADATA!r} metadata", key_id=None
            )
        key_id = raw_key_id.decode("utf-8", errors="replace")
        self._keys.key(key_id)  # raises UnknownKeyError naming the id and the known ones
        data = payload.data
        if len(data) < NONCE_SIZE + _TAG_SIZE:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r} is truncated ({len(data)} bytes)",
                key_id=key_id,
            )
        try:
            plaintext = self._ciphers[key_id].decrypt(
                data[:NONCE_SIZE], data[NONCE_SIZE:], raw_key_id
            )
        except InvalidTag:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r} failed authentication: its data or key "
                f"id was altered, or key {key_id!r} is not the key it was encrypted with",
                key_id=key_id,
            ) from None
        try:
            return Payload.FromString(plaintext)
        except DecodeError:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r} does not hold a payload", key_id=key_id
            ) from None


def _is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCRYPTED_ENCODING
