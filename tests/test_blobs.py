"""Blob storage: both backends store, stream and refuse keys alike; tokens and S3 URLs work."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from printfabric import blobtokens

from cloud.blobs import (
    MAX_CHUNK_SIZE,
    BlobNotFound,
    BlobStore,
    InvalidBlobToken,
    LocalBlobStore,
    S3BlobStore,
    sign_blob_token,
    verify_blob_token,
)
from tests.support.processes import peer_missing
from tests.support.s3 import MotoServerError, run_moto_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1 << 20
KEY = "tenant-1/jobs/job-1"
URL_KEY = bytes(range(32))
PUBLIC_BASE_URL = "https://gateway.example:8443/"
S3_PART_SIZE = 5 * MiB  # the smallest part S3 accepts, so a 20 MiB upload has four parts
BAD_KEYS = [
    "",
    "/tenant-1/jobs/job-1",
    "tenant-1/../../escape",
    "..",
    "tenant-1/./job-1",
    "tenant-1//job-1",
    "tenant-1/jobs/",
    "tenant-1\\jobs\\job-1",
    "tenant-1/jobs/job 1",
    "tenant-1/jobs/jöb-1",
    "tenant-1/jobs/job-1\x00",
    "tenant-1/...",
    "t" * 1025,
]


# Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Iterator[S3Client]:
    """A client of our own, to look at the bucket behind the store's back."""
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=moto_endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    yield client
    client.close()


@pytest.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[LocalBlobStore]:
    store = LocalBlobStore(tmp_path / "store", PUBLIC_BASE_URL, URL_KEY)
    yield store
    await store.close()


@pytest.fixture
async def s3_store(moto_endpoint: str, tmp_path: Path) -> AsyncIterator[S3BlobStore]:
    # A bucket per test keeps the tests independent on the one shared server.
    store = _s3_store(moto_endpoint, f"test-{uuid.uuid4().hex}", tmp_path / "staging")
    yield store
    await store.close()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> BlobStore:
    # Resolved by name so the local runs never start the moto server.
    backend: BlobStore = request.getfixturevalue(f"{request.param}_store")
    return backend


def _s3_store(endpoint: str, bucket: str, staging_dir: Path) -> S3BlobStore:
    return S3BlobStore(
        bucket=bucket,
        staging_dir=staging_dir,
        endpoint_url=endpoint,
        access_key="testing",
        secret_key="testing",
        create_bucket=True,
        multipart_threshold=S3_PART_SIZE,
        multipart_chunksize=S3_PART_SIZE,
    )


# Helpers ----------------------------------------------------------------------------------------


def stage(store: BlobStore, data: bytes) -> Path:
    path = store.staging_dir / f"upload-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return path


async def put(store: BlobStore, key: str, data: bytes) -> None:
    await store.put_file(key, stage(store, data))


async def read_chunks(
    store: BlobStore, key: str, offset: int = 0, chunk_size: int = MAX_CHUNK_SIZE
) -> list[bytes]:
    return [chunk async for chunk in store.read(key, offset, chunk_size)]


async def read_all(store: BlobStore, key: str, offset: int = 0) -> bytes:
    return b"".join(await read_chunks(store, key, offset))


def http_request(
    method: str, url: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    connection = HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def write_random_file(path: Path, mebibytes: int) -> str:
    """Writes random bytes one MiB at a time, as a job arrives, and returns their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(mebibytes):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def other_filesystem_dir(reference: Path) -> Path | None:
    """Returns a writable folder on another filesystem than reference's, if this host has one."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != reference.stat().st_dev:
        return shm
    return None


def token_of(url: str) -> str:
    prefix = PUBLIC_BASE_URL.rstrip("/") + "/blob/v1/"
    assert url.startswith(prefix), url
    return url.removeprefix(prefix)


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


# Both backends ----------------------------------------------------------------------------------


async def test_put_file_takes_the_staged_file_and_streams_it_back_in_bounded_chunks(
    store: BlobStore,
) -> None:
    data = os.urandom(3 * MiB + 123)
    staged = stage(store, data)

    await store.put_file(KEY, staged)

    assert not staged.exists()
    assert await store.exists(KEY)
    assert await store.size(KEY) == len(data)
    chunks = await read_chunks(store, KEY)
    assert b"".join(chunks) == data
    assert len(chunks) >= 4
    assert max(len(chunk) for chunk in chunks) <= MAX_CHUNK_SIZE


async def test_read_from_an_offset_streams_only_the_tail(store: BlobStore) -> None:
    data = bytes(range(256)) * 4
    await put(store, KEY, data)

    chunks = await read_chunks(store, KEY, offset=300, chunk_size=128)

    assert b"".join(chunks) == data[300:]
    assert max(len(chunk) for chunk in chunks) <= 128
    assert len(chunks) >= 6


@pytest.mark.parametrize("past_end", [0, 1, 1000])
async def test_read_at_or_past_the_end_yields_nothing(store: BlobStore, past_end: int) -> None:
    await put(store, KEY, b"0123456789")

    assert await read_all(store, KEY, offset=10 + past_end) == b""


async def test_an_empty_blob_is_stored_and_read(store: BlobStore) -> None:
    await put(store, KEY, b"")

    assert await store.exists(KEY)
    assert await store.size(KEY) == 0
    assert await read_all(store, KEY) == b""


async def test_put_file_replaces_an_existing_blob(store: BlobStore) -> None:
    await put(store, KEY, b"first version, longer than the second")
    await put(store, KEY, b"second")

    assert await read_all(store, KEY) == b"second"
    assert await store.size(KEY) == len(b"second")


async def test_delete_removes_the_blob_and_tolerates_a_missing_one(store: BlobStore) -> None:
    await put(store, KEY, b"job data")
    await put(store, "tenant-1/jobs/job-2", b"other job")

    await store.delete(KEY)
    await store.delete(KEY)

    assert not await store.exists(KEY)
    with pytest.raises(BlobNotFound):
        await store.size(KEY)
    assert await read_all(store, "tenant-1/jobs/job-2") == b"other job"


@pytest.mark.parametrize("key", ["tenant-1/jobs/never-stored", "tenant-1/jobs", "tenant-2/x/y"])
async def test_a_missing_blob_raises_blob_not_found(store: BlobStore, key: str) -> None:
    # "tenant-1/jobs" is the folder of a stored blob on disk, which must not pass for a blob.
    await put(store, KEY, b"job data")

    assert not await store.exists(key)
    with pytest.raises(BlobNotFound, match=re.escape(repr(key))):
        await store.size(key)
    with pytest.raises(BlobNotFound):
        await read_all(store, key)
    with pytest.raises(BlobNotFound):
        await read_all(store, key, offset=5)


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_malformed_keys_are_refused_by_every_operation(store: BlobStore, key: str) -> None:
    staged = stage(store, b"payload")

    with pytest.raises(ValueError):
        await store.put_file(key, staged)
    with pytest.raises(ValueError):
        store.read(key)
    with pytest.raises(ValueError):
        await store.size(key)
    with pytest.raises(ValueError):
        await store.exists(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    with pytest.raises(ValueError):
        await store.upload_url(key, timedelta(minutes=5))
    with pytest.raises(ValueError):
        await store.download_url(key, timedelta(minutes=5))
    # A refused put_file leaves the caller's file alone.
    assert staged.read_bytes() == b"payload"


@pytest.mark.parametrize(("offset", "chunk_size"), [(-1, 1024), (0, 0), (0, MAX_CHUNK_SIZE + 1)])
def test_read_checks_its_arguments_at_the_call(
    store: BlobStore, offset: int, chunk_size: int
) -> None:
    with pytest.raises(ValueError):
        store.read(KEY, offset, chunk_size)


@pytest.mark.parametrize("expires_in", [timedelta(0), timedelta(seconds=-5), timedelta(days=8)])
async def test_signed_url_lifetimes_outside_one_second_to_seven_days_are_refused(
    store: BlobStore, expires_in: timedelta
) -> None:
    with pytest.raises(ValueError, match="must live"):
        await store.download_url(KEY, expires_in)
    with pytest.raises(ValueError, match="must live"):
        await store.upload_url(KEY, expires_in)


async def test_signed_urls_expire_when_they_say_in_utc(store: BlobStore) -> None:
    before = datetime.now(UTC)
    download = await store.download_url(KEY, timedelta(minutes=5))
    upload = await store.upload_url(KEY, timedelta(hours=1), max_bytes=1000)
    after = datetime.now(UTC)

    for signed, lifetime in ((download, timedelta(minutes=5)), (upload, timedelta(hours=1))):
        assert signed.expire_time.utcoffset() == timedelta(0)
        assert before + lifetime - timedelta(seconds=1) <= signed.expire_time
        assert signed.expire_time <= after + lifetime + timedelta(seconds=1)
    assert download.url != upload.url


# Local backend ----------------------------------------------------------------------------------


async def test_local_put_file_is_a_rename_into_the_root(
    local_store: LocalBlobStore, tmp_path: Path
) -> None:
    staged = stage(local_store, b"print data")
    inode = staged.stat().st_ino

    await local_store.put_file(KEY, staged)

    root = tmp_path / "store"
    holders = [p for p in root.rglob("*") if p.is_file() and p.stat().st_ino == inode]
    assert len(holders) == 1
    assert not holders[0].is_relative_to(local_store.staging_dir)
    assert holders[0].read_bytes() == b"print data"
    assert local_store.staging_dir.is_relative_to(root)


async def test_local_put_file_from_another_filesystem_is_copied_then_removed(
    local_store: LocalBlobStore,
) -> None:
    elsewhere = other_filesystem_dir(local_store.staging_dir)
    if elsewhere is None:
        peer_missing("needs a writable /dev/shm on a filesystem other than the test's tmp_path")
    source = elsewhere / f"printfabric-test-{uuid.uuid4().hex}"
    data = os.urandom(2 * MiB + 5)
    source.write_bytes(data)
    try:
        await local_store.put_file(KEY, source)

        assert not source.exists()
        assert await read_all(local_store, KEY) == data
        assert list(local_store.staging_dir.iterdir()) == []
    finally:
        source.unlink(missing_ok=True)


async def test_local_store_writes_nothing_outside_its_root(
    local_store: LocalBlobStore, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    outside_before = {p for p in tree(tmp_path) if not p.is_relative_to(root)}

    await put(local_store, KEY, b"inside")
    for key in ["../outside", "tenant-1/../../outside", "/tmp/outside", "..\\outside"]:
        with pytest.raises(ValueError):
            await local_store.put_file(key, stage(local_store, b"escape attempt"))

    outside_after = {p for p in tree(tmp_path) if not p.is_relative_to(root)}
    assert outside_after == outside_before
    assert not (tmp_path / "outside").exists()
    assert not await asyncio.to_thread(Path("/tmp/outside").exists)


async def test_the_gateway_finds_a_blob_where_the_folder_backend_stores_it(
    local_store: LocalBlobStore, tmp_path: Path
) -> None:
    # The gateway (which may not import the cloud) serves the folder's signed URLs with the
    # shared printfabric.blobtokens: one token format, one layout.
    await put(local_store, KEY, b"blob bytes")
    assert blobtokens.blob_path(tmp_path / "store", KEY).read_bytes() == b"blob bytes"
    assert local_store.staging_dir == tmp_path / "store" / blobtokens.STAGING_DIR
    assert (sign_blob_token, verify_blob_token, InvalidBlobToken) == (
        blobtokens.sign_blob_token,
        blobtokens.verify_blob_token,
        blobtokens.InvalidBlobToken,
    )
    with pytest.raises(ValueError):
        blobtokens.blob_path(tmp_path, "tenant-1/../../escape")


def test_local_store_refuses_a_short_url_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LocalBlobStore(tmp_path, PUBLIC_BASE_URL, b"too short")


async def test_local_download_url_carries_a_get_token_for_the_key(
    local_store: LocalBlobStore,
) -> None:
    signed = await local_store.download_url(KEY, timedelta(minutes=5))

    token = token_of(signed.url)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert signed.headers == {}
    grant = verify_blob_token(URL_KEY, token, "GET", datetime.now(UTC))
    assert grant.blob_key == KEY
    assert grant.method == "GET"
    assert grant.expire_time == signed.expire_time
    assert grant.max_bytes == 0


async def test_local_upload_url_carries_a_put_token_with_its_size_cap(
    local_store: LocalBlobStore,
) -> None:
    signed = await local_store.upload_url(KEY, timedelta(minutes=5), max_bytes=10 * MiB)

    grant = verify_blob_token(URL_KEY, token_of(signed.url), "PUT", datetime.now(UTC))
    assert (grant.blob_key, grant.method, grant.max_bytes) == (KEY, "PUT", 10 * MiB)


async def test_local_token_is_refused_for_the_other_method(local_store: LocalBlobStore) -> None:
    download = token_of((await local_store.download_url(KEY, timedelta(minutes=5))).url)
    upload = token_of((await local_store.upload_url(KEY, timedelta(minutes=5))).url)
    now = datetime.now(UTC)

    with pytest.raises(InvalidBlobToken, match="grants GET, not PUT"):
        verify_blob_token(URL_KEY, download, "PUT", now)
    with pytest.raises(InvalidBlobToken, match="grants PUT, not GET"):
        verify_blob_token(URL_KEY, upload, "GET", now)


async def test_local_token_is_refused_once_expired(local_store: LocalBlobStore) -> None:
    signed = await local_store.download_url(KEY, timedelta(seconds=30))
    token = token_of(signed.url)

    verify_blob_token(URL_KEY, token, "GET", signed.expire_time - timedelta(microseconds=1))
    with pytest.raises(InvalidBlobToken, match="expired"):
        verify_blob_token(URL_KEY, token, "GET", signed.expire_time)
    with pytest.raises(InvalidBlobToken, match="expired"):
        verify_blob_token(URL_KEY, token, "GET", signed.expire_time + timedelta(days=1))


# Tokens -----------------------------------------------------------------------------------------


def _forge_payload(token: str, **changes: object) -> str:
    payload, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


def _flip_char(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.fixture
def expire_time() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)


@pytest.fixture
def token(expire_time: datetime) -> str:
    return sign_blob_token(URL_KEY, KEY, "PUT", expire_time, max_bytes=1000)


def test_token_round_trips_its_grant(token: str, expire_time: datetime) -> None:
    grant = verify_blob_token(URL_KEY, token, "PUT", datetime.now(UTC))

    assert grant.blob_key == KEY
    assert grant.method == "PUT"
    assert grant.expire_time == expire_time
    assert grant.max_bytes == 1000


@pytest.mark.parametrize(
    "changes",
    [{"k": "tenant-2/jobs/job-1"}, {"m": "GET"}, {"e": 4102444800}, {"b": 0}],
    ids=["other-tenant", "other-method", "later-expiry", "no-size-cap"],
)
def test_token_with_a_rewritten_payload_is_refused(token: str, changes: dict[str, object]) -> None:
    forged = _forge_payload(token, **changes)

    with pytest.raises(InvalidBlobToken, match="signature does not match"):
        verify_blob_token(URL_KEY, forged, "PUT", datetime.now(UTC))


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_token_with_a_flipped_character_is_refused(token: str, part: str) -> None:
    index = 5 if part == "payload" else token.index(".") + 5

    with pytest.raises(InvalidBlobToken, match="signature does not match"):
        verify_blob_token(URL_KEY, _flip_char(token, index), "PUT", datetime.now(UTC))


def test_token_signed_with_another_key_is_refused(expire_time: datetime) -> None:
    other = sign_blob_token(bytes(32), KEY, "GET", expire_time)

    with pytest.raises(InvalidBlobToken, match="signature does not match"):
        verify_blob_token(URL_KEY, other, "GET", datetime.now(UTC))


@pytest.mark.parametrize("bad", ["", "no-dot", ".sig", "payload.", "pâyload.sig"])
def test_malformed_token_is_refused(bad: str) -> None:
    with pytest.raises(InvalidBlobToken, match="malformed"):
        verify_blob_token(URL_KEY, bad, "GET", datetime.now(UTC))


def test_signing_refuses_what_it_cannot_grant(expire_time: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign_blob_token(URL_KEY, KEY, "GET", expire_time.replace(tzinfo=None))
    with pytest.raises(ValueError, match="GET or PUT"):
        sign_blob_token(URL_KEY, KEY, "DELETE", expire_time)
    with pytest.raises(ValueError, match="PUT tokens only"):
        sign_blob_token(URL_KEY, KEY, "GET", expire_time, max_bytes=10)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        sign_blob_token(b"short", KEY, "GET", expire_time)
    with pytest.raises(ValueError, match="blob key"):
        sign_blob_token(URL_KEY, "../escape", "GET", expire_time)


def test_verifying_refuses_a_naive_clock(token: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_blob_token(URL_KEY, token, "PUT", datetime.now())


# S3 backend -------------------------------------------------------------------------------------


def test_moto_helper_says_what_to_install_when_moto_server_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))

    with (
        pytest.raises(MotoServerError, match=re.escape("pip install 'moto[server]'")),
        run_moto_server(),
    ):
        pass


async def test_s3_presigned_put_then_get_round_trips_the_bytes(s3_store: S3BlobStore) -> None:
    data = os.urandom(256 * 1024)

    upload = await s3_store.upload_url(KEY, timedelta(minutes=5))
    status, body = await asyncio.to_thread(http_request, "PUT", upload.url, upload.headers, data)
    assert status == 200, body

    assert await s3_store.size(KEY) == len(data)
    download = await s3_store.download_url(KEY, timedelta(minutes=5))
    status, body = await asyncio.to_thread(http_request, "GET", download.url, download.headers)
    assert status == 200
    assert body == data
    assert await read_all(s3_store, KEY, offset=1000) == data[1000:]


async def test_s3_presigned_urls_name_the_bucket_and_key_path_style(
    s3_store: S3BlobStore, moto_endpoint: str
) -> None:
    signed = await s3_store.download_url(KEY, timedelta(minutes=5))

    assert signed.url.startswith(f"{moto_endpoint}/{s3_store.bucket}/{KEY}?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in signed.url
    assert "X-Amz-Expires=300" in signed.url


async def test_s3_big_file_is_uploaded_in_parts_and_streamed_back(
    s3_store: S3BlobStore, s3_client: S3Client
) -> None:
    staged = s3_store.staging_dir / "big-job"
    written = await asyncio.to_thread(write_random_file, staged, 20)

    await s3_store.put_file(KEY, staged)

    assert not staged.exists()
    head = await asyncio.to_thread(s3_client.head_object, Bucket=s3_store.bucket, Key=KEY)
    # A multipart object's ETag ends in "-<number of parts>".
    assert head["ETag"].strip('"').endswith("-4")
    read = hashlib.sha256()
    largest = 0
    async for chunk in s3_store.read(KEY):
        read.update(chunk)
        largest = max(largest, len(chunk))
    assert read.hexdigest() == written
    assert largest <= MAX_CHUNK_SIZE


async def test_s3_bucket_creation_tolerates_an_existing_bucket(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = f"test-{uuid.uuid4().hex}"
    first = _s3_store(moto_endpoint, bucket, tmp_path / "first")
    second = _s3_store(moto_endpoint, bucket, tmp_path / "second")
    try:
        await put(first, KEY, b"from the first replica")
        await put(second, "tenant-1/jobs/job-2", b"from the second replica")

        assert await read_all(second, KEY) == b"from the first replica"
        assert await read_all(first, "tenant-1/jobs/job-2") == b"from the second replica"
    finally:
        await first.close()
        await second.close()
