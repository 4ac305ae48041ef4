"""Workstations print to the node over LPD: real rlpr and CUPS's lpd backend send to the node's
LPD server; the job is held on the node's disk, registered with and uploaded to a real cloud,
listed for its user at an MFP by the node's MFP API, released, and printed byte-identical. Also
while the cloud is away, and for the refusals: unknown queue, unknown or disabled user, parking."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from printfabric.lpd import LpdError, queue_state, remove_jobs, send_job
from printfabric.v1 import common_pb2, directory_pb2, spool_pb2
from sqlalchemy import select

from cloud.db.models import Job
from cloud.domain.devices import DeviceFields, Devices, PrinterFields
from cloud.domain.enums import DeviceKind, QueueModel
from node.app import Node, running_node
from node.config import NodeConfig
from node.models import LpdJob
from tests.support.fabric import CloudHarness, TenantHandle
from tests.support.lpr_clients import cups_lpd_backend, rlpr
from tests.test_node_link import cloud_at, eventually, in_sync, node_config
from tests.test_node_mfp import bearer, log_in, mfp_client


@dataclass
class LpdSite:
    cloud: CloudHarness
    tenant: TenantHandle
    config: NodeConfig
    printed: Path
    mfp_tokens: dict[str, str]

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id


async def make_site(tmp_path: Path, cloud: CloudHarness, unknown_user: str = "refuse") -> LpdSite:
    """ACME with alice (PIN 4242), a disabled dave, a node, and MFP-1 printing on 'desk': a
    printer behind the node that writes what it gets into a folder."""
    tenant = await cloud.make_tenant("ACME")
    await cloud.add_user(tenant, "alice", pin="4242")
    admin = tenant.admin.directory
    dave = await admin.CreateUser(
        directory_pb2.CreateUserRequest(user=directory_pb2.User(login="dave"), pin="7777")
    )
    await admin.DisableUser(directory_pb2.DisableUserRequest(user_id=dave.user.user_id))
    devices = Devices(cloud.rt)
    node, node_token = await devices.create_node(None, tenant.tenant_id, "NODE-1", "Site", "")
    printed = tmp_path / "printed"
    printed.mkdir()
    desk = await devices.create_printer(
        None,
        tenant.tenant_id,
        PrinterFields(
            name="desk",
            model=QueueModel.SECURE,
            device_uri=printed.as_uri(),
            node_id=node.id,
        ),
    )
    _, mfp_token = await devices.create_device(
        None,
        tenant.tenant_id,
        DeviceFields(kind=DeviceKind.MFP, serial_number="MFP-1", printer_id=desk.id),
    )
    config = replace(
        node_config(tmp_path, cloud, tenant.company_code, "NODE-1", node_token),
        lpd_unknown_user=unknown_user,
    )
    return LpdSite(cloud, tenant, config, printed, {"MFP-1": mfp_token})


@contextlib.asynccontextmanager
async def at_device(
    node: Node, site: LpdSite, device: str = "", pin: str = "4242"
) -> AsyncIterator[MfpUser]:
    """A user logged in by PIN at MFP-1 through the node's MFP API (the device logs in first
    unless its session token is given)."""
    async with mfp_client(node) as http:
        if not device:
            session = await http.post(
                "/device/session",
                json={
                    "company_code": site.tenant.company_code,
                    "serial_number": "MFP-1",
                    "access_token": site.mfp_tokens["MFP-1"],
                },
            )
            assert session.status_code == 200, session.text
            device = str(session.json()["device_token"])
        reply = await log_in(http, device, method="pin", pin=pin)
        assert reply.status_code == 200, reply.text
        user_token = reply.json()["user_token"]
        yield MfpUser(http, device, {**bearer(device), "X-User-Token": user_token})


@dataclass
class MfpUser:
    http: httpx.AsyncClient
    device: str
    headers: dict[str, str]

    async def jobs(self) -> list[dict[str, object]]:
        reply = await self.http.get("/jobs", headers=self.headers)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["jobs"])

    async def release_all(self) -> list[dict[str, object]]:
        reply = await self.http.post("/jobs/release", json={"all": True}, headers=self.headers)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["jobs"])

    async def delete(self, job_id: str) -> None:
        reply = await self.http.delete(f"/jobs/{job_id}", headers=self.headers)
        assert reply.status_code == 200, reply.text


def postscript(path: Path, size: int) -> str:
    """A PostScript file of about size bytes (pages of random hex); returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        head = b"%!PS-Adobe-3.0\n%%Title: big\n"
        fh.write(head)
        digest.update(head)
        written, page = len(head), 0
        while written < size:
            page += 1
            block = f"%%Page: {page} {page}\n".encode() + os.urandom(512 * 1024).hex().encode()
            block += b"\nshowpage\n"
            fh.write(block)
            digest.update(block)
            written += len(block)
        tail = b"%%EOF\n"
        fh.write(tail)
        digest.update(tail)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def lpd_jobs(node: Node) -> list[LpdJob]:
    async with node.db.session() as session, session.begin():
        return list((await session.scalars(select(LpdJob).order_by(LpdJob.received_at))).all())


async def cloud_jobs(cloud: CloudHarness, tenant_id: str) -> dict[str, Job]:
    async with cloud.rt.db.session() as session:
        rows = await session.scalars(select(Job).where(Job.tenant_id == tenant_id))
        return {job.id: job for job in rows}


async def test_rlpr_and_cups_jobs_of_100_mb_are_held_released_at_a_device_and_identical(
    tmp_path: Path,
) -> None:
    document = tmp_path / "report.ps"
    digest = postscript(document, 100 * 1024 * 1024)
    async with cloud_at(tmp_path / "cloud") as cloud:
        site = await make_site(tmp_path, cloud)
        async with running_node(site.config) as node:
            await eventually(lambda: in_sync(node, cloud, site.tenant_id))
            assert node.lpd_port
            await rlpr("127.0.0.1", node.lpd_port, "secure", document, user="alice", tmp=tmp_path)
            await cups_lpd_backend(
                "127.0.0.1",
                node.lpd_port,
                "secure",
                document,
                user="alice",
                title="Quarterly report",
            )
            held = await lpd_jobs(node)
            assert [(j.owner_login, j.state, j.sha256) for j in held] == [
                ("alice", "held", digest)
            ] * 2
            assert held[1].title == "Quarterly report"
            # Known from the bytes, whatever type the client gave: the local copy tells printers.
            assert [j.document_format for j in held] == [common_pb2.DOCUMENT_FORMAT_POSTSCRIPT] * 2

            async def uploaded() -> bool:
                jobs = await cloud_jobs(cloud, site.tenant_id)
                return all(
                    j.job_id in jobs and jobs[j.job_id].state == spool_pb2.JOB_STATE_HELD
                    for j in held
                )

            await eventually(uploaded, within=60)
            in_cloud = await cloud_jobs(cloud, site.tenant_id)
            for job in held:
                assert in_cloud[job.job_id].sha256 == digest
                assert in_cloud[job.job_id].size_bytes == document.stat().st_size

            async with at_device(node, site) as alice:
                assert {j["job_id"] for j in await alice.jobs()} == {j.job_id for j in held}
                await alice.release_all()

            async def printed() -> bool:
                jobs = await cloud_jobs(cloud, site.tenant_id)
                return all(jobs[j.job_id].state == spool_pb2.JOB_STATE_COMPLETED for j in held)

            await eventually(printed, within=60)
        outputs = sorted(p for p in site.printed.iterdir() if not p.name.startswith("."))
        assert len(outputs) == 2
        assert all(sha256_of(p) == digest for p in outputs)
        # The node's copies are gone once printed.
        assert not any(p.is_file() for p in site.config.lpd_spool_dir.iterdir())


def small_pdf(path: Path, marker: str) -> Path:
    path.write_bytes(b"%PDF-1.4\n% " + marker.encode() + b"\n" + os.urandom(50_000) + b"\n%%EOF\n")
    return path


async def test_jobs_sent_while_the_cloud_is_away_print_at_the_site_and_reach_the_cloud_after(
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as cloud_stack:
        cloud = await cloud_stack.enter_async_context(cloud_at(tmp_path / "cloud"))
        port = cloud.running.port
        site = await make_site(tmp_path, cloud)
        async with running_node(site.config) as node:
            await eventually(lambda: in_sync(node, cloud, site.tenant_id))
            # The MFP was seen once while the cloud was there: the node knows its printer.
            async with at_device(node, site) as seen:
                device = seen.device
            await cloud_stack.aclose()
            await eventually(lambda: _down(node))

            assert node.lpd_port
            first = small_pdf(tmp_path / "a.pdf", "printed offline")
            second = small_pdf(tmp_path / "b.pdf", "deleted offline")
            for doc, title in ((first, "Minutes"), (second, "Draft")):
                await send_job(
                    "127.0.0.1",
                    node.lpd_port,
                    "SECURE",
                    doc,
                    user="Alice",
                    host_name="ws-17",
                    job_name=title,
                )
            state = await queue_state("127.0.0.1", node.lpd_port, "secure")
            assert "Minutes" in state and "Draft" in state and "alice" in state
            held = {j.title: j for j in await lpd_jobs(node)}
            assert {t: j.state for t, j in held.items()} == {"Minutes": "held", "Draft": "held"}

            async with at_device(node, site, device) as alice:
                assert {j["title"] for j in await alice.jobs()} == {"Minutes", "Draft"}
                await alice.delete(held["Draft"].job_id)
                released = await alice.release_all()
                assert [j["title"] for j in released] == ["Minutes"]

            async def printed_here() -> bool:
                return {j.title: j.state for j in await lpd_jobs(node)} == {
                    "Minutes": "printed",
                    "Draft": "deleted",
                }

            await eventually(printed_here)
            outputs = [p for p in site.printed.iterdir() if not p.name.startswith(".")]
            assert [p.read_bytes() for p in outputs] == [first.read_bytes()]

            # The cloud comes back: it learns of both jobs and how they ended.
            cloud = await cloud_stack.enter_async_context(cloud_at(tmp_path / "cloud", port))

            async def reported() -> bool:
                jobs = await cloud_jobs(cloud, site.tenant_id)
                return {
                    jobs[j.job_id].title: jobs[j.job_id].state
                    for j in held.values()
                    if j.job_id in jobs
                } == {
                    "Minutes": spool_pb2.JOB_STATE_COMPLETED,
                    "Draft": spool_pb2.JOB_STATE_CANCELED,
                }

            await eventually(reported, within=20)

            # The cloud acknowledges a report with its next message (a heartbeat at the latest),
            # after it has stored it: the outbox empties a moment after the cloud shows the states.
            async def outbox_empty() -> bool:
                return await node.outbox.counts() == {}

            await eventually(outbox_empty)


async def _down(node: Node) -> bool:
    return not node.link.connected.is_set()


async def test_unknown_queues_and_users_are_refused_and_nothing_stays_behind(
    tmp_path: Path,
) -> None:
    doc = small_pdf(tmp_path / "doc.pdf", "refused")
    async with cloud_at(tmp_path / "cloud") as cloud:
        site = await make_site(tmp_path, cloud)
        # What a crash between moving a file in and committing its job left: swept at start.
        (site.config.lpd_spool_dir / "incoming").mkdir(parents=True)
        (site.config.lpd_spool_dir / ("0" * 32)).write_bytes(b"never a job")
        (site.config.lpd_spool_dir / "incoming" / "x.part").write_bytes(b"half")
        async with running_node(site.config) as node:
            await eventually(lambda: in_sync(node, cloud, site.tenant_id))
            assert node.lpd_port
            with pytest.raises(LpdError) as queue:
                await send_job(
                    "127.0.0.1", node.lpd_port, "nope", doc, user="alice", host_name="ws-1"
                )
            assert queue.value.reason == "QUEUE_REFUSED"
            for user in ("mallory", "dave"):
                for data_first in (False, True):
                    with pytest.raises(LpdError) as refused:
                        await send_job(
                            "127.0.0.1",
                            node.lpd_port,
                            "secure",
                            doc,
                            user=user,
                            host_name="ws-1",
                            data_first=data_first,
                        )
                    assert refused.value.reason in ("DATA_FILE_REFUSED", "CONTROL_FILE_REFUSED")
            assert await lpd_jobs(node) == []
            spool = site.config.lpd_spool_dir
            assert not [p for p in spool.rglob("*") if p.is_file()]


async def test_a_parked_job_is_held_once_its_owner_appears_and_lprm_deletes_it(
    tmp_path: Path,
) -> None:
    doc = small_pdf(tmp_path / "doc.pdf", "parked")
    async with cloud_at(tmp_path / "cloud") as cloud:
        site = await make_site(tmp_path, cloud, unknown_user="park")
        async with running_node(site.config) as node:
            await eventually(lambda: in_sync(node, cloud, site.tenant_id))
            assert node.lpd_port
            await send_job("127.0.0.1", node.lpd_port, "secure", doc, user="erin", host_name="ws-2")
            assert [(j.owner_login, j.state) for j in await lpd_jobs(node)] == [("erin", "parked")]
            await cloud.add_user(site.tenant, "Erin")

            async def held_and_uploaded() -> bool:
                jobs = await lpd_jobs(node)
                return [(j.owner_login, j.state, j.uploaded) for j in jobs] == [
                    ("Erin", "held", True)
                ]

            await eventually(held_and_uploaded, within=20)
            job = (await lpd_jobs(node))[0]
            assert (await cloud_jobs(cloud, site.tenant_id))[job.job_id].state == (
                spool_pb2.JOB_STATE_HELD
            )
            # lprm as someone else removes nothing; as the owner, the job.
            await remove_jobs("127.0.0.1", node.lpd_port, "secure", "alice")
            assert (await lpd_jobs(node))[0].state == "held"
            await remove_jobs("127.0.0.1", node.lpd_port, "secure", "erin", [job.number])
            assert (await lpd_jobs(node))[0].state == "deleted"

            async def canceled() -> bool:
                jobs = await cloud_jobs(cloud, site.tenant_id)
                return jobs[job.job_id].state == spool_pb2.JOB_STATE_CANCELED

            await eventually(canceled)


async def test_an_uploaded_job_deleted_in_the_cloud_is_no_longer_offered_at_the_site(
    tmp_path: Path,
) -> None:
    doc = small_pdf(tmp_path / "doc.pdf", "deleted elsewhere")
    async with cloud_at(tmp_path / "cloud") as cloud:
        site = await make_site(tmp_path, cloud)
        alice = await cloud.login(site.tenant.company_code, "alice", "secret-pw")
        async with running_node(site.config) as node:
            node.uploads.reconcile_seconds = 0.2
            await eventually(lambda: in_sync(node, cloud, site.tenant_id))
            assert node.lpd_port
            await send_job(
                "127.0.0.1", node.lpd_port, "secure", doc, user="alice", host_name="ws-3"
            )

            async def uploaded() -> bool:
                return [j.uploaded for j in await lpd_jobs(node)] == [True]

            await eventually(uploaded)
            [job] = await lpd_jobs(node)
            # alice deletes it from her laptop (the cloud's API), not at the site.
            await alice.spool.CancelJob(spool_pb2.CancelJobRequest(job_id=job.job_id))

            async def dropped() -> bool:
                return [(j.state, j.path) for j in await lpd_jobs(node)] == [("elsewhere", "")]

            await eventually(dropped)
            async with at_device(node, site) as user:
                assert await user.jobs() == []
            assert not [p for p in site.config.lpd_spool_dir.iterdir() if p.is_file()]
