"""A real PostgreSQL server for the tests: a fresh database, dropped at exit, on some server."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = [
    "ENV_PRIVATE",
    "ENV_URL",
    "PostgresUnavailable",
    "find_postgres_bindir",
    "postgres_server",
]

ENV_URL = "PF_TEST_POSTGRES_URL"
# Set to 1 to make every postgres_server() start its own cluster, as on a machine without one.
ENV_PRIVATE = "PF_TEST_POSTGRES_PRIVATE"

_DRIVER = "postgresql+asyncpg"
_LOCAL_HOST = "127.0.0.1"
_LOCAL_PORT = 5432
_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_CONNECT_TIMEOUT = 5.0
_START_TIMEOUT = 60
# pg_ctl takes a port number, not port 0, so a free port is picked first; another process may
# grab it in between, which a fresh port on the next attempt gets around.
_START_ATTEMPTS = 3
_INSTALL_HINT = (
    "install the Debian package `postgresql` (make test does that when run as root), "
    f"or point {ENV_URL} at a server"
)

_T = TypeVar("_T")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be found or started."""


@contextmanager
def postgres_server(*, prefer_private: bool | None = None) -> Iterator[str]:
    """Yields the SQLAlchemy URL (postgresql+asyncpg://...) of a fresh, empty database.

    The server is, in this order: the one in $PF_TEST_POSTGRES_URL; the machine's own on
    127.0.0.1:5432 (user postgres, trust auth); a private cluster started for this context and
    stopped at its exit. prefer_private=True (or $PF_TEST_POSTGRES_PRIVATE=1) goes straight to
    the private cluster. The database is dropped at exit, even with connections still open.
    """
    if prefer_private is None:
        prefer_private = os.environ.get(ENV_PRIVATE, "") not in ("", "0")
    with _admin_url(prefer_private) as admin, _fresh_database(admin) as url:
        yield url


def find_postgres_bindir() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, if one is installed."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.name))

    for candidate in sorted(glob.glob(_BIN_GLOB), key=version, reverse=True):
        bindir = Path(candidate)
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


# -- picking a server --------------------------------------------------------------------------


@contextmanager
def _admin_url(prefer_private: bool) -> Iterator[URL]:
    """A URL to a database of the chosen server in which CREATE DATABASE can be run."""
    if not prefer_private:
        configured = os.environ.get(ENV_URL, "").strip()
        if configured:
            url = _asyncpg_url(configured)
            error = _run_async(lambda: _probe(url))
            if error is not None:
                # An explicit setting that does not work is a mistake to report, not to paper
                # over with another server.
                raise PostgresUnavailable(f"{ENV_URL}={configured!r} does not answer: {error}")
            yield url
            return
        local = URL.create(
            _DRIVER, username="postgres", host=_LOCAL_HOST, port=_LOCAL_PORT, database="postgres"
        )
        if _run_async(lambda: _probe(local)) is None:
            yield local
            return
    with _private_cluster() as url:
        yield url


def _asyncpg_url(raw: str) -> URL:
    url = make_url(raw)
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise PostgresUnavailable(f"{ENV_URL} must be a postgresql:// URL, not {raw!r}")
    return url.set(drivername=_DRIVER, database=url.database or "postgres")


# -- the fresh database ------------------------------------------------------------------------


@contextmanager
def _fresh_database(admin: URL) -> Iterator[str]:
    # Only hex digits after a fixed prefix: the name is safe to put in SQL unquoted.
    name = f"pf_test_{secrets.token_hex(8)}"
    _run_async(lambda: _execute(admin, f"CREATE DATABASE {name}"))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE ends sessions a test left open, which would otherwise make DROP fail.
        _run_async(lambda: _execute(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _execute(url: URL, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block, hence AUTOCOMMIT.
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": _CONNECT_TIMEOUT},
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _probe(url: URL) -> str | None:
    """None if url accepts a connection, else why not."""
    try:
        await _execute(url, "SELECT 1")
    except Exception as exc:
        # Refused, timed out, unknown role, password wanted, ...: all mean "not usable here",
        # and asyncpg raises its own classes for them, unwrapped by SQLAlchemy at connect time.
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Runs a coroutine to completion from sync code, even when called inside an event loop."""
    # A thread of its own: asyncio.run refuses to nest in the loop of an async test.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pf-postgres") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


# -- the private cluster -----------------------------------------------------------------------


@contextmanager
def _private_cluster() -> Iterator[URL]:
    """Runs initdb and pg_ctl in a temporary directory; the cluster lives as long as the context."""
    bindir = find_postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            f"no PostgreSQL server answers and no initdb under {_BIN_GLOB}: {_INSTALL_HINT}"
        )
    prefix, owner = _server_user()
    # A short path: the server's Unix socket lives here and socket paths are limited to ~100
    # bytes.
    base = Path(tempfile.mkdtemp(prefix="pf-pg-"))
    try:
        if owner is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        data = base / "data"
        _tool(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=base,
            what="initdb",
        )
        try:
            port = _start(prefix, bindir, data, base)
            yield URL.create(
                _DRIVER, username="postgres", host=_LOCAL_HOST, port=port, database="postgres"
            )
        finally:
            _stop(prefix, bindir, data, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _server_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that runs PostgreSQL tools, and the user to own their files."""
    if os.geteuid() != 0:
        return [], None
    # initdb and postgres refuse to run as root.
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no `postgres` user to run the server as: {_INSTALL_HINT}"
        ) from None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PostgresUnavailable("running as root and setpriv (util-linux) is not installed")
    return [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups"], owner


def _start(prefix: list[str], bindir: Path, data: Path, base: Path) -> int:
    log = ""
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        options = (
            f"-p {port} -k {base} -c listen_addresses={_LOCAL_HOST} "
            # Durability is worth nothing for a throw-away test database; speed is.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            _tool(
                [
                    *prefix,
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(base / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(_START_TIMEOUT),
                    "start",
                ],
                cwd=base,
                what="pg_ctl start",
            )
        except PostgresUnavailable as exc:
            log = f"{exc}\n{_read_tail(base / 'server.log')}"
            continue
        return port
    raise PostgresUnavailable(
        f"the private PostgreSQL cluster did not start after {_START_ATTEMPTS} attempts:\n{log}"
    )


def _stop(prefix: list[str], bindir: Path, data: Path, base: Path) -> None:
    if not (data / "postmaster.pid").exists():
        return
    for mode in ("fast", "immediate"):
        try:
            _tool(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"],
                cwd=base,
                what="pg_ctl stop",
            )
            return
        except PostgresUnavailable:
            continue
    # Last resort, so that no server outlives the test run: the postmaster we started, by pid.
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _tool(command: list[str], *, cwd: Path, what: str) -> None:
    # Output goes to a file, not a pipe: pg_ctl's server could inherit a pipe and keep it open,
    # and then nothing would ever see its end.
    with tempfile.TemporaryFile() as out:
        try:
            result = subprocess.run(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=_START_TIMEOUT + 30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PostgresUnavailable(f"{what} timed out:\n{_tail(out)}") from None
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{what} failed with exit code {result.returncode}:\n{_tail(out)}"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOCAL_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(stream: IO[bytes], limit: int = 4000) -> str:
    stream.seek(0)
    return stream.read().decode("utf-8", "replace")[-limit:]


def _read_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text("utf-8", "replace")[-limit:]
    except OSError:
        return ""
