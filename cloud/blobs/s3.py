"""The scale-out blob backend: blobs are objects in an S3-compatible bucket, URLs are presigned."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from cloud.blobs.base import (
    MAX_CHUNK_SIZE,
    BlobNotFound,
    SignedUrl,
    validate_key,
    validate_read_range,
    validate_url_lifetime,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

# How S3 (and compatible stores) name a missing object: GetObject says NoSuchKey, HeadObject has
# no body and so only the HTTP status.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Bucket creation is idempotent for us: a bucket we already own is the wanted state.
_OWNED_BUCKET_CODES = frozenset({"BucketAlreadyOwnedByYou"})


class S3BlobStore:
    """Stores blobs as objects of one bucket, through boto3 calls run in worker threads.

    The boto3 client is thread-safe, so one client serves every concurrent operation.
    multipart_threshold and multipart_chunksize tune put_file(); S3 wants parts of 5 MiB at least.
    """

    def __init__(
        self,
        bucket: str,
        staging_dir: Path,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        multipart_threshold: int = 8 << 20,
        multipart_chunksize: int = 8 << 20,
    ) -> None:
        self._bucket = bucket
        self._region = region
        self._staging = staging_dir
        self._staging.mkdir(parents=True, exist_ok=True)
        # A session of our own: boto3's default session is shared module state and not
        # thread-safe to create clients from.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client: S3Client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                signature_version="s3v4",
                # Path style works with every S3-compatible server and with bucket names that
                # are not valid host names.
                s3={"addressing_style": "path"},
                retries={"mode": "standard"},
            ),
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize
        )
        self._bucket_ready = not create_bucket
        self._bucket_lock = asyncio.Lock()

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def staging_dir(self) -> Path:
        return self._staging

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    async def put_file(self, key: str, path: Path) -> None:
        validate_key(key)
        await self._ensure_bucket()
        # upload_file streams from disk and switches to a multipart upload above the threshold,
        # so a big job never sits in memory.
        await asyncio.to_thread(
            self._client.upload_file, str(path), self._bucket, key, Config=self._transfer
        )
        await asyncio.to_thread(path.unlink)

    def read(
        self, key: str, offset: int = 0, chunk_size: int = MAX_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        validate_read_range(offset, chunk_size)
        return self._read(key, offset, chunk_size)

    async def _read(self, key: str, offset: int, chunk_size: int) -> AsyncIterator[bytes]:
        await self._ensure_bucket()
        try:
            if offset:
                response = await asyncio.to_thread(
                    self._client.get_object, Bucket=self._bucket, Key=key, Range=f"bytes={offset}-"
                )
            else:
                # No Range at 0: an empty object would answer "bytes=0-" with InvalidRange.
                response = await asyncio.to_thread(
                    self._client.get_object, Bucket=self._bucket, Key=key
                )
        except ClientError as exc:
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise BlobNotFound(key) from None
            if code == "InvalidRange":
                # The object exists (else NoSuchKey) and offset is at or past its end.
                return
            raise
        body = response["Body"]
        try:
            chunks: Iterator[bytes] = body.iter_chunks(chunk_size)
            # One chunk per thread hop: the socket read blocks, and the generator must not
            # read ahead of its consumer.
            while chunk := await asyncio.to_thread(next, chunks, b""):
                yield chunk
        finally:
            # Closing an unfinished body drops its connection rather than draining the rest.
            body.close()

    async def size(self, key: str) -> int:
        validate_key(key)
        await self._ensure_bucket()
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise BlobNotFound(key) from None
            raise
        return head["ContentLength"]

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._ensure_bucket()
        # DeleteObject succeeds on a missing key, which is the contract.
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=key)

    async def upload_url(self, key: str, expires_in: timedelta, max_bytes: int = 0) -> SignedUrl:
        # max_bytes cannot be enforced here: a presigned PUT signs no upper bound on the body
        # (only a POST policy can), so the caller checks size() after the upload.
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        return await self._presign("put_object", key, expires_in)

    async def download_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        return await self._presign("get_object", key, expires_in)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def _presign(self, operation: str, key: str, expires_in: timedelta) -> SignedUrl:
        validate_key(key)
        validate_url_lifetime(expires_in)
        # The URL is used by someone else, later: the bucket must exist by then.
        await self._ensure_bucket()
        seconds = math.ceil(expires_in.total_seconds())
        expire_time = datetime.now(UTC) + timedelta(seconds=seconds)
        # Presigning makes no request, but resolving credentials the first time may (instance
        # metadata), so it runs in a thread too.
        url = await asyncio.to_thread(
            self._client.generate_presigned_url,
            operation,
            Params={"Bucket": self._bucket, "Key": key},
            ExpiresIn=seconds,
        )
        return SignedUrl(url=url, headers={}, expire_time=expire_time)

    async def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if not self._bucket_ready:
                await asyncio.to_thread(self._create_bucket)
                self._bucket_ready = True

    def _create_bucket(self) -> None:
        try:
            # us-east-1 is S3's default location and refuses to be named as a constraint.
            if self._region == "us-east-1":
                self._client.create_bucket(Bucket=self._bucket)
            else:
                constraint = cast("BucketLocationConstraintType", self._region)
                self._client.create_bucket(
                    Bucket=self._bucket,
                    CreateBucketConfiguration={"LocationConstraint": constraint},
                )
        except ClientError as exc:
            if _error_code(exc) not in _OWNED_BUCKET_CODES:
                raise


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
