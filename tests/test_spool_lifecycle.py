"""Held-job lifecycle: direct queues, delivery status, retention, broken streams, size limits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from printfabric.v1 import auth_pb2, common_pb2, device_pb2, spool_pb2

from cloud.domain.delivery import CloudDelivery
from cloud.domain.enums import QueueModel
from cloud.domain.spool import Spool
from tests.support.fabric import CloudHarness, cloud_harness
from tests.test_spool import blob_files, download, submit


async def test_direct_queue_job_is_released_at_once_and_the_node_reports_it_printed(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME", model=QueueModel.DIRECT)
    alice = await cloud.add_user(t, "alice")
    job = await submit(alice, b"%!PS\nshowpage\n")
    assert job.state == spool_pb2.JOB_STATE_RELEASED and job.release_printer_id == job.printer_id
    node = await t.admin.device.CreateNode(
        device_pb2.CreateNodeRequest(node=device_pb2.Node(serial_number="N-1"))
    )
    anon = await cloud.stubs()
    login = await anon.auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code,
            serial_number="N-1",
            access_token=node.access_token,
            kind=auth_pb2.DEVICE_KIND_NODE,
        )
    )
    as_node = await cloud.stubs(login.tokens.access_token)
    _, data = await download(as_node, job.job_id)
    assert data == b"%!PS\nshowpage\n"
    printing = await as_node.spool.UpdateJobStatus(
        spool_pb2.UpdateJobStatusRequest(job_id=job.job_id, state=spool_pb2.JOB_STATE_PRINTING)
    )
    assert printing.job.state == spool_pb2.JOB_STATE_PRINTING
    done = await as_node.spool.UpdateJobStatus(
        spool_pb2.UpdateJobStatusRequest(job_id=job.job_id, state=spool_pb2.JOB_STATE_COMPLETED)
    )
    assert done.job.state == spool_pb2.JOB_STATE_COMPLETED and done.job.HasField("complete_time")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await as_node.spool.UpdateJobStatus(
            spool_pb2.UpdateJobStatusRequest(job_id=job.job_id, state=spool_pb2.JOB_STATE_PRINTING)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.spool.UpdateJobStatus(
            spool_pb2.UpdateJobStatusRequest(job_id=job.job_id, state=spool_pb2.JOB_STATE_FAILED)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_held_jobs_expire_after_retention_and_their_data_is_deleted(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    held = await submit(alice, b"%!PS\nshowpage\n")
    released = await submit(alice, b"%!PS\nshowpage\nshowpage\n")
    await alice.spool.ReleaseJobs(
        spool_pb2.ReleaseJobsRequest(job_ids=[released.job_id], printer_id="secure")
    )
    assert len(blob_files(cloud)) == 2
    spool = Spool(cloud.rt)
    assert await spool.sweep() == 0
    real = cloud.rt.clock
    object.__setattr__(cloud.rt, "clock", lambda: real() + timedelta(hours=25))
    try:
        # (Other tests share the PostgreSQL database, so more may be swept than ours.)
        assert await spool.sweep() >= 1
    finally:
        object.__setattr__(cloud.rt, "clock", real)
    got = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=held.job_id))).job
    assert got.state == spool_pb2.JOB_STATE_EXPIRED and "deleted" in got.state_message
    # A released job waits for its delivery however long that takes.
    assert (
        await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=released.job_id))
    ).job.state == spool_pb2.JOB_STATE_RELEASED
    assert len(blob_files(cloud)) == 1


async def test_a_stream_cut_halfway_leaves_no_job_and_no_blob(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    sent = asyncio.Event()

    async def endless() -> AsyncIterator[spool_pb2.SubmitJobRequest]:
        yield spool_pb2.SubmitJobRequest(header=spool_pb2.JobHeader(printer="secure", title="cut"))
        for _ in range(64):
            yield spool_pb2.SubmitJobRequest(chunk=os.urandom(65536))
        sent.set()
        await asyncio.sleep(3600)

    call = alice.spool.SubmitJob(endless())
    await asyncio.wait_for(sent.wait(), 10)
    await asyncio.sleep(0.3)
    staging = cloud.rt.blobs.staging_dir
    assert any(staging.iterdir()), "the server should be receiving into staging"
    call.cancel()
    for _ in range(50):
        if not blob_files(cloud):
            break
        await asyncio.sleep(0.1)
    assert blob_files(cloud) == []
    assert (await alice.spool.ListJobs(spool_pb2.ListJobsRequest())).jobs == []


@pytest.fixture
def small_limit_home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "home"


async def test_a_job_over_the_configured_limit_is_refused_and_leaves_nothing(
    small_limit_home: Path,
) -> None:
    async with cloud_harness(small_limit_home, max_job_bytes=100_000) as cloud:
        t = await cloud.make_tenant("ACME")
        alice = await cloud.add_user(t, "alice")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await submit(alice, os.urandom(300_000))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "limit of 100000 bytes" in (err.value.details() or "")
        assert blob_files(cloud) == []
        assert (await alice.spool.ListJobs(spool_pb2.ListJobsRequest())).jobs == []
        ok = await submit(alice, os.urandom(99_000))
        assert ok.size_bytes == 99_000


async def test_an_mfp_releases_the_jobs_of_the_user_standing_at_it_to_its_own_printer(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    held = [await submit(alice, b"%!PS\nshowpage\n") for _ in range(2)]
    queue = (await t.admin.device.GetPrinter(device_pb2.GetPrinterRequest(name="secure"))).printer
    made = await t.admin.device.CreateDevice(
        device_pb2.CreateDeviceRequest(
            device=device_pb2.Device(serial_number="MFP-1", printer_id=queue.printer_id)
        )
    )
    anon = await cloud.stubs()
    login = await anon.auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code,
            serial_number="MFP-1",
            access_token=made.access_token,
            kind=auth_pb2.DEVICE_KIND_MFP,
        )
    )
    mfp = await cloud.stubs(login.tokens.access_token)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await mfp.spool.ReleaseJobs(spool_pb2.ReleaseJobsRequest(all_held=True))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "owner_login" in (
        err.value.details() or ""
    )
    released = await mfp.spool.ReleaseJobs(
        spool_pb2.ReleaseJobsRequest(all_held=True, owner_login="alice")
    )
    assert sorted(j.job_id for j in released.jobs) == sorted(j.job_id for j in held)
    assert {j.release_printer_id for j in released.jobs} == {queue.printer_id}
    # Releasing is all an MFP may do for a user: it cannot submit in their name.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(mfp, b"%!PS\nshowpage\n", owner_login="alice")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_create_job_waits_for_its_document_and_fails_if_it_never_comes(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    bob = await cloud.add_user(t, "bob")
    header = spool_pb2.JobHeader(printer="secure", title="two steps")
    made = (await alice.spool.CreateJob(spool_pb2.CreateJobRequest(header=header))).job
    assert made.state == spool_pb2.JOB_STATE_INCOMING and made.number > 0
    by_number = await alice.spool.ListJobs(spool_pb2.ListJobsRequest(number=made.number))
    assert [j.job_id for j in by_number.jobs] == [made.job_id]
    by_queue = await alice.spool.ListJobs(spool_pb2.ListJobsRequest(printer_id="secure"))
    assert made.job_id in [j.job_id for j in by_queue.jobs]

    async def document(job_id: str) -> AsyncIterator[spool_pb2.SubmitJobRequest]:
        yield spool_pb2.SubmitJobRequest(
            header=spool_pb2.JobHeader(printer="secure", job_id=job_id)
        )
        yield spool_pb2.SubmitJobRequest(chunk=b"%!PS\nshowpage\n")

    # Another user cannot fill it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.SubmitJob(document(made.job_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    filled = (await alice.spool.SubmitJob(document(made.job_id))).job
    assert (filled.job_id, filled.number, filled.state, filled.title) == (
        made.job_id,
        made.number,
        spool_pb2.JOB_STATE_HELD,
        "two steps",
    )
    assert filled.size_bytes == 14 and filled.format == common_pb2.DOCUMENT_FORMAT_POSTSCRIPT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.spool.SubmitJob(document(made.job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    blobs_before = len(blob_files(cloud))

    stalled = (await alice.spool.CreateJob(spool_pb2.CreateJobRequest(header=header))).job
    spool = Spool(cloud.rt)
    real = cloud.rt.clock
    object.__setattr__(cloud.rt, "clock", lambda: real() + timedelta(minutes=6))
    try:
        await spool.sweep()
    finally:
        object.__setattr__(cloud.rt, "clock", real)
    got = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=stalled.job_id))).job
    assert got.state == spool_pb2.JOB_STATE_FAILED and "No document arrived" in got.state_message
    assert len(blob_files(cloud)) == blobs_before


async def test_the_cloud_delivers_to_folder_printers_only_under_its_root(
    cloud: CloudHarness, tmp_path: Path
) -> None:
    root = cloud.running.config.file_printer_root
    (root / "ok").mkdir(parents=True, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    t = await cloud.make_tenant("ACME")
    for name, folder in (("inside", root / "ok"), ("outside", elsewhere)):
        await t.admin.device.CreatePrinter(
            device_pb2.CreatePrinterRequest(
                printer=device_pb2.Printer(
                    name=name,
                    model=device_pb2.QUEUE_MODEL_DIRECT,
                    device_uri=folder.as_uri(),
                )
            )
        )
    alice = await cloud.add_user(t, "alice")
    inside = await submit(alice, b"%!PS\nshowpage\n", "inside", title="memo")
    outside = await submit(alice, b"%!PS\nshowpage\n", "outside", title="memo")

    async def final(job_id: str) -> spool_pb2.Job:
        # The cloud's delivery worker is woken by the submission itself.
        for _ in range(200):
            job = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=job_id))).job
            if job.state in (spool_pb2.JOB_STATE_COMPLETED, spool_pb2.JOB_STATE_FAILED):
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} was not delivered")

    done = await final(inside.job_id)
    assert done.state == spool_pb2.JOB_STATE_COMPLETED
    assert (root / "ok" / f"{inside.number}-memo").read_bytes() == b"%!PS\nshowpage\n"
    refused = await final(outside.job_id)
    assert refused.state == spool_pb2.JOB_STATE_FAILED and "only under" in refused.state_message
    assert list(elsewhere.iterdir()) == []
    # Run by hand, the worker finds nothing left to do.
    assert await CloudDelivery(cloud.rt, root).deliver_pending() == 0


async def test_a_job_canceled_while_it_prints_stays_canceled(
    cloud: CloudHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery finishes a job only if it is still printing: a cancel meanwhile stands."""
    go, finished = asyncio.Event(), asyncio.Event()
    received = bytearray()

    async def printer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()  # the job is big enough that the cloud waits for us mid-send
        while chunk := await reader.read(1 << 20):
            received.extend(chunk)
        writer.close()

    original = CloudDelivery._finish

    async def observed(self: CloudDelivery, *args: Any) -> None:
        await original(self, *args)
        finished.set()

    monkeypatch.setattr(CloudDelivery, "_finish", observed)
    server = await asyncio.start_server(printer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    t = await cloud.make_tenant("ACME")
    await t.admin.device.CreatePrinter(
        device_pb2.CreatePrinterRequest(
            printer=device_pb2.Printer(
                name="raw",
                model=device_pb2.QUEUE_MODEL_DIRECT,
                device_uri=f"socket://127.0.0.1:{port}",
            )
        )
    )
    alice = await cloud.add_user(t, "alice")
    data = b"%!PS\n" + os.urandom(16 << 20)
    try:
        job = await submit(alice, data, "raw", title="big")
        for _ in range(200):
            state = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id))).job
            if state.state == spool_pb2.JOB_STATE_PRINTING:
                break
            await asyncio.sleep(0.05)
        assert state.state == spool_pb2.JOB_STATE_PRINTING, state
        await alice.spool.CancelJob(spool_pb2.CancelJobRequest(job_id=job.job_id))
        go.set()
        await asyncio.wait_for(finished.wait(), 30)
    finally:
        go.set()
        server.close()
    final = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id))).job
    assert final.state == spool_pb2.JOB_STATE_CANCELED, final
    assert bytes(received) == data  # what was under way went out whole


async def test_an_announced_end_marker_must_arrive_and_add_up(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    data = b"%!PS\nshowpage\n"

    async def stream(end: int | None) -> AsyncIterator[spool_pb2.SubmitJobRequest]:
        yield spool_pb2.SubmitJobRequest(
            header=spool_pb2.JobHeader(printer="secure", title="marked", ends_with_marker=True)
        )
        yield spool_pb2.SubmitJobRequest(chunk=data)
        if end is not None:
            yield spool_pb2.SubmitJobRequest(end=spool_pb2.SubmitJobEnd(size=end))

    # What a cancelled client stream can look like to the server: it just stops.
    for end, reason in ((None, "UPLOAD_CUT"), (len(data) + 1, "SIZE_MISMATCH")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await alice.spool.SubmitJob(stream(end))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ("pf-error-reason", reason) in list(err.value.trailing_metadata() or ())
    assert blob_files(cloud) == []
    assert (await alice.spool.ListJobs(spool_pb2.ListJobsRequest())).jobs == []
    job = (await alice.spool.SubmitJob(stream(len(data)))).job
    assert job.size_bytes == len(data) and job.state == spool_pb2.JOB_STATE_HELD
