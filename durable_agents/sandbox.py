"""Run an untrusted command with a time limit, a cleared environment and no network.

``run_sandboxed(argv, cwd=..., timeout=...)`` is for code the project did not write but has to
run: a patch an agent proposed, tested by running the patched project's own test suite (the
security review example's ``sample-app-tests`` check). What it guarantees:

- **Time limit.** The command runs in a process group of its own; past ``timeout`` seconds the
  whole group is killed (``SIGKILL``) and the result says ``timed_out=True``. Whatever the
  command left running in its group when it ended is killed too.
- **Environment.** Nothing of the caller's environment is passed on (no API keys, no
  ``TEMPORAL_*``, no database URLs): only a minimal ``PATH``, ``LANG``, a fresh ``HOME`` and
  ``TMPDIR`` in a temporary directory, and what the caller passes in ``env``.
- **No network**, by the strongest means this machine offers (``network_isolation()``):

  ``"namespace"``: the command runs under ``unshare --net --pid --fork --kill-child`` (as root,
  or in a user namespace with ``--map-root-user`` where unprivileged user namespaces are
  allowed). A new network namespace has only a loopback interface, and it is down: nothing,
  not even a server on the host's 127.0.0.1, can be reached, whatever language the command is
  written in. The new PID namespace means that when the command's first process dies, every
  process it started dies with it, even one that left the process group.

  ``"python-guard"``: where ``unshare`` is missing or not permitted (most containers without
  ``CAP_SYS_ADMIN``), a ``sitecustomize.py`` put first on ``PYTHONPATH`` makes every ``socket``
  ``connect``/``connect_ex``/``sendto``/``sendmsg`` on an IPv4 or IPv6 socket raise
  ``PermissionError`` in Python processes. It stops Python code that uses the ``socket`` module
  (and so ``urllib``, ``http.client``, ``requests`` ...), not C extensions calling the OS
  directly, not ``python -I``/``-S``, and not non-Python programs the command runs.

What it does **not** do: it is not a filesystem or privilege boundary. The command runs as the
caller's user and can read and write whatever that user can; memory and CPU are bounded only by
the time limit. Run it in a throwaway copy (``cwd``) of whatever it works on, and for hostile
code put the worker itself in a container or VM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = [
    "MAX_OUTPUT_CHARS",
    "NetworkIsolation",
    "SandboxResult",
    "network_isolation",
    "run_sandboxed",
]

NetworkIsolation = Literal["namespace", "python-guard"]
"""How a sandboxed command is kept off the network (see the module docstring)."""

MAX_OUTPUT_CHARS = 200_000
"""Characters of stdout and of stderr kept (the last ones: test runners print the summary
last)."""

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
"""``PATH`` inside the sandbox; pass absolute paths (``sys.executable``) for anything else."""

_UNSHARE_FLAGS = ("--net", "--pid", "--fork", "--kill-child")
_NAMESPACE_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("unshare", *_UNSHARE_FLAGS),  # root, or CAP_SYS_ADMIN
    ("unshare", "--user", "--map-root-user", *_UNSHARE_FLAGS),  # unprivileged user namespaces
)
_PROBE_TIMEOUT = 10.0

_GUARD = '''\
"""Installed by durable_agents.sandbox (python-guard mode): no network for this process."""
import socket as _socket

_BLOCKED_FAMILIES = (_socket.AF_INET, _socket.AF_INET6)


def _guard(name):
    original = getattr(_socket.socket, name)

    def guarded(self, *args, **kwargs):
        if self.family in _BLOCKED_FAMILIES:
            raise PermissionError(
                13, "network access is disabled in this sandbox (durable_agents.sandbox)"
            )
        return original(self, *args, **kwargs)

    guarded.__name__ = name
    setattr(_socket.socket, name, guarded)


for _name in ("connect", "connect_ex", "sendto", "sendmsg"):
    _guard(_name)
'''


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed command ended."""

    returncode: int
    """The exit status; negative when a signal ended it (``-9`` after the time limit)."""
    stdout: str
    """The last ``MAX_OUTPUT_CHARS`` characters written to standard output."""
    stderr: str
    timed_out: bool
    """The command ran past its time limit and was killed, with every process it started."""
    duration: float
    """Seconds from start until the command (and its process group) was gone."""
    network: NetworkIsolation
    """How the network was kept out of reach."""


@cache
def network_isolation() -> NetworkIsolation:
    """The network isolation ``run_sandboxed`` uses on this machine (probed once per process):
    ``"namespace"`` when ``unshare`` can create a network namespace, else ``"python-guard"``."""
    return "namespace" if _namespace_prefix() else "python-guard"


@cache
def _namespace_prefix() -> tuple[str, ...] | None:
    if shutil.which("unshare") is None:
        return None
    for prefix in _NAMESPACE_PREFIXES:
        try:
            probe = subprocess.run(
                [*prefix, "true"],
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                env={"PATH": SAFE_PATH},
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return prefix
    return None


def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    network: NetworkIsolation | None = None,
) -> SandboxResult:
    """Run ``argv`` in ``cwd`` with a time limit, a cleared environment and no network.

    Args:
        argv: The command; the program is looked up on ``SAFE_PATH`` unless it is a path.
        cwd: Where it runs (a scratch copy of whatever it may change).
        timeout: Seconds it may run; then it and every process it started are killed.
        env: Variables to set on top of the minimal environment (``PYTHONPATH`` is kept after
            the python-guard's directory).
        network: Force one isolation (tests use it to check both); default:
            ``network_isolation()``. Asking for ``"namespace"`` where it is unavailable raises.

    Raises:
        RuntimeError: ``network="namespace"`` on a machine where ``unshare`` does not work.
        OSError: The program could not be started (not found, not executable, ``cwd`` missing).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    mode = network or network_isolation()
    prefix: tuple[str, ...] = ()
    if mode == "namespace":
        found = _namespace_prefix()
        if found is None:
            raise RuntimeError("network namespaces are not available here (unshare failed)")
        prefix = found
    with tempfile.TemporaryDirectory(prefix="sandbox-") as scratch:
        base = Path(scratch)
        home, tmp = base / "home", base / "tmp"
        home.mkdir()
        tmp.mkdir()
        variables = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "HOME": str(home), "TMPDIR": str(tmp)}
        variables.update(env or {})
        if mode == "python-guard":
            guard = base / "guard"
            guard.mkdir()
            (guard / "sitecustomize.py").write_text(_GUARD)
            # First on the path, so no other sitecustomize can take its place.
            variables["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(guard), variables.get("PYTHONPATH", "")) if p
            )
        # Output goes to files, not pipes: a process that escaped the group cannot keep a pipe
        # open and hang the read.
        out_path, err_path = base / "stdout", base / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                [*prefix, *argv],
                cwd=cwd,
                env=variables,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, killed as one
            )
            timed_out = False
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(process)
            duration = time.monotonic() - started
        return SandboxResult(
            returncode=process.returncode,
            stdout=_tail(out_path),
            stderr=_tail(err_path),
            timed_out=timed_out,
            duration=duration,
            network=mode,
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the command's whole process group (what it left running too) and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
    process.wait()


def _tail(path: Path) -> str:
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        # Up to 4 bytes a character: read enough for MAX_OUTPUT_CHARS, then trim to it.
        file.seek(max(0, size - 4 * MAX_OUTPUT_CHARS))
        return file.read().decode("utf-8", errors="replace")[-MAX_OUTPUT_CHARS:]
