"""The LPR client (printfabric.lpd) against CUPS's cups-lpd, and against LPD servers that
misbehave on purpose; the control-file model on its own, with golden bytes and properties."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from printfabric.ipp import IppClient, Operation, new_request
from printfabric.lpd import (
    FIELD_LIMITS,
    ControlFile,
    LpdError,
    PrintFile,
    clean,
    queue_state,
    remove_jobs,
    send_job,
)
from pypdf import PdfWriter

from tests.support.cups import make_big_document
from tests.support.lpd_peer import CupsLpd
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"


async def contents(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


def make_pdf(path: Path, pages: int = 2) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "PrintFabric LPR test"})
    buffer = io.BytesIO()
    writer.write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


# --- through cups-lpd into cupsd -----------------------------------------------------------


async def test_pdf_arrives_byte_identical_and_owned_by_the_login(
    cups_lpd: CupsLpd, tmp_path: Path
) -> None:
    out = tmp_path / "printed.bin"
    await cups_lpd.add_file_queue("office", out)
    pdf = make_pdf(tmp_path / "report.pdf")

    number = await send_job(
        HOST,
        cups_lpd.port,
        "office",
        pdf,
        user="alice.martin",
        host_name="ws-17.example.lan",
        job_name="Quarterly report",
        source_name="report.pdf",
        job_number=42,
    )

    assert number == 42
    (job,) = await cups_lpd.jobs("office")
    assert job["job-originating-user-name"] == "alice.martin"
    assert job["job-name"] == "Quarterly report"
    assert job["document-name-supplied"] == "report.pdf"
    assert await cups_lpd.cupsd.wait_job_done_async("office", job["job-id"], 30) == "completed"
    assert await contents(out) == await contents(pdf)


async def test_20_mb_document_streams_with_flat_memory(cups_lpd: CupsLpd, tmp_path: Path) -> None:
    out = tmp_path / "printed.bin"
    await cups_lpd.add_file_queue("big", out)
    big = await asyncio.to_thread(make_big_document, tmp_path / "big.pdf", 20 << 20)

    tracemalloc.start()
    try:
        await send_job(HOST, cups_lpd.port, "big", big, user="bob", host_name="ws")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 << 20, f"sending 20 MB took {peak / 1e6:.1f} MB of memory"
    (job,) = await cups_lpd.jobs("big")
    assert job["job-originating-user-name"] == "bob"
    assert await cups_lpd.cupsd.wait_job_done_async("big", job["job-id"], 30) == "completed"
    assert await contents(out) == await contents(big)


async def test_data_file_first_works_too(cups_lpd: CupsLpd, tmp_path: Path) -> None:
    out = tmp_path / "printed.bin"
    await cups_lpd.add_file_queue("bsd", out)
    pdf = make_pdf(tmp_path / "doc.pdf", pages=1)
    await send_job(HOST, cups_lpd.port, "bsd", pdf, user="carol", host_name="ws", data_first=True)
    (job,) = await cups_lpd.jobs("bsd")
    assert job["job-originating-user-name"] == "carol"
    assert await cups_lpd.cupsd.wait_job_done_async("bsd", job["job-id"], 30) == "completed"
    assert await contents(out) == await contents(pdf)


async def test_unknown_queue_gets_a_negative_acknowledgement(
    cups_lpd: CupsLpd, tmp_path: Path
) -> None:
    pdf = make_pdf(tmp_path / "doc.pdf", pages=1)
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, cups_lpd.port, "nosuchqueue", pdf, user="alice", host_name="ws")
    assert caught.value.reason == "QUEUE_REFUSED"
    assert caught.value.message == (
        f"the printer at {HOST}:{cups_lpd.port} refused queue 'nosuchqueue' "
        "(negative acknowledgement 1)"
    )


async def test_queue_state_and_remove_a_waiting_job(cups_lpd: CupsLpd, tmp_path: Path) -> None:
    await cups_lpd.add_file_queue("paused", tmp_path / "printed.bin")
    cupsd = cups_lpd.cupsd
    async with IppClient(cupsd.uri("paused")) as client:  # a stopped printer keeps its jobs
        reply = await client.request(
            new_request(Operation.PAUSE_PRINTER, cupsd.uri("paused"), user="root")
        )
        assert reply.status.is_success, reply.status.keyword
    pdf = make_pdf(tmp_path / "doc.pdf", pages=1)
    await send_job(HOST, cups_lpd.port, "paused", pdf, user="dave", host_name="ws", job_name="W")

    (job,) = await cups_lpd.jobs("paused")
    state = await queue_state(HOST, cups_lpd.port, "paused", long=True)
    assert "dave" in state and str(job["job-id"]) in state, state

    await remove_jobs(HOST, cups_lpd.port, "paused", "dave", [job["job-id"]])
    assert await cupsd.wait_job_done_async("paused", job["job-id"], 10) == "canceled"
    with pytest.raises(LpdError) as caught:
        await remove_jobs(HOST, cups_lpd.port, "paused", "dave", [99999])
    assert caught.value.reason == "REMOVE_REFUSED"


# --- servers that misbehave, and no server at all -------------------------------------------


@dataclass
class ScriptedLpd:
    """An LPD server on a loopback port that answers each step as scripted.

    `answers` is consumed one per step (command, subcommand, file contents): an octet to send,
    or None to go silent. It reads each file whole before answering for it.
    """

    answers: list[bytes | None]
    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            line = await reader.readline()
            self.received += line
            pending = iter(self.answers)
            if not await self._answer(writer, next(pending)):
                return
            while line := await reader.readline():
                self.received += line
                if not await self._answer(writer, next(pending)):
                    return
                count = int(line[1:].split(b" ")[0])
                self.received += await reader.readexactly(count + 1)
                if not await self._answer(writer, next(pending)):
                    return
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, answer: bytes | None) -> bool:
        if answer is None:
            await asyncio.sleep(3600)  # stalls: the client's timeout has to end this
            return False
        writer.write(answer)
        await writer.drain()
        return answer == b"\x00"


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedLpd]:
    server = ScriptedLpd(answers=[])
    tcp = await asyncio.start_server(server.handle, HOST, 0)
    server.port = tcp.sockets[0].getsockname()[1]
    async with tcp:
        yield server
        for task in server.tasks:
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)


async def test_a_server_that_stalls_times_out(scripted: ScriptedLpd, tmp_path: Path) -> None:
    scripted.answers = [b"\x00", None]  # takes the job command, then never answers again
    doc = tmp_path / "doc.prn"
    doc.write_bytes(b"hello")
    started = asyncio.get_running_loop().time()
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, scripted.port, "q", doc, user="u", host_name="h", timeout=0.5)
    assert caught.value.reason == "TIMEOUT"
    assert (
        caught.value.message
        == f"the printer at {HOST}:{scripted.port} took more than 0.5 s to acknowledge"
    )
    assert asyncio.get_running_loop().time() - started < 3


@pytest.mark.parametrize(
    ("answers", "refusal"),
    [
        ([b"\x00", b"\x00", b"\x00", b"\x02"], "refused the data file of job 7"),
        ([b"\x00", b"\x00", b"\x00", b"\x00", b"\x01"], "did not take the data file of job 7"),
    ],
    ids=["before-the-bytes", "after-the-bytes"],
)
async def test_a_server_that_refuses_the_data_file(
    scripted: ScriptedLpd, tmp_path: Path, answers: list[bytes | None], refusal: str
) -> None:
    scripted.answers = answers
    doc = tmp_path / "doc.prn"
    data = b"\x1b%-12345X@PJL\r\n" * 100
    doc.write_bytes(data)
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, scripted.port, "q", doc, user="u", host_name="h", job_number=7)
    assert caught.value.reason == "DATA_FILE_REFUSED"
    code = answers[-1][0]  # type: ignore[index]
    assert caught.value.message == (
        f"the printer at {HOST}:{scripted.port} {refusal} (negative acknowledgement {code})"
    )
    # What it got: the job command, then the control file (first), then the data subcommand.
    assert scripted.received.startswith(b"\x02q\n\x02")
    assert b"\x03%d dfA007h\n" % len(data) in scripted.received


async def test_nothing_listening_is_connection_refused(tmp_path: Path) -> None:
    doc = tmp_path / "doc.prn"
    doc.write_bytes(b"x")
    port = free_port()
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, port, "q", doc, user="u", host_name="h")
    assert caught.value.reason == "CONNECTION_REFUSED"
    assert f"{HOST}:{port} refused the connection" in caught.value.message


@pytest.mark.parametrize("queue", ["", "two words", "new\nline", "x" * 128, "caf\u00e9"])
async def test_bad_queue_names_are_refused_before_connecting(queue: str, tmp_path: Path) -> None:
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, free_port(), queue, tmp_path / "none", user="u", host_name="h")
    assert caught.value.reason == "BAD_QUEUE_NAME"


async def test_a_missing_document_is_no_document(tmp_path: Path) -> None:
    with pytest.raises(LpdError) as caught:
        await send_job(HOST, free_port(), "q", tmp_path / "gone.pdf", user="u", host_name="h")
    assert caught.value.reason == "NO_DOCUMENT"


# --- the control file ---------------------------------------------------------------------


def test_control_file_golden_bytes() -> None:
    control = ControlFile.for_job(
        job_number=7,
        host="ws-17",
        user="alice",
        job_name="Report",
        title="Report Q3",
        source_name="report.pdf",
        copies=2,
        banner=True,
    )
    assert control.encode() == (
        b"Hws-17\nPalice\nJReport\nLalice\nTReport Q3\n"
        b"Nreport.pdf\nldfA007ws-17\nldfA007ws-17\nUdfA007ws-17\n"
    )
    assert ControlFile.parse(control.encode()) == control


def test_fields_are_cleaned_and_cut_to_rfc_limits() -> None:
    control = ControlFile.for_job(
        job_number=999,
        host="a very long host name that goes on and on.example.com",
        user="eve\nPmallory",
        job_name="x" * 200,
        title="tab\there\r\nand \x00 nul",
    )
    lines = control.encode().decode().split("\n")[:-1]
    assert lines[0] == "Ha very long host name that goes"
    assert lines[1] == "Peve Pmallory"
    assert lines[2] == "J" + "x" * 99
    assert lines[3] == "Ttab here and   nul"
    # The file names keep only letters, digits, dots and dashes of the host name.
    assert lines[4] == "ldfA999averylonghostnamethatgoesonando"
    assert clean("\u00e9" * 20, 31) == "\u00e9" * 15  # 30 octets: never half a character


def test_parse_takes_bsd_lpr_order_copies_and_unknown_lines() -> None:
    data = (
        b"Hbsdhost\nProot\nJjob\nCA\nM root\n"
        b"fdfA001bsdhost\nfdfA001bsdhost\nNnotes.txt\nUdfA001bsdhost\n"
        b"odfB001bsdhost\nNpicture.ps\nUdfB001bsdhost\n"
    )
    control = ControlFile.parse(data)
    assert control.files == (
        PrintFile("dfA001bsdhost", "f", 2, "notes.txt"),
        PrintFile("dfB001bsdhost", "o", 1, "picture.ps"),
    )
    assert (control.host, control.user, control.job_name, control.job_class) == (
        "bsdhost",
        "root",
        "job",
        "A",
    )
    assert control.extra == (("M", " root"),)
    assert ControlFile.parse("Hh\nPj\xfcrgen\n".encode("latin-1")).user == "j\u00fcrgen"


@pytest.mark.parametrize(
    "data",
    [b"Hh\nPu", b"Hh\n", b"Hh\nPu\nldf/../../etc/passwd\n", b"Hh\nPu\nldfA\x00\n"],
    ids=["no-final-newline", "no-user", "path-in-name", "nul"],
)
def test_parse_rejects_a_bad_control_file(data: bytes) -> None:
    with pytest.raises(LpdError) as caught:
        ControlFile.parse(data)
    assert caught.value.reason == "BAD_CONTROL_FILE"


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(),
    host=st.text(),
    job_name=st.text(),
    title=st.text(),
    source_name=st.text(),
    copies=st.integers(1, 5),
    banner=st.booleans(),
)
def test_any_strings_make_a_control_file_with_one_line_per_command(
    user: str, host: str, job_name: str, title: str, source_name: str, copies: int, banner: bool
) -> None:
    control = ControlFile.for_job(
        job_number=123,
        host=host,
        user=user,
        job_name=job_name,
        title=title,
        source_name=source_name,
        copies=copies,
        banner=banner,
    )
    data = control.encode()
    lines = data.split(b"\n")
    assert lines[-1] == b""
    expected = 2 + bool(control.job_name) + banner + bool(control.title)
    expected += bool(control.files[0].source_name) + copies + 1
    assert len(lines) - 1 == expected
    for line in lines[:-1]:
        assert b"\r" not in line and b"\x00" not in line
        letter = chr(line[0])
        assert len(line) - 1 <= FIELD_LIMITS.get(letter, 253), line
        line.decode("utf-8")  # never cut inside a character
    assert ControlFile.parse(data) == control
