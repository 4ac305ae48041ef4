"""The node's LPD server taking one big job from an LPR client in another process: MB/s against
a plain loopback copy of the same bytes to disk, and the server process's memory meanwhile.

Both clients run as child processes (the server gets its own core on a two-core machine) and
time themselves from connect to the server's last word: the final acknowledgement and close for
LPD, a one-octet answer after fsync for the baseline. The baseline server does the LPD server's
disk work without its protocol or database: reads with the same StreamReader limit, hashes and
writes in ~1 MiB batches in a worker thread, fsyncs. It has its own writer rather than the LPD
server's, so a slower spool writer shows in the ratio instead of slowing both sides alike.
After one unmeasured warm-up copy the two take turns, ROUNDS transfers each; the job each LPD
round stores is checked byte for byte, then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psutil
from printfabric.lpd import LpdLimits, LpdServer
from sqlalchemy import select

from node.app import Node, open_node
from node.config import NodeConfig
from node.models import LpdJob, NodeQueue, ReplicaUserRow
from tests.bench.spool_1gib import (
    DEFAULT_SIZE,
    MB,
    BenchError,
    Payload,
    RssSampler,
    Transfer,
    vm_hwm,
)

NAME = "lpd_receive"
HOST = "127.0.0.1"
QUEUE, LOGIN, SENDER = "secure", "alice", "bench"
# The server process may grow by less than this while it takes the job: memory stays flat.
RSS_GROWTH_LIMIT_MB = 64.0
# What the baseline server reads and writes at a time: the LPD server's StreamReader limit and
# spool write size.
READ_BUFFER = 256 << 10
WRITE_CHUNK = 1 << 20
# Ample for 1 GiB with an fsync on two slow cores, yet a hung transfer cannot stall the bench.
TRANSFER_SECONDS = 180.0
# Each side's figure is the fastest of this many transfers: whatever else runs on the machine
# can only slow a transfer down, so the fastest is the nearest to what the code can do.
ROUNDS = 3

# The LPR client: printfabric's own send_job, timed from just before it opens the document and
# connects to the moment the server closes after its last acknowledgement.
LPD_CLIENT = """
import asyncio, json, sys, time
from pathlib import Path
from printfabric.lpd import send_job

host, port, queue, path, user, sender, timeout = sys.argv[1:]

async def main() -> float:
    started = time.perf_counter()
    await send_job(host, int(port), queue, Path(path), user=user, host_name=sender,
                   timeout=float(timeout))
    return time.perf_counter() - started

print(json.dumps({"seconds": asyncio.run(main())}))
"""

# The baseline client: the same file in 1 MiB reads over a plain socket; the clock stops at the
# server's answer (sent after its fsync) and close.
COPY_CLIENT = """
import json, socket, sys, time

host, port, path, timeout = sys.argv[1:]
with open(path, "rb", buffering=0) as document:
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=float(timeout)) as sock:
        while chunk := document.read(1 << 20):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while part := sock.recv(64):
            answer += part
    seconds = time.perf_counter() - started
if answer != b"\\x00":
    sys.exit(f"the baseline server answered {answer!r}")
print(json.dumps({"seconds": seconds}))
"""


@dataclass(frozen=True)
class Outcome:
    """The figures as (metric, value) rows and whether they pass; the measurements themselves
    for a test to check."""

    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool
    baseline: Transfer
    lpd: Transfer
    rss_growth: int


def say(message: str) -> None:
    print(f"[{NAME}] {message}", flush=True)


def write_payload(path: Path, size: int) -> str:
    """Writes size random bytes (1 MiB at a time, never whole in memory) and fsyncs them, so
    that no writeback of the payload competes with a transfer; returns their SHA-256."""
    stream = Payload(size).stream()
    with path.open("wb") as out:
        for chunk in stream:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return stream.sha256


async def run_client(code: str, *args: str) -> float:
    """Runs a client script in a child process; the seconds it reports."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TRANSFER_SECONDS):
            out, err = await child.communicate()
    except TimeoutError:
        child.kill()
        await child.wait()
        raise BenchError(f"the client took more than {TRANSFER_SECONDS:.0f} s") from None
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise BenchError(f"the client exited with {child.returncode}: {' / '.join(tail)}")
    try:
        seconds = float(json.loads(out)["seconds"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"the client printed {out[:200]!r}, not its timing") from exc
    return seconds


# The baseline: a plain loopback copy to disk ---------------------------------------------------


class _Sink:
    """The baseline's file: hashed and written in a worker thread, fsynced at the end."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self.size = 0

    @classmethod
    def create(cls, path: Path) -> _Sink:
        return cls(path.open("xb"))

    def write(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self._hash.update(piece)
            self._file.write(piece)
            self.size += len(piece)

    def finish(self, pieces: list[bytes]) -> str:
        self.write(pieces)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        self._file.close()


async def baseline_copy(payload: Path, target: Path) -> tuple[Transfer, str, int]:
    """Copies the payload over loopback TCP into target; the timing, the server's SHA-256 of
    what it wrote, and how many bytes that was."""
    received: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sink = await asyncio.to_thread(_Sink.create, target)
            try:
                pieces: list[bytes] = []
                held = 0
                while piece := await reader.read(WRITE_CHUNK):
                    pieces.append(piece)
                    held += len(piece)
                    if held >= WRITE_CHUNK:
                        await asyncio.to_thread(sink.write, pieces)
                        pieces, held = [], 0
                digest = await asyncio.to_thread(sink.finish, pieces)
            finally:
                await asyncio.to_thread(sink.close)
            writer.write(b"\x00")
            await writer.drain()
            received.set_result((digest, sink.size))
        except Exception as exc:  # the client then fails too; this says why
            if not received.done():
                received.set_exception(exc)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, HOST, 0, limit=READ_BUFFER)
    try:
        port = server.sockets[0].getsockname()[1]
        try:
            seconds = await run_client(
                COPY_CLIENT, HOST, str(port), str(payload), str(TRANSFER_SECONDS)
            )
        except BenchError:
            if received.done() and received.exception() is not None:
                raise BenchError(f"the baseline server failed: {received.exception()}") from None
            raise
        digest, size = await received
    finally:
        server.close()
        await server.wait_closed()
    return Transfer(size, seconds), digest, size


# The node's LPD server -------------------------------------------------------------------------


class _MemoryWatch:
    """The bench process's RSS growth over a stretch: sampled every 50 ms, and the kernel's
    high-water mark (reset at the start where the kernel allows) for spikes between samples."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._sampler = RssSampler(os.getpid())
        self._start = 0
        self._hwm_reset = False
        self.hwm = 0

    def __enter__(self) -> _MemoryWatch:
        self._sampler.start()
        self._start = self._process.memory_info().rss
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the RSS right now
            self._hwm_reset = True
        self._sampler.phase("watched")
        return self

    def __exit__(self, *exc: object) -> None:
        self._sampler.phase("after")
        self.hwm = vm_hwm(os.getpid()) if self._hwm_reset else 0
        self._sampler.stop()

    @property
    def samples(self) -> int:
        return self._sampler.samples

    @property
    def growth(self) -> int:
        peak = max(self._sampler.peaks.get("watched", 0), self.hwm)
        return max(0, peak - self._start)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(WRITE_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stored_problems(rows: list[LpdJob], size: int, sha256: str) -> list[str]:
    """Every way the node's record of the job, or its file, differs from what was sent (reads
    the whole file: call it in a worker thread)."""
    if len(rows) != 1:
        return [f"the node stored {len(rows)} jobs, not 1"]
    row = rows[0]
    problems = []
    if row.size != size:
        problems.append(f"the job row says {row.size} bytes, {size} were sent")
    if row.sha256 != sha256:
        problems.append(f"the job row says sha256 {row.sha256[:16]}…, sent {sha256[:16]}…")
    if row.owner_login != LOGIN or row.queue != QUEUE or row.state != "held":
        problems.append(f"the job is {row.owner_login!r}'s on {row.queue!r}, {row.state}")
    path = Path(row.path)
    if not path.is_file():
        return [*problems, f"the job's file {path} is missing"]
    if (stored := path.stat().st_size) != size:
        problems.append(f"the job's file has {stored} bytes, {size} were sent")
    elif (digest := _sha256_of(path)) != sha256:
        problems.append(f"the job's file hashes to {digest[:16]}…, sent {sha256[:16]}…")
    return problems


@contextlib.asynccontextmanager
async def lpd_node(home: Path, size: int) -> AsyncIterator[tuple[Node, LpdServer]]:
    """A node in home that knows queue QUEUE and user LOGIN, and its LPD server on a free port
    taking jobs of up to size bytes (and a little)."""
    config = NodeConfig(home=home, lpd_listen=f"{HOST}:0", mfp_listen="")
    async with open_node(config) as node:
        # What the cloud's welcome and the directory replica would have told the node.
        async with node.db.session() as session, session.begin():
            session.add(NodeQueue(name_key=QUEUE.casefold(), name=QUEUE, printer_id="p1"))
            session.add(
                ReplicaUserRow(user_id="u1", login=LOGIN, login_key=LOGIN.casefold(), rights="1")
            )
        limits = LpdLimits(max_job_bytes=size + (1 << 20))
        server = LpdServer(node.lpd_handler, node.config.lpd_spool_dir / "incoming", limits)
        await server.start(HOST, 0)
        try:
            yield node, server
        finally:
            await server.close()


async def lpd_round(
    node: Node, server: LpdServer, payload: Path, size: int, sha256: str
) -> tuple[Transfer, int, list[str]]:
    """Sends the payload as one job; the timing, the server process's RSS growth meanwhile, and
    what is wrong with the stored job. The job is gone afterwards (row and file), so that every
    round starts from the same node and the same disk."""
    args = (HOST, str(server.port), QUEUE, str(payload), LOGIN, SENDER, str(TRANSFER_SECONDS))
    with _MemoryWatch() as memory:
        seconds = await run_client(LPD_CLIENT, *args)
    async with node.db.session() as session, session.begin():
        rows = list((await session.scalars(select(LpdJob))).all())
        for row in rows:
            await session.delete(row)
    problems = await asyncio.to_thread(_stored_problems, rows, size, sha256)
    for row in rows:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(Path(row.path).unlink)
    return Transfer(size, seconds), memory.growth, problems


# The benchmark ---------------------------------------------------------------------------------


def fastest(transfers: list[Transfer]) -> Transfer:
    return min(transfers, key=lambda t: t.seconds)


def describe_rounds(transfers: list[Transfer]) -> str:
    """The fastest transfer, with the range of rates over all of them."""
    rates = sorted(t.mb_per_s for t in transfers)
    spread = f"  [{rates[0]:.0f} to {rates[-1]:.0f} MB/s]" if len(rates) > 1 else ""
    return fastest(transfers).describe() + spread


async def _measure(work: Path, payload: Path, size: int, sha256: str, rounds: int) -> Outcome:
    target = work / "baseline.bin"
    problems: list[str] = []

    async def copy() -> Transfer:
        transfer, copied_sha, copied = await baseline_copy(payload, target)
        await asyncio.to_thread(target.unlink)
        if copied != size or copied_sha != sha256:
            problems.append(f"a baseline copy has {copied} bytes, sha256 {copied_sha[:16]}…")
        return transfer

    # The first big write of a run is slower whichever side makes it (the disk warming up),
    # so one copy goes unmeasured and the sides take turns after it.
    say(f"warm-up: {size} bytes over loopback TCP into a file")
    await copy()
    baselines: list[Transfer] = []
    lpds: list[Transfer] = []
    growth = 0
    async with lpd_node(work / "node", size) as (node, server):
        for n in range(1, rounds + 1):
            say(f"round {n}/{rounds}: baseline copy (hashed, fsynced), then one LPD job")
            baselines.append(await copy())
            lpd, grew, stored = await lpd_round(node, server, payload, size, sha256)
            lpds.append(lpd)
            growth = max(growth, grew)
            problems += stored

    baseline = fastest(baselines)
    lpd = fastest(lpds)
    growth_ok = growth < RSS_GROWTH_LIMIT_MB * MB
    rows = (
        ("payload", f"{size} bytes ({size / MB:.1f} MB), sha256 {sha256[:16]}…"),
        ("rounds", f"{rounds} each, taking turns after a warm-up copy: fastest [range]"),
        ("loopback TCP copy to disk (baseline)", describe_rounds(baselines)),
        ("LPD receive-job into the node", describe_rounds(lpds)),
        ("LPD / baseline (fastest)", f"{lpd.mb_per_s / baseline.mb_per_s:6.2f}x"),
        ("server RSS growth during LPD (peak)", f"{growth / MB:6.1f} MB"),
        ("integrity", "; ".join(problems) or "ok: every job row and file match the payload"),
        (
            f"RSS growth < {RSS_GROWTH_LIMIT_MB:.0f} MB",
            f"{'PASS' if growth_ok else 'FAIL'} ({growth / MB:.1f} MB)",
        ),
    )
    return Outcome(NAME, rows, growth_ok and not problems, baseline, lpd, growth)


def run(size: int = DEFAULT_SIZE, rounds: int = ROUNDS) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="pf-bench-lpd-"))
    try:
        payload = work / "payload.bin"
        say(f"writing a payload of {size} bytes in {work}")
        sha256 = write_payload(payload, size)
        return asyncio.run(_measure(work, payload, size, sha256, rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
