"""Key management from the command line; prints ids and new keys, never configured keys.

Usage::

    python -m durable_agents.codec.keys new [--id ID]  # a new ``id=base64key`` key-ring line
    python -m durable_agents.codec.keys check          # validate the keys, list their ids
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from durable_agents.codec._errors import KeyRingError
from durable_agents.codec._keys import (
    KEY_FILE_ENV,
    KEYS_ENV,
    KeyRing,
    format_key_entry,
    generate_key,
    new_key_id,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``new`` or ``check`` command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m durable_agents.codec.keys",
        description="Generate and check payload encryption keys.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="print a new key as an id=base64key line")
    new.add_argument("--id", help="key id (default: key-YYYYMMDD-<random>)")
    commands.add_parser("check", help=f"validate {KEYS_ENV} or {KEY_FILE_ENV}")
    args = parser.parse_args(argv)

    try:
        if args.command == "new":
            print(format_key_entry(args.id or new_key_id(), generate_key()))
            return 0
        keys = KeyRing.from_env()
    except KeyRingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if keys is None:
        print(f"no keys configured: set {KEYS_ENV} or {KEY_FILE_ENV}", file=sys.stderr)
        return 1
    print(
        f"{len(keys)} key(s), oldest first: {', '.join(keys.ids)}; "
        f"new payloads use {keys.newest_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
