"""Wiring the codec into a data converter, and building it from the environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from durable_agents.codec._aesgcm import AesGcmCodec
from durable_agents.codec._keys import KeyRing


def encrypted(converter: DataConverter, codec: PayloadCodec) -> DataConverter:
    """``converter`` with ``codec`` applied to every payload, failures included.

    The failure converter is switched to ``DefaultFailureConverterWithEncodedAttributes``, which
    moves failure messages and stack traces into an encoded payload: error text often quotes
    the data it failed on, and would otherwise be stored in plaintext. The history then shows
    ``Encoded failure`` as the message until decoded (by a client with the codec, or the Web UI
    through the codec server).

    Args:
        converter: The converter to extend, e.g. ``pydantic_data_converter``.
        codec: The codec, e.g. ``AesGcmCodec(keys)``.

    Raises:
        ValueError: ``converter`` already has a payload codec; compose the two codecs into one
            instead of silently dropping the existing one.
    """
    if converter.payload_codec is not None and converter.payload_codec is not codec:
        raise ValueError(
            f"the data converter already has a payload codec "
            f"({type(converter.payload_codec).__name__}); compose the codecs into one"
        )
    return dataclasses.replace(
        converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def codec_from_env(environ: Mapping[str, str] | None = None) -> AesGcmCodec | None:
    """The AES-GCM codec for the keys in ``DURABLE_AGENTS_CODEC_KEYS`` or
    ``DURABLE_AGENTS_CODEC_KEY_FILE``, or ``None`` when neither is set.

    Raises:
        KeyRingError: The configured keys are unusable.
    """
    keys = KeyRing.from_env(environ)
    return AesGcmCodec(keys) if keys is not None else None
