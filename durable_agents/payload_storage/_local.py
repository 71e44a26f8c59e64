"""``LocalFileStorageDriver``: payloads as content-addressed files in a local directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from durable_agents.payload_storage._errors import (
    StoredPayloadCorruptError,
    StoredPayloadMissingError,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE_DIR = PROJECT_ROOT / ".data" / "payloads"
"""Where payload files go when neither an argument nor ``PAYLOAD_STORE_DIR`` says otherwise.

Anchored at the project root rather than the current directory, so ``worker.py`` and
``starter.py`` started from different directories still share one store."""

STORE_DIR_ENV = "PAYLOAD_STORE_DIR"
_HASH_ALGORITHM = "sha256"
_TEMP_PREFIX = ".tmp-"


class LocalFileStorageDriver(StorageDriver):
    """Stores payloads as files under one directory, named by the SHA-256 of their bytes.

    A payload's file is ``<directory>/<h[0:2]>/<h[2:4]>/<h>``, where ``h`` is the hex SHA-256 of
    the deterministically serialized ``Payload`` proto. Content addressing makes storing
    idempotent: a retried workflow task or activity that stores the same payload again finds
    the file already there and writes nothing (it only refreshes the file's modification time,
    which therefore tells when a payload was last stored). The claim recorded in history holds
    only the digest, never the directory, so the store can move as long as every reader is told
    where.

    Files are written to a temporary name in the same directory, flushed to disk and renamed
    into place, so a reader never sees a partial file and a crash leaves at most a stray
    ``.tmp-*`` file, never a truncated payload under its real name. All file I/O runs in a
    thread so the worker's event loop is never blocked.

    Every client, worker and replayer that reads these payloads must see the same directory:
    this driver suits a single machine (the embedded dev server, tests). Use S3 when workers run
    on several machines or in containers.

    .. warning::
        Built on the Temporal SDK's external storage API, which is experimental.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, driver_name: str = "local-file"
    ) -> None:
        """Creates the driver; the directory is created on the first store.

        Args:
            directory: Root of the store. ``None`` reads ``PAYLOAD_STORE_DIR``, falling back to
                ``.data/payloads`` under the project root.
            driver_name: The name recorded in each reference in history. Readers look the
                driver up by this name, so it must not change while runs that used it exist.
        """
        if directory is None:
            directory = os.environ.get(STORE_DIR_ENV) or DEFAULT_STORE_DIR
        self._root = Path(directory).expanduser().resolve()
        self._driver_name = driver_name

    @property
    def directory(self) -> Path:
        """The absolute root directory of the store."""
        return self._root

    def name(self) -> str:
        """The driver name recorded in history references."""
        return self._driver_name

    def type(self) -> str:
        """A stable identifier of this driver implementation."""
        return "durable-agents.local-file"

    def path_for(self, digest: str) -> Path:
        """The file that holds the payload with this hex SHA-256 digest."""
        return self._root / digest[0:2] / digest[2:4] / digest

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        """Writes each payload to its content-addressed file; returns one claim per payload.

        Args:
            context: Which workflow or activity the payloads belong to (unused: files are
                shared by content across runs).
            payloads: The payloads the SDK decided to offload.

        Returns:
            Claims holding the digest of each payload, in the order given.
        """
        # Map fields (Payload.metadata) serialize in arbitrary order unless asked otherwise;
        # deterministic bytes make equal payloads land in the same file.
        blobs = [payload.SerializeToString(deterministic=True) for payload in payloads]
        return await asyncio.to_thread(self._write_all, blobs)

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        """Reads back the payloads named by ``claims``, checking each one's digest.

        Raises:
            StoredPayloadMissingError: A claimed file does not exist.
            StoredPayloadCorruptError: A file's bytes do not match its digest.
            ValueError: A claim was not written by this driver.
        """
        return await asyncio.to_thread(self._read_all, list(claims))

    def _write_all(self, blobs: list[bytes]) -> list[StorageDriverClaim]:
        claims: list[StorageDriverClaim] = []
        for blob in blobs:
            digest = hashlib.sha256(blob).hexdigest()
            self._write_once(self.path_for(digest), blob)
            claims.append(
                StorageDriverClaim(
                    claim_data={"hash_algorithm": _HASH_ALGORITHM, "hash_value": digest}
                )
            )
        return claims

    @staticmethod
    def _write_once(path: Path, blob: bytes) -> None:
        try:
            if path.stat().st_size == len(blob):
                # Already stored: same name means same bytes. Touch it, so a file's modification
                # time is the last time any run stored it, which is what age-based cleanup needs.
                os.utime(path)
                return
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as temp:
                temp.write(blob)
                temp.flush()
                # The reference goes into durable history as soon as we return, so the bytes
                # must be on disk before the name appears.
                os.fsync(temp.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)

    def _read_all(self, claims: list[StorageDriverClaim]) -> list[Payload]:
        return [self._read_one(claim) for claim in claims]

    def _read_one(self, claim: StorageDriverClaim) -> Payload:
        algorithm = claim.claim_data.get("hash_algorithm")
        digest = claim.claim_data.get("hash_value", "")
        if algorithm != _HASH_ALGORITHM or len(digest) != 64:
            raise ValueError(
                f"driver {self._driver_name!r} cannot read claim {dict(claim.claim_data)!r}: "
                f"expected hash_algorithm {_HASH_ALGORITHM!r} and a 64-character hash_value"
            )
        path = self.path_for(digest)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoredPayloadMissingError(path, self._driver_name) from None
        actual = hashlib.sha256(blob).hexdigest()
        if actual != digest:
            raise StoredPayloadCorruptError(path, digest, actual)
        payload = Payload()
        payload.ParseFromString(blob)
        return payload


def _fsync_directory(directory: Path) -> None:
    """Makes a rename in ``directory`` durable (skipped where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
