"""Keep large payloads out of Temporal history with the SDK's external storage.

Payloads at or above a size threshold (2 KiB by default) are written to a store and replaced in
history by a small reference; every client, worker and replayer configured with the same store
reads them back transparently. The store is a local directory by default
(:class:`LocalFileStorageDriver`) or an S3 bucket through the SDK's ``S3StorageDriver``,
chosen by :func:`storage_from_env`::

    storage = storage_from_env()
    client = await Client.connect(
        address, data_converter=with_storage(hinting_pydantic_data_converter, storage)
    )
    ...
    await close_storage(storage)

Which payloads leave history is decided per payload (``_hints``): values that carry the
conversation declare ``payload_storage_hint = "offload"`` and go out from 2 KiB on; the
``status`` query answer declares ``"inline"`` and never goes out; everything else stays inline
up to 32 KiB, so the Temporal CLI and Web UI show it as it is.

Errors raised when reading a stored payload back::

    FileNotFoundError
     └── StoredPayloadMissingError   the claimed file is not in the store
    ValueError
     └── StoredPayloadCorruptError   the file's bytes do not match the claimed digest

.. warning::
    Temporal's external storage API is experimental; see ``docs/payload-storage.md``.
"""

from durable_agents.payload_storage._config import (
    DEFAULT_OFFLOAD_THRESHOLD_BYTES,
    PayloadStoreKind,
    close_storage,
    storage_from_env,
    with_storage,
)
from durable_agents.payload_storage._errors import (
    StoredPayloadCorruptError,
    StoredPayloadMissingError,
)
from durable_agents.payload_storage._hints import (
    DEFAULT_INLINE_LIMIT_BYTES,
    STORAGE_HINT_METADATA,
    HintingPydanticPayloadConverter,
    StorageHint,
    hinting_pydantic_data_converter,
    payload_hint,
)
from durable_agents.payload_storage._local import DEFAULT_STORE_DIR, LocalFileStorageDriver

__all__ = [
    "DEFAULT_INLINE_LIMIT_BYTES",
    "DEFAULT_OFFLOAD_THRESHOLD_BYTES",
    "DEFAULT_STORE_DIR",
    "STORAGE_HINT_METADATA",
    "HintingPydanticPayloadConverter",
    "LocalFileStorageDriver",
    "PayloadStoreKind",
    "StorageHint",
    "StoredPayloadCorruptError",
    "StoredPayloadMissingError",
    "close_storage",
    "hinting_pydantic_data_converter",
    "payload_hint",
    "storage_from_env",
    "with_storage",
]
