"""The LPD server (printfabric.lpd.server) against our own LPR client, rlpr and the CUPS lpd
backend; against clients that lie, stall or pile up connections; and under a protocol fuzzer.

Every refusal is checked twice: the client hears the negative acknowledgement (or the close),
and the spool folder is empty and the handler never saw the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from printfabric.lpd import (
    ControlFile,
    LpdError,
    LpdLimits,
    LpdRefused,
    LpdServer,
    ReceivedJob,
    queue_state,
    remove_jobs,
    send_job,
    serving_lpd,
)

from tests.support.lpr_clients import cups_lpd_backend, rlpr

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"
QUEUE = "office"
ACK, NACK = b"\x00", b"\x01"
RECEIVE = b"\x02%s\n" % QUEUE.encode()


@dataclass
class Arrived:
    """A job the handler took, and where it moved each data file (by name)."""

    job: ReceivedJob
    kept: dict[str, Path]

    def contents(self) -> dict[str, bytes]:
        return {name: path.read_bytes() for name, path in self.kept.items()}


@dataclass
class RecordingHandler:
    """Takes jobs as a node would: moves each data file into a folder of its own and remembers
    the job. Refuses queue 'closed', jobs of user 'mallory' and removals by agent 'mallory';
    with `fail` set, accept_job breaks the way a bug would."""

    keep: Path
    jobs: list[Arrived] = field(default_factory=list)
    fail: bool = False
    refuse_all: bool = False
    states: list[tuple[str, list[str], bool]] = field(default_factory=list)
    removals: list[tuple[str, str, list[str]]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)

    async def check_queue(self, queue: str, peer: str) -> None:
        if queue == "closed":
            raise LpdRefused(f"there is no queue {queue!r}", "UNKNOWN_QUEUE")

    async def accept_job(self, job: ReceivedJob) -> None:
        if self.fail:
            raise RuntimeError("the job table is gone")
        if self.refuse_all or job.control.user == "mallory":
            raise LpdRefused(f"{job.control.user} is over quota", "QUOTA_EXCEEDED")
        kept: dict[str, Path] = {}
        for _, received in job.files:
            if received.name not in kept:
                kept[received.name] = self.keep / f"{len(self.jobs)}-{received.name}"
                await asyncio.to_thread(os.replace, received.path, kept[received.name])
        self.jobs.append(Arrived(job, kept))

    async def queue_state(self, queue: str, items: Sequence[str], long: bool, peer: str) -> str:
        self.states.append((queue, list(items), long))
        return f"{queue} is ready\n{len(self.jobs)} jobs, for {' '.join(items) or 'everyone'}\n"

    async def remove_jobs(self, queue: str, agent: str, items: Sequence[str], peer: str) -> None:
        if agent == "mallory":
            raise LpdRefused("mallory may not remove jobs", "NOT_OWNER")
        self.removals.append((queue, agent, list(items)))

    async def print_waiting(self, queue: str, peer: str) -> None:
        self.waiting.append(queue)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def handler(tmp_path: Path) -> RecordingHandler:
    keep = tmp_path / "kept"
    keep.mkdir()
    return RecordingHandler(keep)


@pytest.fixture
async def server(handler: RecordingHandler, spool: Path) -> AsyncIterator[LpdServer]:
    async with serving_lpd(handler, spool, HOST, 0) as running:
        yield running


def document(path: Path, size: int, seed: int = 1179) -> Path:
    """size random bytes: every octet value, NUL and LF included, so nothing passes by luck."""
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def control(*data_files: str, user: str = "alice", extra: str = "") -> bytes:
    lines = ["Hws-17", f"P{user}", "JQuarterly report", *(f"l{name}" for name in data_files)]
    return ("\n".join(lines) + "\n" + extra).encode()


def subfile(kind: int, name: str, body: bytes, count: int | None = None, end: bytes = ACK) -> bytes:
    """A control (kind 2) or data (kind 3) file subcommand with its bytes and trailing octet."""
    size = len(body) if count is None else count
    return b"%c%d %s\n" % (kind, size, name.encode("latin-1")) + body + end


async def exchange(port: int, *pieces: bytes) -> bytes:
    """Sends the pieces, closes our side, and returns all the server said until it closed."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
            writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def settled(server: LpdServer, spool: Path) -> list[str]:
    """The files left in the spool folder once the server has no connection open."""
    for _ in range(2000):  # 10 s
        if not server.connection_count:
            return sorted(os.listdir(spool))
        await asyncio.sleep(0.005)
    raise AssertionError(f"{server.connection_count} connections still open after 10 s")


async def assert_nothing_left(server: LpdServer, spool: Path, handler: RecordingHandler) -> None:
    assert await settled(server, spool) == []
    assert handler.jobs == []
    assert os.listdir(handler.keep) == []


# --- our own client --------------------------------------------------------------------------


@pytest.mark.parametrize("data_first", [False, True], ids=["control-first", "data-first"])
async def test_job_from_our_client_arrives_byte_identical(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path, data_first: bool
) -> None:
    pdf = document(tmp_path / "report.pdf", 3 << 20)

    number = await send_job(
        HOST,
        server.port,
        QUEUE,
        pdf,
        user="alice.martin",
        host_name="ws-17.example.lan",
        job_name="Quarterly report",
        title="Q3",
        source_name="report.pdf",
        copies=2,
        job_number=42,
        data_first=data_first,
    )

    (arrived,) = handler.jobs
    job = arrived.job
    assert (job.queue, job.peer, job.number, number) == (QUEUE, HOST, 42, 42)
    assert job.control_name == "cfA042ws-17.example.lan"
    assert (job.control.user, job.control.host) == ("alice.martin", "ws-17.example.lan")
    assert (job.control.job_name, job.control.title) == ("Quarterly report", "Q3")
    ((entry, received),) = job.files
    assert (entry.name, entry.copies, entry.source_name) == (
        "dfA042ws-17.example.lan",
        2,
        "report.pdf",
    )
    sent = pdf.read_bytes()
    assert arrived.contents() == {entry.name: sent}
    assert received.size == len(sent)
    assert received.sha256 == hashlib.sha256(sent).hexdigest()
    assert received.head == sent[:4096]
    assert await settled(server, spool) == []


async def test_spool_folder_is_private(server: LpdServer, spool: Path) -> None:
    assert os.stat(spool).st_mode & 0o777 == 0o700


async def test_several_data_files_and_jobs_on_one_connection(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    first, second, stray = b"page one\x00\n", b"page two" * 1000, b"not in the control file"
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(3, "dfB001ws", second),
        subfile(3, "dfZ001ws", stray),
        subfile(2, "cfA001ws", control("dfA001ws", "dfB001ws")),
        subfile(3, "dfA001ws", first),
        # A second job right behind the first, control file first this time.
        subfile(2, "cfA002ws", control("dfA002ws", user="bob")),
        subfile(3, "dfA002ws", second),
    )

    assert said == ACK * 13  # the command, then each file's line and its bytes
    one, two = handler.jobs
    assert [entry.name for entry, _ in one.job.files] == ["dfA001ws", "dfB001ws"]
    assert one.contents() == {"dfA001ws": first, "dfB001ws": second}
    assert (one.job.number, one.job.control.user) == (1, "alice")
    assert two.contents() == {"dfA002ws": second}
    assert (two.job.number, two.job.control.user) == (2, "bob")
    assert await settled(server, spool) == []  # the stray data file went too


async def test_data_streams_to_disk_with_flat_memory(
    server: LpdServer, handler: RecordingHandler, tmp_path: Path
) -> None:
    big = await asyncio.to_thread(document, tmp_path / "big.bin", 32 << 20)
    tracemalloc.start()
    try:
        await send_job(HOST, server.port, QUEUE, big, user="bob", host_name="ws")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Client and server share this process: about 1 MiB in flight on each side plus buffers.
    assert peak < 12 << 20, f"32 MB through the server took {peak / 1e6:.1f} MB of memory"
    (arrived,) = handler.jobs
    assert arrived.job.files[0][1].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()


# --- real LPR clients ------------------------------------------------------------------------


async def test_job_from_rlpr_arrives_byte_identical(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path
) -> None:
    pdf = document(tmp_path / "scan.pdf", 2 << 20)

    await rlpr(HOST, server.port, QUEUE, pdf, user="carol", tmp=tmp_path)

    (arrived,) = handler.jobs
    assert arrived.job.control.user == "carol"
    assert list(arrived.contents().values()) == [pdf.read_bytes()]
    assert await settled(server, spool) == []


@pytest.mark.parametrize("order", ["control,data", "data,control"])
async def test_job_from_the_cups_lpd_backend_arrives_byte_identical(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path, order: str
) -> None:
    pdf = document(tmp_path / "invoice.pdf", 2 << 20)

    await cups_lpd_backend(
        HOST, server.port, QUEUE, pdf, user="dave", title="Invoice 7", order=order
    )

    (arrived,) = handler.jobs
    assert (arrived.job.control.user, arrived.job.control.job_name) == ("dave", "Invoice 7")
    assert list(arrived.contents().values()) == [pdf.read_bytes()]
    assert await settled(server, spool) == []


# --- clients that lie or misbehave ----------------------------------------------------------


async def test_data_file_longer_than_its_count_is_refused(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(2, "cfA001ws", control("dfA001ws")),
        subfile(3, "dfA001ws", b"0123456789", count=5),
    )
    assert said == ACK * 4 + NACK
    await assert_nothing_left(server, spool, handler)


async def test_control_file_longer_than_its_count_is_refused(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    body = control("dfA001ws")
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(3, "dfA001ws", b"0123456789"),
        subfile(2, "cfA001ws", body, count=len(body) - 3),
    )
    assert said == ACK * 4 + NACK
    await assert_nothing_left(server, spool, handler)


async def test_data_file_shorter_than_its_count_then_hang_up_leaves_nothing(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(2, "cfA001ws", control("dfA001ws")),
        b"\x03100000 dfA001ws\n" + b"x" * 50_000,
    )
    assert said == ACK * 4
    await assert_nothing_left(server, spool, handler)


async def test_oversized_control_file_is_refused_before_it_is_read(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(server.port, RECEIVE, b"\x02%d cfA001ws\n" % (16 * 1024 + 1))
    assert said == ACK + NACK
    await assert_nothing_left(server, spool, handler)


async def test_job_over_the_size_limit_is_refused_before_its_data_is_read(
    handler: RecordingHandler, spool: Path
) -> None:
    async with serving_lpd(handler, spool, HOST, 0, LpdLimits(max_job_bytes=1000)) as server:
        said = await exchange(
            server.port,
            RECEIVE,
            subfile(3, "dfA001ws", b"a" * 600),
            b"\x03600 dfB001ws\n",  # 1200 bytes in all: refused at the subcommand line
        )
        assert said == ACK * 3 + NACK
        await assert_nothing_left(server, spool, handler)


async def test_data_file_of_unknown_length_is_refused(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(server.port, RECEIVE, b"\x030 dfA001ws\n", b"until the end")
    assert said == ACK + NACK
    await assert_nothing_left(server, spool, handler)


@pytest.mark.parametrize(
    "line",
    [
        b"\x02100 ../../etc/cron.d/x\n",
        b"\x02100 cfA/../../x\n",
        b"\x03100 dfA001ws/x\n",
        b"\x03100 xfA001ws\n",
        b"\x03100 cfA001ws\n",  # a control file's name for a data file
        b"\x03100 df\xc3\xa9001ws\n",
        b"\x03100 dfA001ws extra\n",
        b"\x03100 dfA" + b"x" * 253 + b"\n",
        b"\x03-5 dfA001ws\n",
        b"\x03 dfA001ws\n",
        b"\x07100 dfA001ws\n",
    ],
    ids=[
        "path",
        "slash-in-control",
        "slash-in-data",
        "no-df",
        "cf-as-data",
        "non-ascii",
        "two-names",
        "256-octets",
        "negative",
        "no-count",
        "unknown-subcommand",
    ],
)
async def test_bad_subcommand_is_refused(
    server: LpdServer, handler: RecordingHandler, spool: Path, line: bytes
) -> None:
    said = await exchange(server.port, RECEIVE, subfile(3, "dfA001ws", b"fine"), line)
    assert said == ACK * 3 + NACK
    await assert_nothing_left(server, spool, handler)


@pytest.mark.parametrize(
    "body",
    [b"Pbob\nldfA001ws\n", b"Hws\nldfA001ws\n", b"Hws\nPbob\nJno files\n", b"Hws\nPbob\nldfA001ws"],
    ids=["no-host", "no-user", "no-data-file", "no-final-newline"],
)
async def test_unusable_control_file_is_refused(
    server: LpdServer, handler: RecordingHandler, spool: Path, body: bytes
) -> None:
    said = await exchange(
        server.port, RECEIVE, subfile(3, "dfA001ws", b"data"), subfile(2, "cfA001ws", body)
    )
    assert said == ACK * 4 + NACK
    await assert_nothing_left(server, spool, handler)


async def test_job_missing_a_data_file_when_the_client_hangs_up_leaves_nothing(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(2, "cfA001ws", control("dfA001ws", "dfB001ws")),
        subfile(3, "dfA001ws", b"only the first"),
    )
    assert said == ACK * 5
    await assert_nothing_left(server, spool, handler)


async def test_abort_discards_the_job_so_far_and_the_next_one_arrives(
    server: LpdServer, handler: RecordingHandler, spool: Path
) -> None:
    said = await exchange(
        server.port,
        RECEIVE,
        subfile(3, "dfA001ws", b"never printed"),
        b"\x01\n",
        subfile(2, "cfA002ws", control("dfA002ws")),
        subfile(3, "dfA002ws", b"printed"),
    )
    assert said == ACK * 8
    (arrived,) = handler.jobs
    assert arrived.contents() == {"dfA002ws": b"printed"}
    assert await settled(server, spool) == []


async def test_silent_client_is_dropped_after_the_idle_timeout(
    handler: RecordingHandler, spool: Path
) -> None:
    limits = LpdLimits(idle_timeout=0.3)
    async with serving_lpd(handler, spool, HOST, 0, limits) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(RECEIVE + b"\x031000 dfA001ws\n" + b"x" * 500)
        async with asyncio.timeout(5):
            said = await reader.read()  # we never close: the server has to
        writer.close()
        assert said == ACK + ACK
        await assert_nothing_left(server, spool, handler)


async def test_closing_the_server_deletes_a_half_received_job(
    handler: RecordingHandler, spool: Path
) -> None:
    server = LpdServer(handler, spool)
    await server.start(HOST, 0)
    reader, writer = await asyncio.open_connection(HOST, server.port)
    try:
        writer.write(RECEIVE + b"\x03100000 dfA001ws\n" + b"x" * 50_000)
        assert await reader.readexactly(2) == ACK + ACK
        await server.close()
        assert os.listdir(spool) == []
        with contextlib.suppress(ConnectionError):
            assert await reader.read() == b""
    finally:
        writer.close()
    assert handler.jobs == []


@pytest.mark.parametrize(
    "limits",
    [LpdLimits(max_connections_per_peer=2), LpdLimits(max_connections=2)],
    ids=["per-peer", "total"],
)
async def test_connections_over_the_limit_are_closed_at_once(
    handler: RecordingHandler, spool: Path, tmp_path: Path, limits: LpdLimits
) -> None:
    async with serving_lpd(handler, spool, HOST, 0, limits) as server:
        held = [await asyncio.open_connection(HOST, server.port) for _ in range(2)]
        for reader, writer in held:
            writer.write(RECEIVE)
            assert await reader.readexactly(1) == ACK

        reader, writer = await asyncio.open_connection(HOST, server.port)
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(2):
                assert await reader.read() == b""
        writer.close()

        for _, writer in held:
            writer.close()
        assert await settled(server, spool) == []
        await send_job(
            HOST, server.port, QUEUE, document(tmp_path / "d", 100), user="u", host_name="h"
        )
        assert len(handler.jobs) == 1


async def test_job_the_handler_refuses_gets_a_negative_acknowledgement(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path
) -> None:
    with pytest.raises(LpdError) as caught:
        await send_job(
            HOST, server.port, QUEUE, document(tmp_path / "d", 5000), user="mallory", host_name="ws"
        )
    assert caught.value.reason == "DATA_FILE_REFUSED"  # the data file completed the job
    await assert_nothing_left(server, spool, handler)


async def test_handler_that_crashes_refuses_the_job_and_the_server_carries_on(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path
) -> None:
    doc = document(tmp_path / "d", 5000)
    handler.fail = True
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, server.port, QUEUE, doc, user="alice", host_name="ws", data_first=True)
    assert caught.value.reason == "CONTROL_FILE_REFUSED"
    await assert_nothing_left(server, spool, handler)

    handler.fail = False
    await send_job(HOST, server.port, QUEUE, doc, user="alice", host_name="ws")
    assert len(handler.jobs) == 1


async def test_queue_the_handler_refuses_gets_a_negative_acknowledgement(
    server: LpdServer, handler: RecordingHandler, spool: Path, tmp_path: Path
) -> None:
    with pytest.raises(LpdError) as caught:
        await send_job(
            HOST, server.port, "closed", document(tmp_path / "d", 10), user="u", host_name="h"
        )
    assert caught.value.reason == "QUEUE_REFUSED"
    await assert_nothing_left(server, spool, handler)


@pytest.mark.parametrize(
    ("first_line", "answer"),
    [
        (b"\x02bad queue\n", NACK),
        (b"\x02" + b"q" * 2000 + b"\n", NACK),
        (b"\x02\n", NACK),
        (b"\x09office\n", b""),
        (b"\x03" + b"q" * 2000 + b"\n", b""),
        (b"\x05office\n", b""),  # no agent
        (b"GET / HTTP/1.1\r\n", b""),
    ],
    ids=["space", "too-long", "empty", "unknown", "state-too-long", "remove-no-agent", "http"],
)
async def test_bad_command_line_is_refused_or_closed(
    server: LpdServer, handler: RecordingHandler, spool: Path, first_line: bytes, answer: bytes
) -> None:
    assert await exchange(server.port, first_line) == answer
    await assert_nothing_left(server, spool, handler)
    assert (handler.states, handler.removals, handler.waiting) == ([], [], [])


# --- the other daemon commands -------------------------------------------------------------


async def test_queue_state_comes_from_the_handler(
    server: LpdServer, handler: RecordingHandler
) -> None:
    short = await queue_state(HOST, server.port, QUEUE)
    long = await queue_state(HOST, server.port, QUEUE, long=True, items=["alice", 12])

    assert short == "office is ready\n0 jobs, for everyone\n"
    assert long == "office is ready\n0 jobs, for alice 12\n"
    assert handler.states == [(QUEUE, [], False), (QUEUE, ["alice", "12"], True)]


async def test_remove_jobs_reaches_the_handler(
    server: LpdServer, handler: RecordingHandler
) -> None:
    await remove_jobs(HOST, server.port, QUEUE, "alice", [12, "bob"])
    with pytest.raises(LpdError) as caught:
        await remove_jobs(HOST, server.port, QUEUE, "mallory", [12])

    assert caught.value.reason == "REMOVE_REFUSED"
    assert handler.removals == [(QUEUE, "alice", ["12", "bob"])]


async def test_print_waiting_jobs_reaches_the_handler(
    server: LpdServer, handler: RecordingHandler
) -> None:
    assert await exchange(server.port, b"\x01office\n") == b""
    assert handler.waiting == [QUEUE]


# --- properties -------------------------------------------------------------------------------


_control_lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.tuples(st.sampled_from(list(b"HPJCLTNUIMWSlfopdx\x00 ")), st.binary(max_size=30)).map(
            lambda pair: bytes([pair[0]]) + pair[1]
        ),
    ),
    max_size=12,
).map(lambda lines: b"\n".join(lines) + b"\n")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), _control_lines))
def test_control_file_parse_returns_a_control_file_or_raises_lpd_error(data: bytes) -> None:
    try:
        parsed = ControlFile.parse(data)
    except LpdError as exc:
        assert exc.reason == "BAD_CONTROL_FILE"
    else:
        assert isinstance(parsed, ControlFile)


FUZZ_NAMES = ("dfA001fz", "dfB001fz")


@dataclass(frozen=True)
class Piece:
    """One thing a fuzzed client sends; `body` is set for a data file sent with a true count."""

    wire: bytes
    name: str = ""
    body: bytes | None = None
    last: bool = False  # nothing can follow it on the connection (a short count)


def _data_file(name: str, body: bytes) -> Piece:
    body = b"T" + body  # honest bodies start with T, lies with L: no lie can pass for one
    return Piece(subfile(3, name, body), name, body)


def _lying_file(kind: int, name: str, body: bytes, longer: bool) -> Piece:
    body = b"L" + body
    if longer:
        # The octet where the count ends is not NUL, so the lie is always caught.
        body = body.replace(b"\x00", b"\x01")
        return Piece(subfile(kind, name, body, count=len(body) - 1))
    return Piece(b"%c%d %s\n" % (kind, len(body) + 10, name.encode()) + body, last=True)


_names = st.sampled_from(FUZZ_NAMES)
_bodies = st.binary(min_size=1, max_size=200)
_true_data = st.builds(_data_file, _names, _bodies)
_true_control = st.builds(
    lambda names, user: Piece(subfile(2, "cfA001fz", control(*names, user=user))),
    st.lists(_names, min_size=1, max_size=2, unique=True),
    st.sampled_from(["alice", "alice", "mallory"]),
)
# Honest files are drawn most often, so that jobs complete and lies land where they matter.
_piece = st.one_of(
    _true_data,
    _true_data,
    _true_control,
    _true_control,
    st.builds(_lying_file, st.sampled_from([2, 3]), _names, _bodies, st.booleans()),
    st.builds(_lying_file, st.sampled_from([2, 3]), _names, _bodies, st.booleans()),
    st.builds(lambda body: Piece(subfile(2, "cfA001fz", body)), st.binary(max_size=60)),
    st.sampled_from([Piece(b"\x01\n"), Piece(b"\x030 dfA001fz\n"), Piece(b"\x02999999 cfA1\n")]),
    st.binary(min_size=1, max_size=40).map(Piece),
)
_first_line = st.one_of(
    st.just(RECEIVE),
    st.just(RECEIVE),
    st.just(RECEIVE),
    st.sampled_from(
        [
            b"\x02closed\n",
            b"\x03office\n",
            b"\x04office a 1\n",
            b"\x05office a 1\n",
            b"\x01office\n",
        ]
    ),
    st.binary(min_size=1, max_size=20),
)


@st.composite
def _damaged_job(draw: st.DrawFn) -> list[Piece]:
    """An honest job in any order with one thing done to it: a file replaced by a lie, a
    random piece slipped in, or the connection cut short (or, now and then, nothing)."""
    names = draw(st.lists(_names, min_size=1, max_size=2, unique=True))
    pieces = [Piece(subfile(2, "cfA001fz", control(*names)))]
    pieces += [_data_file(name, draw(_bodies)) for name in names]
    pieces = draw(st.permutations(pieces))
    where = draw(st.integers(0, len(pieces) - 1))
    damage = draw(st.sampled_from(["lie", "none", "lie", "insert", "lie", "cut"]))
    if damage == "lie":
        kind, name = (2, "cfA001fz") if pieces[where].body is None else (3, pieces[where].name)
        lie = _lying_file(kind, name, draw(_bodies), draw(st.booleans()))
        pieces[where] = lie
    elif damage == "insert":
        pieces.insert(where, draw(_piece))
    elif damage == "cut":
        pieces = pieces[:where]
    return pieces


_connection = st.tuples(
    _first_line,
    st.one_of(st.lists(_piece, max_size=6), _damaged_job(), _damaged_job()),
    st.sampled_from([False, False, True]),  # True: hang up without reading the answers
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(connections=st.lists(_connection, min_size=1, max_size=3))
async def test_fuzzed_clients_leave_only_complete_jobs_and_no_files(
    server: LpdServer,
    handler: RecordingHandler,
    spool: Path,
    tmp_path: Path,
    connections: list[tuple[bytes, list[Piece], bool]],
) -> None:
    handler.jobs.clear()
    sent: dict[str, set[bytes]] = {name: set() for name in FUZZ_NAMES}
    for first_line, pieces, hang_up in connections:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        try:
            with contextlib.suppress(ConnectionError):
                writer.write(first_line)
                for piece in pieces:
                    writer.write(piece.wire)
                    if piece.body is not None:
                        sent[piece.name].add(piece.body)
                    if piece.last:
                        break
                await writer.drain()
                if not hang_up:  # else: close at once, unread answers and all
                    writer.write_eof()
                    async with asyncio.timeout(10):
                        await reader.read()
        finally:
            writer.close()

    assert await settled(server, spool) == []
    event(f"jobs accepted: {len(handler.jobs)}")
    for arrived in handler.jobs:
        job = arrived.job
        assert job.control.user == "alice"
        assert {entry.name for entry, _ in job.files} == set(arrived.kept)
        for _, received in job.files:
            data = arrived.kept[received.name].read_bytes()
            assert data in sent[received.name]
            assert (received.size, received.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    for kept in os.listdir(handler.keep):
        os.unlink(handler.keep / kept)

    # Whatever came before, the next honest client is served.
    before = len(handler.jobs)
    doc = tmp_path / "after-fuzz.bin"
    if not doc.exists():
        document(doc, 3000)
    await send_job(HOST, server.port, QUEUE, doc, user="alice", host_name="ws")
    assert len(handler.jobs) == before + 1
    assert list(handler.jobs[-1].contents().values()) == [doc.read_bytes()]
    assert await settled(server, spool) == []
