# ruff: noqa: F811  (the tests take the imported fixtures as arguments)
"""The workstation client `printfabric`, run as a person runs it, against a `make run` fabric.

Every call of the client goes through a TCP proxy in front of the gateway (the fabric's public
URL), so a test can break a connection on purpose and watch the client recover without making
a second job.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from printfabric.v1 import auth_pb2, common_pb2, device_pb2, spool_pb2
from pypdf import PdfWriter

from tests.support.cups import (
    IPPEVE_FORMATS,
    IppEvePrinter,
    cups_avahi,  # noqa: F401  (fixture behind the printer)
)
from tests.support.gateway import Fabric, running_fabric
from tests.support.lpd_peer import CupsLpd
from tests.support.processes import TcpProxy, command_argv
from tests.test_release_e2e import Admin, release_at_node_mfp

pytestmark = pytest.mark.timeout(300)

FORMATS = [
    common_pb2.DOCUMENT_FORMAT_PDF,
    common_pb2.DOCUMENT_FORMAT_POSTSCRIPT,
    common_pb2.DOCUMENT_FORMAT_PCL,
    common_pb2.DOCUMENT_FORMAT_XPS,
]


# Documents ----------------------------------------------------------------------------------


def pdf(marker: str, pages: int = 2) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": marker})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def postscript(marker: str) -> bytes:
    return (
        b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n%%Page: 1 1\n"
        b"/Helvetica findfont 24 scalefont setfont 72 720 moveto (" + marker.encode() + b") show\n"
        b"showpage\n%%EOF\n"
    )


def pcl(marker: str) -> bytes:
    return b"\x1bE\x1b&l26A\x1b&l0O" + marker.encode() + b"\r\n\x0c\x1bE"


def xps(marker: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"/>',
        )
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("FixedDocumentSequence.fdseq", "<FixedDocumentSequence/>")
        archive.writestr("Documents/1/FixedDocument.fdoc", "<FixedDocument/>")
        archive.writestr("Documents/1/Pages/1.fpage", f"<FixedPage><!-- {marker} --></FixedPage>")
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The workstation ----------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class Workstation:
    """`printfabric` with its own config and state folders, as one user's computer."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.config = home / "config"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PF_", "PRINTFABRIC_"))
        } | {
            "PRINTFABRIC_CONFIG_DIR": str(self.config),
            "PRINTFABRIC_STATE_DIR": str(home / "state"),
        }

    async def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            *command_argv("printfabric"),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env | (env or {}),
        )
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 240)
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    async def ok(self, *args: str) -> Any:
        """Runs with --json and expects success; the JSON it printed."""
        result = await self.run(*args, "--json")
        assert result.code == 0, f"printfabric {' '.join(args)}: {result.code}\n{result.stderr}"
        return result.json

    @property
    def session(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.config / "session.json").read_text())
        return data

    def write_session(self, **changes: Any) -> None:
        (self.config / "session.json").write_text(json.dumps(self.session | changes))


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    # Its upstream is the fabric's gateway, whose port is known once the fabric runs.
    with TcpProxy(0) as running:
        yield running


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[Fabric]:
    home = tmp_path_factory.mktemp("client")
    with running_fabric(home, PF_PUBLIC_URL=f"https://localhost:{proxy.port}") as running:
        proxy.upstream_port = running.gateway_port
        yield running


@pytest.fixture(scope="module")
def printer(tmp_path_factory: pytest.TempPathFactory, cups_avahi: None) -> Iterator[IppEvePrinter]:
    """ippeveprinter taking the four workstation formats (XPS too)."""
    base = tmp_path_factory.mktemp("eve")
    with IppEvePrinter(base, formats=f"{IPPEVE_FORMATS},application/oxps") as running:
        yield running


@pytest.fixture
async def admin(fabric: Fabric) -> AsyncIterator[Admin]:
    async with Admin(fabric) as running:
        yield running


@pytest.fixture
async def user(fabric: Fabric, tmp_path: Path) -> Workstation:
    """A workstation logged in as the demo user (through the proxy, as the fabric says)."""
    station = Workstation(tmp_path / "station")
    await station.ok("login", "--demo", str(fabric.home))
    return station


async def eve_queue(admin: Admin, printer: IppEvePrinter, name: str) -> tuple[str, str]:
    """A secure queue behind the demo node printing on ippeveprinter, with an MFP on it."""
    nodes = await admin.devices.ListNodes(
        device_pb2.ListNodesRequest(page_size=10), metadata=admin.metadata
    )
    [node] = list(nodes.nodes)
    created = await admin.devices.CreatePrinter(
        device_pb2.CreatePrinterRequest(
            printer=device_pb2.Printer(
                name=name,
                display_name=f"{name} printer",
                location="2nd floor",
                model=device_pb2.QUEUE_MODEL_SECURE,
                device_uri=printer.uri,
                node_id=node.node_id,
                formats=FORMATS,
            )
        ),
        metadata=admin.metadata,
    )
    serial = f"MFP-{name}"
    device = await admin.devices.CreateDevice(
        device_pb2.CreateDeviceRequest(
            device=device_pb2.Device(
                kind=auth_pb2.DEVICE_KIND_MFP,
                serial_number=serial,
                printer_id=created.printer.printer_id,
            )
        ),
        metadata=admin.metadata,
    )
    return serial, device.access_token


async def wait_jobs(station: Workstation, titles: set[str], state: str) -> list[dict[str, Any]]:
    """The user's jobs with these titles once all are in state (an LPR job takes a moment)."""
    deadline = time.monotonic() + 60
    while True:
        listed = (await station.ok("jobs", "--all"))["jobs"]
        jobs = [j for j in listed if j["title"] in titles]
        if len(jobs) == len(titles) and all(j["state"] == state for j in jobs):
            return jobs
        assert time.monotonic() < deadline, f"jobs never all {state}: {jobs}"
        await asyncio.sleep(0.5)


# Log in, printers, the session --------------------------------------------------------------


async def test_login_keeps_a_private_session_and_lists_the_printers(
    fabric: Fabric, proxy: TcpProxy, user: Workstation
) -> None:
    session_file = user.config / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(user.config.stat().st_mode) == 0o700
    assert fabric.password not in session_file.read_text()
    status = await user.ok("status")
    assert (status["company"], status["login"]) == ("DEMO", "demo")
    printers = {p["name"]: p for p in (await user.ok("printers"))["printers"]}
    assert {"secure", "direct", "office"} <= set(printers)
    base = f"ipps://localhost:{proxy.port}/t/DEMO/ipp/print"
    assert printers["secure"]["submit_uris"][0] == f"{base}/secure"
    assert printers["secure"]["model"] == "secure"
    human = await user.run("printers")
    assert human.code == 0 and "secure" in human.stdout and "REACHED AT" in human.stdout


async def test_an_expiring_token_is_refreshed_and_a_dead_login_asks_to_log_in_again(
    user: Workstation,
) -> None:
    before = user.session
    user.write_session(access_expires=time.time() - 5)
    await user.ok("jobs")
    after = user.session
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_expires"] > time.time() + 60

    user.write_session(access_expires=time.time() - 5, refresh_token="not-a-token")
    dead = await user.run("jobs")
    assert dead.code == 3, dead.stderr
    assert "printfabric login" in dead.stderr


async def test_processes_refreshing_at_once_share_one_login(user: Workstation) -> None:
    """A refresh token works once: without the session lock the slower process would spend the
    spent token and be logged out."""
    user.write_session(access_expires=time.time() - 5)
    runs = await asyncio.gather(*(user.run("jobs", "--json") for _ in range(4)))
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert (await user.run("jobs")).code == 0


async def test_logout_ends_the_session_at_the_gateway(user: Workstation) -> None:
    saved = user.session
    assert (await user.ok("logout"))["logged_out"] is True
    assert not (user.config / "session.json").exists()
    # The old tokens are dead in the cloud too, not only forgotten here.
    user.config.joinpath("session.json").write_text(
        json.dumps(saved | {"access_expires": time.time() - 5})
    )
    again = await user.run("jobs")
    assert again.code == 3, again.stderr


async def test_wrong_password_and_no_login_exit_3(fabric: Fabric, tmp_path: Path) -> None:
    station = Workstation(tmp_path / "fresh")
    nothing = await station.run("jobs")
    assert nothing.code == 3 and "printfabric login" in nothing.stderr
    wrong = await station.run(
        "login",
        fabric.creds["gateway_url"],
        "--company",
        "DEMO",
        "--login",
        "demo",
        "--ca",
        str(fabric.ca_cert),
        env={"PRINTFABRIC_PASSWORD": "not-the-password"},
    )
    assert wrong.code == 3, wrong.stderr
    right = await station.run(
        "login",
        fabric.creds["gateway_url"],
        "--company",
        "demo",
        "--login",
        "demo",
        "--ca",
        str(fabric.ca_cert),
        stdin=f"{fabric.password}\n",
    )
    assert right.code == 0, right.stderr
    assert "Logged in to DEMO" in right.stdout


# Printing by each route, released to ippeveprinter -------------------------------------------


@pytest.mark.parametrize("route", ["ipps", "lpr", "upload"])
async def test_each_format_by_each_route_arrives_byte_identical_at_ippeveprinter(
    fabric: Fabric,
    admin: Admin,
    printer: IppEvePrinter,
    user: Workstation,
    tmp_path: Path,
    route: str,
) -> None:
    queue = f"eve-{route}"
    serial, token = await eve_queue(admin, printer, queue)
    marker = f"{route}-{uuid.uuid4().hex[:8]}"
    documents = {
        f"{marker}.pdf": pdf(marker),
        f"{marker}.ps": postscript(marker),
        f"{marker}.pcl": pcl(marker),
        f"{marker}.xps": xps(marker),
    }
    for name, data in documents.items():
        (tmp_path / name).write_bytes(data)
    # --via lpr: the address the printer list gives (the node behind the queue's printer).
    listed = {p["name"]: p for p in (await user.ok("printers"))["printers"]}
    if route == "lpr":
        assert f"lpr://127.0.0.1:{fabric.node_lpd_port}/{queue}" in listed[queue]["submit_uris"]
    printed = await user.ok(
        "print", *(str(tmp_path / n) for n in documents), "--printer", queue, "--via", route
    )
    assert [p["file"] for p in printed["printed"]] == list(documents)

    jobs = {j["title"]: j for j in await wait_jobs(user, set(documents), "held")}
    expected_formats = ["application/pdf", "application/postscript", "application/vnd.hp-PCL"]
    for name, data in documents.items():
        assert jobs[name]["size_bytes"] == len(data)
        assert jobs[name]["sha256"] == sha256(data)
        assert jobs[name]["printer"] == queue
    assert [jobs[n]["format"] for n in list(documents)[:3]] == expected_formats
    assert jobs[f"{marker}.xps"]["format"] in ("application/oxps", "application/vnd.ms-xpsdocument")
    assert jobs[f"{marker}.pdf"]["page_count"] == 2

    seen = len(printer.received_documents())
    for n, (name, data) in enumerate(documents.items(), start=1):
        job_id = await release_at_node_mfp(fabric, serial, token, title=name)
        job = await admin.wait_final(job_id)
        assert job.state == spool_pb2.JOB_STATE_COMPLETED, job.state_message
        received = await asyncio.to_thread(printer.wait_documents, seen + n)
        assert received[-1].read_bytes() == data, name


async def test_lpr_straight_to_a_printer_delivers_the_bytes_as_the_user(
    user: Workstation, cups_lpd: CupsLpd, tmp_path: Path
) -> None:
    out = tmp_path / "floor3.out"
    await cups_lpd.add_file_queue("floor3", out)
    data = postscript("straight to the printer")
    document = tmp_path / "memo.ps"
    document.write_bytes(data)
    via = f"lpr://127.0.0.1:{cups_lpd.port}/floor3"
    [printed] = (await user.ok("print", str(document), "--via", via, "--copies", "1"))["printed"]
    assert printed["route"] == via and printed["lpd_job_number"] is not None
    deadline = time.monotonic() + 30
    while not (out.exists() and out.read_bytes() == data):
        assert time.monotonic() < deadline, "cups-lpd never wrote the job"
        await asyncio.sleep(0.2)
    [owner] = {str(j.get("job-originating-user-name")) for j in await cups_lpd.jobs("floor3")}
    assert owner == "demo"


# Jobs and cancel ----------------------------------------------------------------------------


async def test_jobs_shows_held_jobs_and_cancel_takes_them_away(
    user: Workstation, tmp_path: Path
) -> None:
    document = tmp_path / "minutes.pdf"
    document.write_bytes(pdf("minutes", pages=3))
    title = f"Minutes {uuid.uuid4().hex[:6]}"
    [printed] = (await user.ok("print", str(document), "-P", "secure", "--title", title))["printed"]
    job = printed["job"]
    assert (job["state"], job["page_count"], job["title"]) == ("held", 3, title)
    listed = {j["number"]: j for j in (await user.ok("jobs"))["jobs"]}
    assert listed[job["number"]]["size_bytes"] == document.stat().st_size
    human = await user.run("jobs")
    assert title in human.stdout and "held" in human.stdout

    [canceled] = (await user.ok("cancel", str(job["number"])))["jobs"]
    assert canceled["state"] == "canceled"
    assert job["number"] not in {j["number"] for j in (await user.ok("jobs"))["jobs"]}
    again = await user.run("cancel", str(job["number"]))
    assert again.code == 7, again.stderr
    missing = await user.run("cancel", "999999")
    assert missing.code == 5, missing.stderr


# Bad input ----------------------------------------------------------------------------------


async def test_a_file_no_printer_prints_is_refused_before_anything_is_sent(
    user: Workstation, tmp_path: Path
) -> None:
    before = len((await user.ok("jobs", "--all"))["jobs"])
    notes = tmp_path / "notes.txt"
    notes.write_text("just some words\n")
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf("good"))
    refused = await user.run("print", str(good), str(notes), "-P", "secure")
    assert refused.code == 4, refused.stderr
    assert "notes.txt is not a PDF, PostScript, PCL or XPS file" in refused.stderr
    assert "--format" in refused.stderr
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert (await user.run("print", str(empty), "-P", "secure")).code == 4
    assert (await user.run("print", str(tmp_path / "nope.pdf"), "-P", "secure")).code == 4
    # Nothing of the refused runs reached the cloud, not even the good file.
    assert len((await user.ok("jobs", "--all"))["jobs"]) == before

    unknown = await user.run("print", str(good), "-P", "no-such-queue")
    assert unknown.code == 5 and "secure" in unknown.stderr
    bad_via = await user.run("print", str(good), "-P", "secure", "--via", "ftp://x/y")
    assert bad_via.code == 2, bad_via.stderr
    bad_copies = await user.run("print", str(good), "-P", "secure", "--copies", "0")
    assert bad_copies.code == 2, bad_copies.stderr


async def test_forced_format_sends_the_bytes_as_that_format(
    user: Workstation, tmp_path: Path
) -> None:
    # A PostScript file without its %! header: detection gives up, --format ps says what it is.
    headless = tmp_path / "headless.ps"
    headless.write_bytes(b"/Helvetica findfont 12 scalefont setfont showpage\n")
    assert (await user.run("print", str(headless), "-P", "secure")).code == 4
    [printed] = (await user.ok("print", str(headless), "-P", "secure", "--format", "ps"))["printed"]
    assert printed["job"]["format"] == "application/postscript"


# Network drops ------------------------------------------------------------------------------


async def test_ipps_answer_lost_after_the_job_was_taken_makes_no_second_job(
    user: Workstation, proxy: TcpProxy, tmp_path: Path
) -> None:
    data = pdf("lost-answer") + b"%" + os.urandom(3 << 20)
    document = tmp_path / "big.pdf"
    document.write_bytes(data)
    title = f"Lost answer {uuid.uuid4().hex[:6]}"
    fired = proxy.faults_fired
    proxy.drop_answer_after(len(data))
    [printed] = (await user.ok("print", str(document), "-P", "secure", "--title", title))["printed"]
    assert proxy.faults_fired == fired + 1
    jobs = [j for j in (await user.ok("jobs", "--all"))["jobs"] if j["title"] == title]
    assert len(jobs) == 1
    assert jobs[0]["number"] == printed["job"]["number"]
    assert jobs[0]["sha256"] == sha256(data)


async def test_upload_cut_midway_is_sent_again_whole_as_one_job(
    user: Workstation, proxy: TcpProxy, tmp_path: Path
) -> None:
    data = pdf("cut-upload") + b"%" + os.urandom(3 << 20)
    document = tmp_path / "big.pdf"
    document.write_bytes(data)
    title = f"Cut upload {uuid.uuid4().hex[:6]}"
    fired = proxy.faults_fired
    proxy.cut_request_after(1 << 20)
    [printed] = (
        await user.ok("print", str(document), "-P", "secure", "--title", title, "--via", "upload")
    )["printed"]
    assert proxy.faults_fired == fired + 1
    jobs = [j for j in (await user.ok("jobs", "--all"))["jobs"] if j["title"] == title]
    assert [j["number"] for j in jobs] == [printed["job"]["number"]]
    assert jobs[0]["sha256"] == sha256(data) and jobs[0]["size_bytes"] == len(data)
