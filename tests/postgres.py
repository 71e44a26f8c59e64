"""A real PostgreSQL server for tests, from the distribution's packages.

``postgres_dsn`` (session-scoped) runs ``initdb`` into a fresh temporary directory, starts the
server with ``pg_ctl`` on a free port on 127.0.0.1 (its unix socket stays in that directory),
creates a database and yields its DSN; at the end of the session it stops the server with
``pg_ctl stop -m fast`` and removes the directory.

The binaries come from ``/usr/lib/postgresql/<version>/bin`` (Debian and Ubuntu's
``postgresql`` package), else from ``PATH``. Without them the fixture fails rather than skips:
CI installs PostgreSQL (``.ci/run``), so a missing server is a broken setup, not an optional
test. PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
system user (which the package creates; it is created here if missing).

Use it from a test module with ``from tests.postgres import postgres_dsn  # noqa: F401``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
"""The system user the server runs as when the tests run as root."""
DATABASE = "durable_agents_test"
START_TIMEOUT_S = 60
INSTALL_HINT = "install them with `apt-get install postgresql`"


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first; None if absent."""

    def version(directory: str) -> tuple[int, ...]:
        name = Path(directory).parent.name  # /usr/lib/postgresql/<version>/bin
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for directory in sorted(glob.glob(PG_BIN_GLOB), key=version, reverse=True):
        if all((Path(directory) / tool).is_file() for tool in ("initdb", "pg_ctl")):
            return Path(directory)
    pg_ctl, initdb = shutil.which("pg_ctl"), shutil.which("initdb")
    if pg_ctl and initdb:
        return Path(pg_ctl).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None for the current user, ``postgres`` under root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", SERVER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _run(command: Sequence[str], user: pwd.struct_passwd | None) -> None:
    if user is not None:
        command = ["runuser", "-u", user.pw_name, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        )


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield the DSN of an empty database in it."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found in {PG_BIN_GLOB} or on "
            f"PATH; {INSTALL_HINT}",
            pytrace=False,
        )
    user = _server_user()
    # Under root the server user must reach the directory: /tmp is world-traversable, while
    # pytest's own tmp directories (/tmp/pytest-of-root) are not.
    root = Path(tempfile.mkdtemp(prefix="pytest-postgres-", dir="/tmp" if user else None))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    started = False
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                f"--pgdata={data}",
                f"--username={SERVER_USER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user,
        )
        # fsync off: a test server need not survive a power cut, and it is much faster.
        options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(root))} -c fsync=off"
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    f"--pgdata={data}",
                    f"--log={log}",
                    f"--options={options}",
                    "--wait",
                    f"--timeout={START_TIMEOUT_S}",
                    "start",
                ],
                user,
            )
        except RuntimeError as err:
            server_log = log.read_text(errors="replace") if log.exists() else "(no log)"
            raise RuntimeError(f"{err}\nserver log:\n{server_log}") from None
        started = True
        base = f"postgresql://{SERVER_USER}@127.0.0.1:{port}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"{base}/{DATABASE}"
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), f"--pgdata={data}", "-m", "fast", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of an empty database on a real PostgreSQL server, shared by the test session."""
    with running_postgres() as dsn:
        yield dsn
