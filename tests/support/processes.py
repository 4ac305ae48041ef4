"""Real processes for fault tests: the cloud, the node, Redis and a TCP proxy that cuts links.

Every child writes its output to a log file of its own and is stopped by its own pid; failures
carry the tail of the logs, so a red test says what the processes said.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

__all__ = [
    "ROOT",
    "ChildProcess",
    "CloudProcess",
    "NodeProcess",
    "RedisServer",
    "TcpProxy",
    "clean_env",
    "cli",
    "cli_json",
    "free_port",
    "in_ci",
    "print_logs",
    "read_only_sqlite",
    "require_peer",
    "wait_until",
]

_T = TypeVar("_T")

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# The console scripts sit beside the interpreter running the tests (.venv/bin).
_BIN = Path(sys.executable).parent
_MODULES = {
    "printfabric-cloud": "cloud.cli",
    "printfabric-node": "node",
    "printfabric-gateway": "gateway",
    "printfabric-sync": "sync",
}
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
CLI_SECONDS = 120.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_peer(program: str, package: str) -> str:
    """The path of a peer program; without it the test fails under CI and is skipped elsewhere."""
    found = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if Path(p).is_file()), None
    )
    if found is not None:
        return found
    peer_missing(
        f"{program} is not installed: install the Debian package `{package}` "
        "(`make test` does that when run as root)"
    )


def peer_missing(message: str) -> NoReturn:
    """A peer cannot run here: the test fails under CI (CI=true) and is skipped elsewhere."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port nothing listens on right now (a child will bind it by number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any PF_* setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PF_")}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def command_argv(program: str) -> list[str]:
    script = _BIN / program
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", _MODULES[program]]


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def cli(
    program: str,
    *args: str,
    env: Mapping[str, str],
    stdin: str = "",
    timeout: float = CLI_SECONDS,
) -> str:
    """Runs a command to completion and returns its stdout; anything but exit 0 fails the test."""
    argv = [*command_argv(program), *args]
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(env),
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`{program} {' '.join(args)}` ran over {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise AssertionError(
            f"`{program} {' '.join(args)}` exited with {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def cli_json(program: str, *args: str, env: Mapping[str, str], stdin: str = "") -> Any:
    out = cli(program, *args, env=env, stdin=stdin)
    try:
        return json.loads(out)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"`{program} {' '.join(args)}` did not print JSON:\n{out}") from exc


class ChildProcess:
    """A long-running child, its output in a log file, signalled only through its own pid."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"----- {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            out.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
            )

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def kill9(self) -> None:
        """SIGKILL to this child's pid, then reaps it."""
        if self._popen is None or self._popen.poll() is not None:
            raise AssertionError(f"{self.name} is not running, cannot kill it\n{self.tail()}")
        os.kill(self._popen.pid, signal.SIGKILL)
        self._popen.wait(STOP_SECONDS)

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL after timeout; returns the exit status (None if never started)."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(popen.pid, signal.SIGKILL)
                popen.wait(STOP_SECONDS)
        return popen.returncode

    def tail(self, lines: int = 40) -> str:
        return f"----- last lines of {self.name} ({self.log}):\n{tail(self.log, lines)}"

    def check_alive(self) -> None:
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.returncode}\n{self.tail()}")


def wait_until(
    check: Callable[[], _T | None],
    within: float,
    what: str,
    watch: Iterable[ChildProcess] = (),
    every: float = 0.02,
) -> _T:
    """Polls check() until it returns something truthy; fails with the processes' logs if not.

    A watched process that exits meanwhile fails the wait at once.
    """
    watched = list(watch)
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        for process in watched:
            if not process.running:
                raise AssertionError(
                    f"{process.name} exited with {process.returncode} while waiting for {what}\n"
                    + "\n".join(p.tail() for p in watched)
                )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {within:.0f} s: {what}\n" + "\n".join(p.tail() for p in watched)
            )
        time.sleep(every)


def print_logs(*processes: ChildProcess | None) -> None:
    """Prints the tail of each process's log: pytest shows it beside a failure."""
    for process in processes:
        if process is not None:
            print(process.tail(60), flush=True)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class CloudProcess(ChildProcess):
    """`printfabric-cloud serve` on 127.0.0.1:port with PF_HOME=home (plus extra settings)."""

    def __init__(self, name: str, home: Path, port: int, log: Path, **settings: str) -> None:
        env = clean_env(PF_HOME=str(home), PF_CLOUD_LISTEN=f"{HOST}:{port}", PF_NODE_HEARTBEAT="1s")
        env.update(settings)
        super().__init__(name, [*command_argv("printfabric-cloud"), "serve"], env, log)
        self.home = home
        self.port = port

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def ca(self) -> Path:
        return self.home / "tls" / "ca.pem"

    def start_ready(self, within: float = STARTUP_SECONDS) -> None:
        """Starts and waits until it says it listens and the port takes connections."""
        started = self.log.stat().st_size if self.log.exists() else 0
        self.start()

        def ready() -> bool:
            with self.log.open("rb") as fh:
                fh.seek(started)
                said = b"printfabric-cloud listening on" in fh.read()
            return said and accepts(self.port)

        wait_until(ready, within, f"{self.name} listening on {self.target}", [self], every=0.05)


class NodeProcess(ChildProcess):
    """`printfabric-node run` with its home, and reads of its SQLite database beside it."""

    def __init__(self, name: str, home: Path, log: Path, **settings: str) -> None:
        # Any free port for the MFP API, so nodes of parallel tests never compete for 9443.
        env = clean_env(PF_NODE_HOME=str(home), PF_NODE_MFP_LISTEN="127.0.0.1:0")
        env.update(settings)
        super().__init__(name, [*command_argv("printfabric-node"), "run"], env, log)
        self.home = home

    @property
    def db(self) -> Path:
        return self.home / "node.db"

    def command(self, *args: str, stdin: str = "") -> str:
        return cli("printfabric-node", *args, env=self.env, stdin=stdin)

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = cli_json("printfabric-node", "status", "--json", env=self.env)
        return report

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows from the node's database, read-only; [] while it does not exist yet."""
        if not self.db.exists():
            return []
        try:
            with read_only_sqlite(self.db) as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def outbox_size(self) -> int:
        rows = self.query("SELECT count(*) FROM outbox")
        return int(rows[0][0]) if rows else -1

    def links(self) -> int:
        """How many times the node linked up, from its log."""
        return tail(self.log, 100_000).count("linked to the cloud")


@contextlib.contextmanager
def read_only_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


class RedisServer(ChildProcess):
    """A private redis-server on 127.0.0.1, nothing on disk."""

    def __init__(self, program: str, workdir: Path, log: Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            program,
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ]
        super().__init__("redis", argv, clean_env(), log)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start_ready(self, within: float = 20.0) -> None:
        self.start()

        def pong() -> bool:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, within, f"redis on port {self.port} answering PING", [self], every=0.05)


class _Sent:
    """Bytes one link has carried towards upstream."""

    def __init__(self) -> None:
        self.up = 0


class TcpProxy:
    """A loopback TCP proxy to upstream_port whose cut() drops every link it carries.

    It runs its own event loop in a thread, so the test (sync or async) drives it from outside.
    With bytes_per_second each direction of a link is paced to that rate, like a slow WAN line.
    One fault can be armed for the next link it fits (bytes pass untouched, TLS too):
    cut_request_after(n) drops the link once it has sent n bytes upstream (an upload broken off
    midway); drop_answer_after(n) drops a link that has sent at least n bytes upstream when the
    answer starts coming back, so upstream did the work and the client never hears of it (the
    case an idempotency key is for).
    """

    def __init__(self, upstream_port: int, bytes_per_second: float | None = None) -> None:
        self.upstream_port = upstream_port
        self.rate = bytes_per_second
        self.bytes_up = 0
        self.port = 0
        self.accepted = 0
        self.refused = 0
        self.cuts = 0
        self.links_cut = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy")
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.WriteTransport, asyncio.WriteTransport]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refuse_until = 0.0
        self._fault: tuple[str, int] | None = None
        self.faults_fired = 0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._call(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_SECONDS)
            self._loop.close()

    @property
    def live(self) -> int:
        """Links up now."""
        return len(self._links)

    def cut(self, refuse_for: float = 0.0) -> int:
        """Drops (resets) every current link, refusing new ones for refuse_for seconds.

        Returns how many links were dropped.
        """
        return self._call(self._cut(refuse_for))

    def cut_request_after(self, n: int) -> None:
        self._call(self._arm("cut", n))

    def drop_answer_after(self, n: int) -> None:
        self._call(self._arm("drop", n))

    async def _arm(self, kind: str, n: int) -> None:
        self._fault = (kind, n)

    def _fires(self, kind: str, sent: int) -> bool:
        """Whether the armed fault of kind fires for a link that has sent `sent` bytes up."""
        if self._fault is None or self._fault[0] != kind or sent < self._fault[1]:
            return False
        self._fault = None
        self.faults_fired += 1
        return True

    def _call(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(STOP_SECONDS)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut(0.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _cut(self, refuse_for: float) -> int:
        self.cuts += 1
        self._refuse_until = self._loop.time() + refuse_for
        links, self._links = list(self._links), set()
        for a, b in links:
            a.abort()
            b.abort()
        self.links_cut += len(links)
        return len(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        down = writer.transport
        try:
            if self._loop.time() < self._refuse_until:
                self.refused += 1
                down.abort()
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.upstream_port), 5
                )
            except (OSError, TimeoutError):
                self.refused += 1
                down.abort()
                return
            self.accepted += 1
            link = (down, up_writer.transport)
            self._links.add(link)
            sent = _Sent()
            try:
                await asyncio.gather(
                    self._pipe(reader, up_writer, sent, upstream=True),
                    self._pipe(up_reader, writer, sent, upstream=False),
                )
            finally:
                self._links.discard(link)
                for side in link:
                    side.abort()
        finally:
            self._tasks.discard(task)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, sent: _Sent, upstream: bool
    ) -> None:
        try:
            while data := await src.read(1 << 14 if self.rate else 1 << 16):
                if upstream and self._fires("cut", sent.up + len(data)):
                    return
                if not upstream and self._fires("drop", sent.up):
                    return
                dst.write(data)
                if upstream:
                    sent.up += len(data)
                    self.bytes_up += len(data)
                await dst.drain()
                if self.rate:
                    await asyncio.sleep(len(data) / self.rate)
        except (ConnectionError, OSError):
            pass
        finally:
            # One direction ending ends the link: abort both ends so the peers see it at once.
            dst.transport.abort()
