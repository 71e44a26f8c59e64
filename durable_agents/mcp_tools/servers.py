"""How to reach an MCP server: worker configuration, never workflow input.

Server definitions can carry secrets (``headers`` with a bearer token, ``env`` with an API key),
so they are read from the worker's environment by :func:`servers_from_env` and looked up by name
inside activities. Only server *names* travel through workflow history.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SERVERS_ENV = "MCP_SERVERS"
"""A JSON object mapping server name to :class:`McpServer` fields."""

SERVERS_FILE_ENV = "MCP_SERVERS_FILE"
"""Path of a JSON file holding the same object as ``MCP_SERVERS``."""

TOOL_NAME_SEPARATOR = "__"
"""Joins server and tool names as ``<server>__<tool>``, so MCP tools never collide with Python
tools."""

# Letters, digits and hyphens, with single underscores between them. No "__" and no trailing "_",
# so the first "__" in "<server>__<tool>" is always the separator; and only characters that the
# model providers accept in tool names.
_SERVER_NAME = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")

_STDIO_ONLY = ("command", "args", "env")
_HTTP_ONLY = ("url", "headers")


class McpServer(BaseModel):
    """One MCP server the worker can connect to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Prefix of this server's tools as the model sees them: ``<name>__<tool>``."""
    transport: Literal["stdio", "http"]
    """``stdio``: spawn ``command`` and speak over its stdin/stdout; ``http``: streamable HTTP."""
    command: str | None = None
    """stdio: the executable to run."""
    args: list[str] = Field(default_factory=list)
    """stdio: its arguments."""
    env: dict[str, str] | None = Field(default=None, repr=False)
    """stdio: extra environment variables. The SDK passes only a safe base environment (PATH,
    HOME, ...) to the server, not the worker's whole environment."""
    url: str | None = None
    """http: the endpoint, e.g. ``http://localhost:8000/mcp``."""
    headers: dict[str, str] | None = Field(default=None, repr=False)
    """http: headers sent with every request, e.g. ``Authorization``. Kept out of ``repr``."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _SERVER_NAME.fullmatch(name):
            raise ValueError(
                f"server name {name!r} must be letters, digits and hyphens, with single "
                f"underscores between them (it prefixes tool names as '<name>__<tool>')"
            )
        return name

    @model_validator(mode="after")
    def _check_transport_fields(self) -> Self:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError(f"server {self.name!r} uses transport 'stdio' but has no command")
            wrong = [field for field in _HTTP_ONLY if getattr(self, field) is not None]
        else:
            if self.url is None or not self.url.startswith(("http://", "https://")):
                raise ValueError(
                    f"server {self.name!r} uses transport 'http' and needs an http:// or "
                    f"https:// url, got {self.url!r}"
                )
            wrong = [field for field in _STDIO_ONLY if getattr(self, field)]
        if wrong:
            raise ValueError(
                f"server {self.name!r} uses transport {self.transport!r}, "
                f"which does not take {', '.join(wrong)}"
            )
        return self


def servers_from_env(environ: Mapping[str, str] | None = None) -> dict[str, McpServer]:
    """The MCP servers configured for this worker, by name.

    Reads ``MCP_SERVERS`` (a JSON object) or the file named by ``MCP_SERVERS_FILE``; setting
    both is an error. Each key is a server name and each value the other :class:`McpServer`
    fields, for example::

        {"inventory": {"transport": "stdio", "command": "python", "args": ["server.py"]},
         "tickets": {"transport": "http", "url": "https://mcp.example.com/mcp",
                     "headers": {"Authorization": "Bearer ..."}}}

    Args:
        environ: Where to read the variables; ``os.environ`` by default.

    Returns:
        The servers by name; empty when neither variable is set.

    Raises:
        ValueError: The configuration is not valid JSON, not an object, or a server in it is
            invalid. The message names the variable and the server.
    """
    environ = os.environ if environ is None else environ
    inline = environ.get(SERVERS_ENV)
    path = environ.get(SERVERS_FILE_ENV)
    if inline and path:
        raise ValueError(f"set {SERVERS_ENV} or {SERVERS_FILE_ENV}, not both")
    if inline:
        source, text = SERVERS_ENV, inline
    elif path:
        source = f"{SERVERS_FILE_ENV}={path!r}"
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ValueError(f"cannot read {source}: {err}") from err
    else:
        return {}
    try:
        raw: Any = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{source} is not valid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise ValueError(
            f"{source} must be a JSON object of server name to fields, "
            f"got a JSON {type(raw).__name__}"
        )
    servers: dict[str, McpServer] = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            kind = type(fields).__name__
            raise ValueError(f"{source}: server {name!r} must be a JSON object, got a JSON {kind}")
        if fields.get("name", name) != name:
            raise ValueError(
                f"{source}: server {name!r} has a different name field {fields['name']!r}"
            )
        try:
            servers[name] = McpServer.model_validate({**fields, "name": name})
        except ValidationError as err:
            raise ValueError(f"{source}: server {name!r} is invalid: {_describe(err)}") from None
    return servers


def _describe(err: ValidationError) -> str:
    # Not str(err), and the caller raises ``from None``: pydantic would print the whole input,
    # headers and env (secrets) included, in the message and in the chained traceback.
    problems = []
    for item in err.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        problems.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(problems)
