"""Jobs through SubmitJob and back through DownloadJob on the real TLS server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import pytest
from printfabric.v1 import common_pb2, spool_pb2
from pypdf import PdfWriter

from tests.support.fabric import CloudHarness, Stubs


def pdf_bytes(pages: int) -> bytes:
    import io

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def submit_stream(
    header: spool_pb2.JobHeader, data: bytes, chunk: int = 65536
) -> AsyncIterator[spool_pb2.SubmitJobRequest]:
    yield spool_pb2.SubmitJobRequest(header=header)
    for i in range(0, len(data), chunk):
        yield spool_pb2.SubmitJobRequest(chunk=data[i : i + chunk])


async def submit(stubs: Stubs, data: bytes, queue: str = "secure", **header: Any) -> spool_pb2.Job:
    resp = await stubs.spool.SubmitJob(
        submit_stream(spool_pb2.JobHeader(printer=queue, **header), data)
    )
    return resp.job


async def download(stubs: Stubs, job_id: str, offset: int = 0) -> tuple[spool_pb2.Job, bytes]:
    job = None
    data = bytearray()
    async for msg in stubs.spool.DownloadJob(
        spool_pb2.DownloadJobRequest(job_id=job_id, offset=offset)
    ):
        if msg.WhichOneof("item") == "job":
            job = msg.job
        else:
            data += msg.chunk
    assert job is not None
    return job, bytes(data)


def blob_files(cloud: CloudHarness) -> list[str]:
    root = cloud.running.runtime.blobs.staging_dir.parent
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_pdf_is_held_with_pages_size_and_hash_and_comes_back_byte_identical(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    data = pdf_bytes(3)
    job = await submit(alice, data, title="Quarterly report", request_id="r-1")
    assert job.state == spool_pb2.JOB_STATE_HELD
    assert "Held for release" in job.state_message
    assert job.format == common_pb2.DOCUMENT_FORMAT_PDF
    assert job.page_count == 3
    assert job.size_bytes == len(data)
    assert job.sha256 == hashlib.sha256(data).hexdigest()
    assert job.owner_login == "alice" and job.printer_name == "secure" and job.number >= 1
    got_job, got = await download(alice, job.job_id)
    assert got == data and got_job.job_id == job.job_id
    _, tail = await download(alice, job.job_id, offset=100)
    assert tail == data[100:]


async def test_same_request_id_returns_the_first_job(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    first = await submit(alice, b"%!PS-Adobe-3.0\n%%Pages: 1\nshowpage\n", request_id="same")
    second = await submit(alice, b"%!PS-Adobe-3.0\n%%Pages: 1\nshowpage\n", request_id="same")
    assert first.job_id == second.job_id
    listed = await alice.spool.ListJobs(spool_pb2.ListJobsRequest())
    assert [j.job_id for j in listed.jobs] == [first.job_id]


async def test_release_cancel_and_list_by_state(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    jobs = [await submit(alice, b"%!PS\nshowpage\n" * (i + 1)) for i in range(3)]
    released = await alice.spool.ReleaseJobs(
        spool_pb2.ReleaseJobsRequest(job_ids=[jobs[0].job_id], printer_id="secure")
    )
    assert [j.state for j in released.jobs] == [spool_pb2.JOB_STATE_RELEASED]
    canceled = await alice.spool.CancelJob(spool_pb2.CancelJobRequest(job_id=jobs[1].job_id))
    assert canceled.job.state == spool_pb2.JOB_STATE_CANCELED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.spool.CancelJob(spool_pb2.CancelJobRequest(job_id=jobs[1].job_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    held = await alice.spool.ListJobs(spool_pb2.ListJobsRequest(states=[spool_pb2.JOB_STATE_HELD]))
    assert [j.job_id for j in held.jobs] == [jobs[2].job_id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await download(alice, jobs[1].job_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _raw(
    chunks: Iterable[spool_pb2.SubmitJobRequest],
) -> AsyncIterator[spool_pb2.SubmitJobRequest]:
    for c in chunks:
        yield c


@pytest.mark.parametrize(
    ("messages", "code", "needle"),
    [
        ([spool_pb2.SubmitJobRequest(chunk=b"%PDF-")], grpc.StatusCode.INVALID_ARGUMENT, "header"),
        ([], grpc.StatusCode.INVALID_ARGUMENT, "header"),
        (
            [
                spool_pb2.SubmitJobRequest(header=spool_pb2.JobHeader(printer="nope")),
                spool_pb2.SubmitJobRequest(chunk=b"x"),
            ],
            grpc.StatusCode.NOT_FOUND,
            "no queue named nope",
        ),
        (
            [spool_pb2.SubmitJobRequest(header=spool_pb2.JobHeader(printer="secure"))],
            grpc.StatusCode.INVALID_ARGUMENT,
            "empty",
        ),
        (
            [
                spool_pb2.SubmitJobRequest(header=spool_pb2.JobHeader(printer="secure")),
                spool_pb2.SubmitJobRequest(chunk=b"abc"),
                spool_pb2.SubmitJobRequest(header=spool_pb2.JobHeader(printer="secure")),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "only chunks",
        ),
        (
            [
                spool_pb2.SubmitJobRequest(
                    header=spool_pb2.JobHeader(printer="secure", size_hint=1 << 40)
                )
            ],
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "limit",
        ),
    ],
)
async def test_bad_submissions_get_a_clear_status_and_leave_nothing(
    cloud: CloudHarness,
    messages: list[spool_pb2.SubmitJobRequest],
    code: grpc.StatusCode,
    needle: str,
) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.spool.SubmitJob(_raw(messages))
    assert err.value.code() == code
    assert needle in (err.value.details() or "")
    assert (await alice.spool.ListJobs(spool_pb2.ListJobsRequest())).jobs == []
    assert blob_files(cloud) == []
