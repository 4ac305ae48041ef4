# ruff: noqa: F811  (the tests take the imported fixtures as arguments)
"""End to end, as the issue asks: a PDF printed over IPPS to the cloud is released by card at a
simulated MFP through the node's MFP API, and the node delivers it byte-identical to CUPS's
ippeveprinter (IPP) and, over LPR, to cups-lpd; the job ends completed in the cloud and the
device's accounting record is stored once."""

from __future__ import annotations

import asyncio
import io
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
from printfabric.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    spool_pb2,
    spool_pb2_grpc,
)
from pypdf import PdfWriter

from tests.support.cups import (
    IppEvePrinter,
    cups_avahi,  # noqa: F401  (fixture behind ippeveprinter)
    ippeveprinter,  # noqa: F401  (fixture)
)
from tests.support.gateway import Fabric, running_fabric
from tests.support.lpd_peer import CupsLpd
from tests.support.lpr_clients import cups_lpd_backend

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    with running_fabric(tmp_path_factory.mktemp("e2e")) as running:
        yield running


class Admin:
    """The demo user (an admin of DEMO) over gRPC."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.channel = grpc.aio.secure_channel(
            f"127.0.0.1:{fabric.cloud_port}",
            grpc.ssl_channel_credentials(fabric.ca_cert.read_bytes()),
            options=[("grpc.ssl_target_name_override", "localhost")],
        )
        self.devices = device_pb2_grpc.DeviceServiceStub(self.channel)
        self.spool = spool_pb2_grpc.SpoolServiceStub(self.channel)
        self.accounting = accounting_pb2_grpc.AccountingServiceStub(self.channel)
        self.metadata: tuple[tuple[str, str], ...] = ()

    async def __aenter__(self) -> Admin:
        auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        reply = await auth.AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code="DEMO",
                credential=auth_pb2.UserCredential(
                    password=auth_pb2.PasswordCredential(
                        login=self.fabric.login, password=self.fabric.password
                    )
                ),
            )
        )
        self.metadata = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()

    async def mfp_at(self, name: str, device_uri: str) -> tuple[str, str]:
        """A printer behind the demo node with an MFP on it; the MFP's serial and token."""
        nodes = await self.devices.ListNodes(
            device_pb2.ListNodesRequest(page_size=10), metadata=self.metadata
        )
        [node] = list(nodes.nodes)
        printer = await self.devices.CreatePrinter(
            device_pb2.CreatePrinterRequest(
                printer=device_pb2.Printer(
                    name=name,
                    display_name=f"{name} printer",
                    model=device_pb2.QUEUE_MODEL_SECURE,
                    device_uri=device_uri,
                    node_id=node.node_id,
                    formats=[common_pb2.DOCUMENT_FORMAT_PDF],
                )
            ),
            metadata=self.metadata,
        )
        serial = f"MFP-{name}-{uuid.uuid4().hex[:6]}"
        device = await self.devices.CreateDevice(
            device_pb2.CreateDeviceRequest(
                device=device_pb2.Device(
                    kind=auth_pb2.DEVICE_KIND_MFP,
                    serial_number=serial,
                    display_name=f"MFP at {name}",
                    printer_id=printer.printer.printer_id,
                )
            ),
            metadata=self.metadata,
        )
        return serial, device.access_token

    async def job(self, job_id: str) -> spool_pb2.Job:
        reply = await self.spool.GetJob(
            spool_pb2.GetJobRequest(job_id=job_id), metadata=self.metadata
        )
        job: spool_pb2.Job = reply.job
        return job

    async def wait_final(self, job_id: str, within: float = 60) -> spool_pb2.Job:
        deadline = time.monotonic() + within
        while True:
            job = await self.job(job_id)
            if job.state in (
                spool_pb2.JOB_STATE_COMPLETED,
                spool_pb2.JOB_STATE_FAILED,
                spool_pb2.JOB_STATE_CANCELED,
            ):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job.number} still {job.state}: {job.state_message}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def admin(fabric: Fabric) -> AsyncIterator[Admin]:
    async with Admin(fabric) as running:
        yield running


def pdf(marker: str) -> bytes:
    writer = PdfWriter()
    for _ in range(2):
        writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": marker})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def release_at_node_mfp(
    fabric: Fabric, serial: str, token: str, number: int = 0, title: str = ""
) -> str:
    """What the MFP does: device log-in, card log-in, list, release; the released job's id (the
    job is found by its number or its title)."""
    async with httpx.AsyncClient(
        base_url=fabric.node_mfp_url,
        verify=ssl.create_default_context(cafile=str(fabric.node_ca_cert)),
        timeout=60,
    ) as http:
        session = await http.post(
            "/device/session",
            json={"company_code": "DEMO", "serial_number": serial, "access_token": token},
        )
        assert session.status_code == 200, session.text
        device = {"Authorization": f"Bearer {session.json()['device_token']}"}
        login = await http.post(
            "/users/authenticate",
            json={"method": "card", "card": fabric.creds["card"]},
            headers=device,
        )
        assert login.status_code == 200, login.text
        user = {**device, "X-User-Token": login.json()["user_token"]}
        jobs = (await http.get("/jobs", headers=user)).json()["jobs"]
        [job] = [j for j in jobs if j["number"] == number or (title and j["title"] == title)]
        released = await http.post("/jobs/release", json={"job_ids": [job["job_id"]]}, headers=user)
        assert released.status_code == 200, released.text
        record = await http.post(
            "/accounting",
            json={
                "id": f"acct-{job['job_id']}",
                "login": "demo",
                "kind": "print",
                "document_name": job["title"],
                "job_id": job["job_id"],
                "pages": 2,
                "sheets": 2,
                "mono_pages": 2,
                "paper_size": "iso_a4_210x297mm",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
            headers=device,
        )
        assert record.status_code == 200, record.text
        return str(job["job_id"])


async def assert_accounted(admin: Admin, job_id: str) -> None:
    reply = await admin.accounting.ListUsage(
        accounting_pb2.ListUsageRequest(page_size=100, user_login="demo"), metadata=admin.metadata
    )
    entries = [e for e in reply.entries if e.request_id == f"acct-{job_id}"]
    assert len(entries) == 1, entries
    assert entries[0].pages == 2 and entries[0].job_id == job_id


async def test_released_by_card_at_the_node_to_ippeveprinter(
    fabric: Fabric, admin: Admin, ippeveprinter: IppEvePrinter
) -> None:
    serial, token = await admin.mfp_at("ippeve", ippeveprinter.uri)
    document = pdf(f"ipp-{uuid.uuid4()}")
    number = await fabric.print_job(document, "Board minutes")
    job_id = await release_at_node_mfp(fabric, serial, token, number)
    job = await admin.wait_final(job_id)
    assert job.state == spool_pb2.JOB_STATE_COMPLETED, job.state_message
    [received] = await asyncio.to_thread(ippeveprinter.wait_documents, 1)
    assert received.read_bytes() == document
    await assert_accounted(admin, job_id)


async def test_released_by_card_at_the_node_to_cups_lpd(
    fabric: Fabric, admin: Admin, cups_lpd: CupsLpd, tmp_path: Path
) -> None:
    out = tmp_path / "lpd-out.bin"
    await cups_lpd.add_file_queue("floor2", out)
    serial, token = await admin.mfp_at("lpr", f"lpd://127.0.0.1:{cups_lpd.port}/floor2")
    document = pdf(f"lpd-{uuid.uuid4()}")
    number = await fabric.print_job(document, "Expenses")
    job_id = await release_at_node_mfp(fabric, serial, token, number)
    job = await admin.wait_final(job_id)
    assert job.state == spool_pb2.JOB_STATE_COMPLETED, job.state_message
    deadline = time.monotonic() + 30
    while not (out.exists() and out.read_bytes() == document):
        assert time.monotonic() < deadline, "cups-lpd never wrote the job"
        await asyncio.sleep(0.2)
    [owner] = {str(j.get("job-originating-user-name")) for j in await cups_lpd.jobs("floor2")}
    assert owner == "demo"
    await assert_accounted(admin, job_id)


async def test_sent_over_lpr_to_the_node_released_by_card_to_ippeveprinter(
    fabric: Fabric, admin: Admin, ippeveprinter: IppEvePrinter, tmp_path: Path
) -> None:
    """The other way in: a workstation's LPR (CUPS's lpd backend) to the node of `make run`."""
    serial, token = await admin.mfp_at("lpr-in", ippeveprinter.uri)
    # The demo node announced where its LPD server listens, so the printer list offers it.
    listed = await admin.devices.ListUserPrinters(
        device_pb2.ListUserPrintersRequest(), metadata=admin.metadata
    )
    [offered] = [e for e in listed.printers if e.printer.name == "lpr-in"]
    assert list(offered.submit_uris)[1:] == [f"lpr://127.0.0.1:{fabric.node_lpd_port}/lpr-in"]
    document = pdf(f"lpr-in-{uuid.uuid4()}")
    path = tmp_path / "minutes.pdf"
    path.write_bytes(document)
    title = f"Site minutes {uuid.uuid4().hex[:6]}"
    await cups_lpd_backend(
        "127.0.0.1", fabric.node_lpd_port, "secure", path, user="demo", title=title
    )
    job_id = await release_at_node_mfp(fabric, serial, token, title=title)
    job = await admin.wait_final(job_id)
    assert job.state == spool_pb2.JOB_STATE_COMPLETED, job.state_message
    assert job.owner_login == "demo" and job.title == title
    [received] = await asyncio.to_thread(ippeveprinter.wait_documents, 1)
    assert received.read_bytes() == document
