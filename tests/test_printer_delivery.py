# ruff: noqa: F811  (the tests take the imported fixtures as arguments)
"""Delivering a spooled job to a printer by its device URI, against real printers: CUPS's
ippeveprinter over ipp:// and ipps://, cups-lpd over lpd://, a raw port over socket://, a
folder over file://."""

from __future__ import annotations

import asyncio
import io
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from printfabric.delivery import DeliveryError, DeliveryJob, deliver
from printfabric.ipp import Attribute, IppClient, JobState, Operation, Tag, new_request
from pypdf import PdfWriter

from tests.support.cups import (
    IppEvePrinter,
    cups_avahi,  # noqa: F401  (fixture behind ippeveprinter)
    ippeveprinter,  # noqa: F401  (fixture)
)
from tests.support.lpd_peer import CupsLpd
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(60)

HOST = "127.0.0.1"


def make_pdf(path: Path, pages: int = 3) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "minutes.pdf")


async def contents(path: Path) -> bytes:
    return await asyncio.to_thread(path.read_bytes)


async def printer_job(uri: str, job_id: int) -> dict[str, object]:
    """The job as the printer itself reports it (Get-Job-Attributes)."""
    request = new_request(Operation.GET_JOB_ATTRIBUTES, uri)
    request.operation_attributes.add(Attribute.integer("job-id", job_id))
    request.operation_attributes.add(Attribute.keyword("requested-attributes", "all"))
    async with IppClient(uri, ssl_context=False) as client:
        reply = await client.request(request)
    group = reply.group(Tag.JOB)
    assert group is not None, reply.status.keyword
    return {attr.name: attr.value for attr in group}


def job_for(document: Path, number: int = 12, title: str = "Board minutes") -> DeliveryJob:
    return DeliveryJob(
        number=number,
        title=title,
        owner_login="alice.martin",
        document_format="application/pdf",
        size=document.stat().st_size,
    )


# --- ipp:// and ipps:// to ippeveprinter ---------------------------------------------------


@pytest.mark.parametrize("scheme", ["ipp", "ipps"])
async def test_pdf_to_an_ipp_everywhere_printer(
    ippeveprinter: IppEvePrinter, pdf: Path, scheme: str
) -> None:
    uri = ippeveprinter.uri if scheme == "ipp" else ippeveprinter.ipps_uri

    result = await deliver(uri, pdf, job_for(pdf), timeout=20)

    assert result.printer_job_state == "completed"
    assert result.printer_job_id is not None and result.printer_job_id > 0
    assert result.message == f"Printed on {uri} (printer job {result.printer_job_id}, completed)"
    (saved,) = await asyncio.to_thread(ippeveprinter.wait_documents, 1)
    assert saved.name == f"{result.printer_job_id}-board_minutes.pdf"
    assert await contents(saved) == await contents(pdf) and result.bytes_sent == len(
        await contents(pdf)
    )
    job = await printer_job(ippeveprinter.uri, result.printer_job_id)
    assert job["job-originating-user-name"] == "alice.martin"
    assert job["job-name"] == "Board minutes"
    assert job["job-state"] == JobState.COMPLETED


async def test_ipps_checks_the_certificate_only_when_asked(
    ippeveprinter: IppEvePrinter, pdf: Path
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(ippeveprinter.ipps_uri, pdf, job_for(pdf), timeout=20, verify_tls=True)
    assert caught.value.reason == "UNTRUSTED_CERTIFICATE"
    assert ippeveprinter.ipps_uri in caught.value.message
    # An SSLContext of the caller's is used as it is.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    result = await deliver(ippeveprinter.ipps_uri, pdf, job_for(pdf), verify_tls=context)
    assert result.printer_job_state == "completed"


async def test_a_format_the_printer_does_not_list_goes_as_octet_stream(
    ippeveprinter: IppEvePrinter, pdf: Path
) -> None:
    job = DeliveryJob(13, "Odd type", "bob", "application/x-vendor-thing", None)
    result = await deliver(ippeveprinter.uri, pdf, job, timeout=20)
    assert result.printer_job_state == "completed"
    assert 'document-format="application/octet-stream"' in ippeveprinter.log_tail(400)
    (saved,) = await asyncio.to_thread(ippeveprinter.wait_documents, 1)
    assert await contents(saved) == await contents(pdf)  # it typed the bytes itself: .pdf


@pytest.fixture
async def slow_printer(tmp_path: Path, cups_avahi: None) -> AsyncIterator[IppEvePrinter]:
    """An ippeveprinter that takes a second per job: a second job meanwhile is told 'busy'."""
    command = tmp_path / "print-slowly"
    command.write_text("#!/bin/sh\nsleep 1\n")
    command.chmod(0o755)
    async with IppEvePrinter(tmp_path / "slow", extra=["-c", str(command)]) as printer:
        yield printer


async def test_a_busy_printer_gets_both_jobs_in_turn(
    slow_printer: IppEvePrinter, tmp_path: Path
) -> None:
    first = make_pdf(tmp_path / "first.pdf", pages=1)
    second = make_pdf(tmp_path / "second.pdf", pages=2)

    results = await asyncio.gather(
        deliver(slow_printer.uri, first, job_for(first, 1, "first"), timeout=20),
        deliver(slow_printer.uri, second, job_for(second, 2, "second"), timeout=20),
    )

    assert [r.printer_job_state for r in results] == ["completed", "completed"]
    assert "server-error-busy" in slow_printer.log_tail(400)
    saved = await asyncio.to_thread(slow_printer.wait_documents, 2)
    by_title = {path.name.split("-", 1)[1]: await contents(path) for path in saved}
    assert by_title == {"first.pdf": await contents(first), "second.pdf": await contents(second)}


async def test_a_busy_printer_past_the_timeout_is_an_error(
    slow_printer: IppEvePrinter, tmp_path: Path
) -> None:
    first = make_pdf(tmp_path / "first.pdf", pages=1)
    running = asyncio.create_task(deliver(slow_printer.uri, first, job_for(first), timeout=20))
    await asyncio.sleep(0.3)
    with pytest.raises(DeliveryError) as caught:
        await deliver(slow_printer.uri, first, job_for(first), timeout=0.5)
    assert caught.value.reason == "PRINTER_BUSY"
    assert re.fullmatch(
        rf"the printer at {re.escape(slow_printer.uri)} refused the job for 0\.\d s: "
        r"server-error-busy \(0x0507\), Currently printing another job\.",
        caught.value.message,
    ), caught.value.message
    assert (await running).printer_job_state == "completed"


async def test_a_job_the_printer_aborts_is_an_error(
    tmp_path: Path, cups_avahi: None, pdf: Path
) -> None:
    async with IppEvePrinter(tmp_path / "failing", extra=["-c", "/bin/false"]) as printer:
        with pytest.raises(DeliveryError) as caught:
            await deliver(printer.uri, pdf, job_for(pdf), timeout=20)
    assert caught.value.reason == "JOB_ABORTED"
    assert caught.value.message.startswith(f"the printer at {printer.uri} aborted job 1")


async def test_an_ipp_printer_that_is_down(pdf: Path) -> None:
    port = free_port()
    uri = f"ipp://alice:s3cret@{HOST}:{port}/ipp/print"
    with pytest.raises(DeliveryError) as caught:
        await deliver(uri, pdf, job_for(pdf), timeout=5)
    assert caught.value.reason == "CONNECTION_REFUSED"
    assert caught.value.message == (
        f"the printer at ipp://{HOST}:{port}/ipp/print refused the connection"
    )


# --- socket:// ----------------------------------------------------------------------------


@dataclass
class RawPort:
    """A JetDirect-like port 9100 on a loopback port: keeps what it reads until the client
    closes its side, then closes (or, with hold_open, keeps the connection)."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)
    hold_open: bool = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = bytearray()
        while chunk := await reader.read(1 << 16):
            data += chunk
        self.received.append(bytes(data))
        if self.hold_open:
            await asyncio.sleep(5)
        writer.close()


@pytest.fixture
async def raw_port() -> AsyncIterator[RawPort]:
    printer = RawPort()
    server = await asyncio.start_server(printer.handle, HOST, 0)
    printer.port = server.sockets[0].getsockname()[1]
    async with server:
        yield printer


async def test_socket_gets_the_bytes_as_they_are(raw_port: RawPort, tmp_path: Path) -> None:
    document = tmp_path / "job.pcl"
    data = bytes(range(256)) * 20_000  # 5 MB, every octet value
    await asyncio.to_thread(document.write_bytes, data)
    uri = f"socket://{HOST}:{raw_port.port}"

    result = await deliver(uri, document, job_for(document), timeout=10)

    assert result.message == f"Printed on {uri}"
    assert result.bytes_sent == len(data)
    assert raw_port.received == [data]


async def test_socket_printer_that_keeps_the_connection_open(raw_port: RawPort, pdf: Path) -> None:
    raw_port.hold_open = True
    result = await deliver(f"socket://{HOST}:{raw_port.port}", pdf, job_for(pdf), timeout=0.5)
    assert raw_port.received == [await contents(pdf)]
    assert result.bytes_sent == len(raw_port.received[0])


async def test_socket_nothing_listening(pdf: Path) -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as caught:
        await deliver(f"socket://{HOST}:{port}", pdf, job_for(pdf), timeout=5)
    assert caught.value.reason == "CONNECTION_REFUSED"


# --- lpd:// through cups-lpd --------------------------------------------------------------


async def test_lpd_prints_as_the_owner_login(cups_lpd: CupsLpd, pdf: Path, tmp_path: Path) -> None:
    out = tmp_path / "printed.bin"
    await cups_lpd.add_file_queue("floor2", out)
    uri = f"lpd://{HOST}:{cups_lpd.port}/floor2"

    result = await deliver(uri, pdf, job_for(pdf), host_name="node-7", timeout=10)

    assert result.message == f"Printed on {uri}"
    (job,) = await cups_lpd.jobs("floor2")
    assert job["job-originating-user-name"] == "alice.martin"
    assert job["job-name"] == "Board minutes"
    assert await cups_lpd.cupsd.wait_job_done_async("floor2", job["job-id"], 30) == "completed"
    assert await contents(out) == await contents(pdf)


async def test_lpd_unknown_queue(cups_lpd: CupsLpd, pdf: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(f"lpd://{HOST}:{cups_lpd.port}/nowhere", pdf, job_for(pdf), timeout=10)
    assert caught.value.reason == "QUEUE_REFUSED"
    assert "refused queue 'nowhere'" in caught.value.message


# --- file:// and the rest -----------------------------------------------------------------


async def test_folder_printer(tmp_path: Path, pdf: Path) -> None:
    folder = tmp_path / "printed"
    folder.mkdir()
    result = await deliver(f"file://{folder}", pdf, job_for(pdf))
    assert result.path == folder / "12-Board_minutes"
    assert await contents(result.path) == await contents(pdf)
    assert result.message == f"Printed on file://{folder} as 12-Board_minutes"


async def test_folder_that_does_not_exist(tmp_path: Path, pdf: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(f"file://{tmp_path}/missing", pdf, job_for(pdf))
    assert caught.value.reason == "NO_FOLDER"


@pytest.mark.parametrize(
    "uri", ["usb://HP/LaserJet", "smb://server/printer", "http//nonsense", "mailto:x@y"]
)
async def test_unsupported_device_uri(uri: str, pdf: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(uri, pdf, job_for(pdf))
    assert caught.value.reason == "UNSUPPORTED_DEVICE_URI"
    assert uri in caught.value.message


@pytest.mark.parametrize(
    "uri", ["lpd://printer.lan/", "lpd:///queue", "socket://host:99999", "ipp:///ipp/print"]
)
async def test_device_uri_missing_a_part(uri: str, pdf: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliver(uri, pdf, job_for(pdf))
    assert caught.value.reason == "BAD_DEVICE_URI"


async def test_the_spooled_document_must_be_whole(tmp_path: Path, pdf: Path) -> None:
    folder = f"file://{tmp_path}"
    short = DeliveryJob(1, "t", "u", "application/pdf", len(await contents(pdf)) + 1)
    with pytest.raises(DeliveryError) as caught:
        await deliver(folder, pdf, short)
    assert caught.value.reason == "SIZE_MISMATCH"
    with pytest.raises(DeliveryError) as caught:
        await deliver(folder, tmp_path / "gone.pdf", job_for(pdf))
    assert caught.value.reason == "NO_DOCUMENT"
