"""Named AES-256 keys, read from the environment: the newest encrypts, any of them decrypts.

Two sources, one at a time:

- ``DURABLE_AGENTS_CODEC_KEYS``: comma-separated ``key_id=base64key`` entries, newest last.
- ``DURABLE_AGENTS_CODEC_KEY_FILE``: a file with one ``key_id=base64key`` per line, newest last;
  blank lines and ``#`` comments are ignored.

Keys are configuration of the processes that hold them (workers, starters, the codec server),
never workflow inputs, so they never reach workflow history. Error messages name the key id and
the entry or line, never key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from durable_agents.codec._errors import KeyRingError, UnknownKeyError

KEYS_ENV = "DURABLE_AGENTS_CODEC_KEYS"
"""Comma-separated ``key_id=base64key`` entries, newest last."""

KEY_FILE_ENV = "DURABLE_AGENTS_CODEC_KEY_FILE"
"""Path of a file with one ``key_id=base64key`` per line, newest last."""

KEY_SIZE = 32
"""Bytes in an AES-256 key."""

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def generate_key() -> bytes:
    """A new random AES-256 key (32 bytes from the operating system's CSPRNG)."""
    return secrets.token_bytes(KEY_SIZE)


def new_key_id() -> str:
    """A fresh key id such as ``key-20250101-3f9a1c``: sortable by date, unique by suffix."""
    return f"key-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def format_key_entry(key_id: str, key: bytes) -> str:
    """The ``key_id=base64key`` line for one key, as the env var and the key file expect it."""
    _check_key_id(key_id, where="key entry")
    return f"{key_id}={base64.b64encode(key).decode('ascii')}"


class KeyRing:
    """An ordered set of named AES-256 keys, oldest first; the last one is the newest.

    Args:
        keys: ``(key_id, key)`` pairs, oldest first. Ids are 1-64 letters, digits, ``.``,
            ``_`` or ``-`` and unique; each key is exactly 32 bytes.

    Raises:
        KeyRingError: An id is malformed or repeated, a key has the wrong length, or there are
            no keys at all.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._keys: dict[str, bytes] = {}
        for key_id, key in keys:
            _check_key_id(key_id, where="key ring")
            if key_id in self._keys:
                raise KeyRingError(f"key id {key_id!r} appears more than once")
            _check_key_length(key_id, key, where="key ring")
            self._keys[key_id] = bytes(key)
        if not self._keys:
            raise KeyRingError("the key ring holds no keys")

    @classmethod
    def from_string(cls, value: str, *, source: str = KEYS_ENV) -> KeyRing:
        """Parse comma-separated ``key_id=base64key`` entries, newest last.

        Args:
            value: The entries, e.g. the value of ``DURABLE_AGENTS_CODEC_KEYS``.
            source: What to call the value in error messages.
        """
        entries = (
            (f"{source} entry {number}", text.strip())
            for number, text in enumerate(value.split(","), start=1)
        )
        return cls._parse(((where, text) for where, text in entries if text), source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read one ``key_id=base64key`` per line, newest last; blank lines and ``#`` comments
        are skipped.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise KeyRingError(f"cannot read key file {str(path)!r}: {error.strerror}") from None
        lines = (
            (f"{path}:{number}", line.split("#", 1)[0].strip())
            for number, line in enumerate(text.splitlines(), start=1)
        )
        return cls._parse(
            ((where, entry) for where, entry in lines if entry), source=f"key file {str(path)!r}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """The key ring configured in the environment, or ``None`` when none is.

        An empty (or blank) variable counts as unset, as container tooling passes unset
        variables through as empty strings.

        Raises:
            KeyRingError: Both variables are set, or the one that is set holds no usable keys.
        """
        env = os.environ if environ is None else environ
        keys = env.get(KEYS_ENV, "").strip()
        key_file = env.get(KEY_FILE_ENV, "").strip()
        if keys and key_file:
            raise KeyRingError(f"set {KEYS_ENV} or {KEY_FILE_ENV}, not both")
        if keys:
            return cls.from_string(keys, source=KEYS_ENV)
        if key_file:
            return cls.from_file(key_file)
        return None

    @classmethod
    def _parse(cls, entries: Iterable[tuple[str, str]], *, source: str) -> KeyRing:
        keys: list[tuple[str, bytes]] = []
        first_seen: dict[str, str] = {}
        for where, entry in entries:
            key_id, sep, encoded = (part.strip() for part in entry.partition("="))
            if not sep or not key_id or not encoded:
                # Not echoed: a key pasted without its id would otherwise end up in a log.
                raise KeyRingError(f"{where}: expected key_id=base64key")
            _check_key_id(key_id, where=where)
            if key_id in first_seen:
                raise KeyRingError(
                    f"{where}: key id {key_id!r} appears twice (first in {first_seen[key_id]})"
                )
            first_seen[key_id] = where
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"{where}: key {key_id!r} is not valid base64") from None
            _check_key_length(key_id, key, where=where)
            keys.append((key_id, key))
        if not keys:
            raise KeyRingError(f"{source} holds no keys")
        return cls(keys)

    @property
    def newest_id(self) -> str:
        """The id of the key new payloads are encrypted with (the last one configured)."""
        return next(reversed(self._keys))

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, oldest first."""
        return tuple(self._keys)

    def key(self, key_id: str) -> bytes:
        """The key named ``key_id``.

        Raises:
            UnknownKeyError: No key of that id is in the ring.
        """
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(
                f"no key {key_id!r} in the key ring (known: {', '.join(self._keys)})",
                key_id=key_id,
            ) from None

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self._keys)!r})"


def _check_key_id(key_id: str, *, where: str) -> None:
    if not _KEY_ID.fullmatch(key_id):
        # Not echoed: text that is not a valid id may be a mis-pasted key.
        raise KeyRingError(
            f"{where}: a key id must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _check_key_length(key_id: str, key: bytes, *, where: str) -> None:
    if len(key) != KEY_SIZE:
        raise KeyRingError(f"{where}: key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_SIZE}")
