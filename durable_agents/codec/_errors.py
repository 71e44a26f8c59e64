"""Errors of the codec package. Messages name key ids, never key material."""

from __future__ import annotations


class CodecError(Exception):
    """Base class of every error this package raises."""


class KeyRingError(CodecError):
    """The key configuration is unusable: bad base64, wrong length, duplicate ids, no keys."""


class DecryptionError(CodecError):
    """An encrypted payload could not be decrypted.

    Attributes:
        key_id: The key id the payload names in its metadata (``None`` when it names none).
    """

    def __init__(self, message: str, *, key_id: str | None) -> None:
        super().__init__(message)
        self.key_id = key_id


class UnknownKeyError(DecryptionError):
    """The payload was encrypted with a key that is not in this key ring."""
