"""Which payloads leave history: storage hints set by the payload converter, read by the
driver selector.

The SDK's ``ExternalStorage`` asks ``driver_selector(context, payload)`` for every payload at or
above its size threshold. The context names only the workflow (an activity's input is stored on
behalf of the workflow that schedules it), and with encryption on the payload is ciphertext, so
neither says *what* the payload is. The payload converter does know: it sees the Python value.
So a value may declare a storage hint (``payload_storage_hint``, a class attribute or property),
the converter writes it into the payload's metadata, the codec moves it to the encrypted
envelope, and the selector reads it *and removes it*: the Temporal CLI prints a payload as JSON
only when its metadata is just its encoding, so no hint may reach history or the store. For
that the selector sees every payload (``ExternalStorage.payload_size_threshold=0``) and applies
the size limits itself. Use the hinting converter only together with this selector
(``storage_from_env`` builds it); without external storage, write no hints.

The rule:

- ``"offload"``: the payload carries the conversation (a model request, a continue-as-new
  input). It grows with the conversation, so it leaves history from the offload threshold on
  (2 KiB): history bytes per step stay flat however long the conversation.
- ``"inline"``: never stored (the ``status`` query answer: query answers never enter history,
  and the Temporal CLI must read them without a codec server).
- no hint: everything else (results, model replies, tool arguments and results, signals). These
  are small in the common case and stay inline, readable by the stock tools, up to the inline
  limit (32 KiB); larger ones leave history too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    StorageDriver,
    StorageDriverSelectContext,
)

StorageHint = Literal["offload", "inline"]
"""What a value says about where its payload belongs; see the module docstring."""

STORAGE_HINT_METADATA = "durable-agents-storage"
"""Payload metadata key holding a :data:`StorageHint` (plaintext, also on encrypted payloads)."""

DEFAULT_INLINE_LIMIT_BYTES = 32 * 1024
"""Payloads without a hint stay in history below this size (32 KiB).

Big enough for the common result, model reply and tool result, which the Web UI and
``temporal workflow show`` then display as they are; small enough that a step adds at most a
few tens of KiB to history, far from Temporal's 2 MB payload limit and its 256 KiB warning."""


def storage_hint(value: object) -> StorageHint | None:
    """The hint ``value`` declares (``payload_storage_hint``), or ``None``."""
    hint = getattr(value, "payload_storage_hint", None)
    return hint if hint in ("offload", "inline") else None


class HintingPydanticPayloadConverter(PydanticPayloadConverter):
    """The pydantic payload converter, plus each value's storage hint in its metadata."""

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            hint = storage_hint(value)
            if hint is not None:
                payload.metadata[STORAGE_HINT_METADATA] = hint.encode()
        return payloads


hinting_pydantic_data_converter = DataConverter(
    payload_converter_class=HintingPydanticPayloadConverter
)
"""``pydantic_data_converter`` that also writes storage hints: the base of every converter."""


def payload_hint(payload: Payload) -> StorageHint | None:
    """The storage hint written into ``payload``'s metadata, if any."""
    raw = payload.metadata.get(STORAGE_HINT_METADATA)
    if raw == b"offload":
        return "offload"
    if raw == b"inline":
        return "inline"
    return None


DriverSelector = Callable[[StorageDriverSelectContext, Payload], StorageDriver | None]
"""The shape of ``ExternalStorage.driver_selector``."""


def take_hint(payload: Payload) -> StorageHint | None:
    """The storage hint in ``payload``'s metadata, removed from it."""
    hint = payload_hint(payload)
    if STORAGE_HINT_METADATA in payload.metadata:
        del payload.metadata[STORAGE_HINT_METADATA]
    return hint


def hinted_selector(
    driver: StorageDriver, offload_threshold: int, inline_limit: int
) -> DriverSelector:
    """A ``driver_selector`` applying the rule of the module docstring with ``driver``.

    It takes the hint out of every payload it is shown, so give ``ExternalStorage`` a
    ``payload_size_threshold`` of 0: the SDK then shows it every payload, and it applies
    ``offload_threshold`` and ``inline_limit`` itself.
    """

    def select(context: StorageDriverSelectContext, payload: Payload) -> StorageDriver | None:
        hint = take_hint(payload)
        if hint == "inline":
            return None
        limit = offload_threshold if hint == "offload" else inline_limit
        return driver if payload.ByteSize() >= limit else None

    return select
