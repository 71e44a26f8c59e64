"""Errors raised when a stored payload cannot be given back."""

from __future__ import annotations

from pathlib import Path


class StoredPayloadMissingError(FileNotFoundError):
    """A history references a payload whose file is not in the store.

    Usually the reading process points at another directory than the writer did
    (``PAYLOAD_STORE_DIR`` differs, or the two run on machines that share no filesystem), or
    the file was deleted.
    """

    def __init__(self, path: Path, driver_name: str) -> None:
        self.path = path
        super().__init__(
            f"stored payload not found: {str(path)!r} (driver {driver_name!r}). Every client, "
            "worker and replayer must share the same payload store; check PAYLOAD_STORE_DIR."
        )


class StoredPayloadCorruptError(ValueError):
    """A stored payload's bytes no longer hash to the digest its claim recorded."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path = path
        super().__init__(
            f"stored payload is corrupt: {str(path)!r} should hash to sha256:{expected} "
            f"but hashes to sha256:{actual}"
        )
