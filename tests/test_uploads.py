"""Direct-to-storage uploads and downloads with short-lived URLs (S3 on a real moto server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from printfabric.v1 import spool_pb2

from cloud.blobs import InvalidBlobToken, verify_blob_token
from cloud.config import S3Settings
from tests.support.fabric import CloudHarness, cloud_harness
from tests.support.s3 import run_moto_server
from tests.test_spool import blob_files, pdf_bytes


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
async def s3_cloud(tmp_path: Path, moto_endpoint: str) -> AsyncIterator[CloudHarness]:
    bucket = f"pf-{os.urandom(4).hex()}"
    s3 = S3Settings(bucket=bucket, endpoint_url=moto_endpoint, access_key="test", secret_key="test")
    async with cloud_harness(tmp_path / "home", s3=s3) as harness:
        yield harness


async def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes:
    # http.client rather than urllib: moto's server never answered urllib's PUT here.
    def call() -> bytes:
        parts = urlsplit(url)
        connection = HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            connection.request(
                method, f"{parts.path}?{parts.query}", body=body, headers=headers or {}
            )
            response = connection.getresponse()
            payload = response.read()
            assert response.status == 200, (response.status, payload[:300])
            return payload
        finally:
            connection.close()

    return await asyncio.to_thread(call)


async def test_upload_to_presigned_url_then_commit_makes_a_held_job(s3_cloud: CloudHarness) -> None:
    t = await s3_cloud.make_tenant("ACME")
    alice = await s3_cloud.add_user(t, "alice")
    data = pdf_bytes(4) + os.urandom(3 << 20)  # a PDF with trailing bytes, a few MiB
    made = await alice.spool.CreateUploadUrl(
        spool_pb2.CreateUploadUrlRequest(
            header=spool_pb2.JobHeader(printer="secure", title="via storage")
        )
    )
    assert made.url.startswith("http://127.0.0.1") and "X-Amz-Signature" in made.url
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.spool.CommitUpload(spool_pb2.CommitUploadRequest(upload_id=made.upload_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await http("PUT", made.url, data, dict(made.headers))
    job = (
        await alice.spool.CommitUpload(spool_pb2.CommitUploadRequest(upload_id=made.upload_id))
    ).job
    assert job.state == spool_pb2.JOB_STATE_HELD and job.title == "via storage"
    assert job.sha256 == hashlib.sha256(data).hexdigest() and job.size_bytes == len(data)
    again = (
        await alice.spool.CommitUpload(spool_pb2.CommitUploadRequest(upload_id=made.upload_id))
    ).job
    assert again.job_id == job.job_id
    url = await alice.spool.CreateDownloadUrl(spool_pb2.CreateDownloadUrlRequest(job_id=job.job_id))
    assert await http("GET", url.url) == data
    assert not any(s3_cloud.rt.blobs.staging_dir.iterdir())


async def test_another_user_cannot_commit_or_download(s3_cloud: CloudHarness) -> None:
    t = await s3_cloud.make_tenant("ACME")
    alice = await s3_cloud.add_user(t, "alice")
    bob = await s3_cloud.add_user(t, "bob")
    made = await alice.spool.CreateUploadUrl(
        spool_pb2.CreateUploadUrlRequest(header=spool_pb2.JobHeader(printer="secure"))
    )
    await http("PUT", made.url, b"%!PS\nshowpage\n", dict(made.headers))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.CommitUpload(spool_pb2.CommitUploadRequest(upload_id=made.upload_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    job = (
        await alice.spool.CommitUpload(spool_pb2.CommitUploadRequest(upload_id=made.upload_id))
    ).job
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.CreateDownloadUrl(spool_pb2.CreateDownloadUrlRequest(job_id=job.job_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_local_backend_urls_point_at_the_gateway_with_a_verifiable_token(
    sqlite_cloud: CloudHarness,
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    alice = await sqlite_cloud.add_user(t, "alice")
    made = await alice.spool.CreateUploadUrl(
        spool_pb2.CreateUploadUrlRequest(header=spool_pb2.JobHeader(printer="secure"))
    )
    parts = urlsplit(made.url)
    assert (parts.scheme, parts.netloc) == ("https", "localhost:8443") and parts.path.startswith(
        "/blob/v1/"
    )
    token = parts.path.rsplit("/", 1)[1]
    # Signed with the blob URL key the gateway reads, never the token-signing key.
    key_file = sqlite_cloud.running.config.blob_url_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    grant = verify_blob_token(key_file.read_bytes(), token, "PUT", sqlite_cloud.rt.clock())
    assert grant.blob_key == f"{t.tenant_id}/uploads/{made.upload_id}"
    with pytest.raises(InvalidBlobToken):
        verify_blob_token(sqlite_cloud.rt.signer.key, token, "PUT", sqlite_cloud.rt.clock())
    assert blob_files(sqlite_cloud) == []
