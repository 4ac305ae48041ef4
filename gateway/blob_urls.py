"""Signed blob URLs of the cloud's embedded blob folder: `PUT/GET /blob/v1/{token}`.

The cloud (LocalBlobStore) signs the URLs with its blob URL key; the gateway verifies them with
the same key and reads or writes the folder in the same layout (printfabric.blobtokens). A PUT
streams into the folder's staging area and is renamed into place only once the whole body has
arrived, so a reader sees the old blob or the new one and a PUT cut off leaves nothing. Memory
stays flat whatever the size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from printfabric.blobtokens import (
    MIN_KEY_BYTES,
    STAGING_DIR,
    BlobGrant,
    InvalidBlobToken,
    blob_path,
    verify_blob_token,
)
from printfabric.request_body import BODY_IDLE_SECONDS, RequestBody
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.api_errors import ApiError

log = logging.getLogger(__name__)

# Bytes gathered before one write to disk (fewer thread hops than one per HTTP chunk).
WRITE_CHUNK = 1 << 20
READ_CHUNK = 1 << 20
_NOT_A_BLOB = (FileNotFoundError, IsADirectoryError, NotADirectoryError)
_STAGED_PREFIX = "gateway-put-"


class BlobKeyError(Exception):
    """The blob URL key file exists but cannot be used (unreadable or too short)."""


@dataclass(frozen=True)
class BlobFolder:
    """The cloud's blob folder as the gateway serves it, and the key its URLs are signed with."""

    root: Path
    key_file: Path

    def url_key(self) -> bytes | None:
        """The URL key; None when there is none (the gateway then serves no blob storage).

        Read on each request (a few bytes) so a gateway started before the cloud first made
        the key serves the folder as soon as it exists, and never an old key after a rotation.
        """
        try:
            key = self.key_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BlobKeyError(f"cannot read the blob URL key {self.key_file}: {exc}") from exc
        if len(key) < MIN_KEY_BYTES:
            raise BlobKeyError(
                f"the blob URL key {self.key_file} is shorter than {MIN_KEY_BYTES} bytes"
            )
        return key

    def check(self) -> None:
        """At start: raises BlobKeyError if the key file is there but unusable, and removes
        what a gateway that died mid-PUT left in staging."""
        self.url_key()
        # A live PUT writes at least every BODY_IDLE_SECONDS; one silent for far longer is dead.
        stale = time.time() - 10 * BODY_IDLE_SECONDS
        with contextlib.suppress(OSError):
            for leftover in (self.root / STAGING_DIR).glob(f"{_STAGED_PREFIX}*"):
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < stale:
                        leftover.unlink()

    @property
    def serving(self) -> bool:
        return self.root.is_dir()


def _no_storage() -> ApiError:
    return ApiError(404, "this gateway serves no blob storage", "NOT_FOUND")


async def _grant(folder: BlobFolder, token: str, method: str) -> BlobGrant:
    try:
        key = await asyncio.to_thread(folder.url_key)
    except BlobKeyError as exc:
        log.error("%s", exc)
        raise _no_storage() from exc
    if key is None or not folder.serving:
        raise _no_storage()
    try:
        return verify_blob_token(key, token, method, datetime.now(UTC))
    except InvalidBlobToken as exc:
        raise ApiError(
            403,
            f"this blob URL is not valid ({exc}); ask for a new one",
            "BAD_BLOB_TOKEN",
            close=method == "PUT",
        ) from exc


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise ApiError(400, f"Content-Length {value!r} is not a number of bytes", close=True)
    return int(value)


class _StagedFile:
    """A file being written in the folder's staging area; removed unless stored."""

    def __init__(self, root: Path) -> None:
        staging = root / STAGING_DIR
        staging.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging, prefix=_STAGED_PREFIX)
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def store(self, target: Path) -> None:
        """Flushes to disk and renames into place (atomic: same filesystem)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        self.path.unlink(missing_ok=True)


async def put_blob(folder: BlobFolder, request: Request) -> Response:
    grant = await _grant(folder, str(request.path_params["token"]), "PUT")
    target = blob_path(folder.root, grant.blob_key)
    limit = grant.max_bytes
    declared = _content_length(request)
    if limit and declared is not None and declared > limit:
        raise ApiError(
            413, f"the document is {declared} bytes; this URL takes at most {limit}", close=True
        )
    try:
        staged = await asyncio.to_thread(_StagedFile, folder.root)
    except OSError as exc:
        log.error("cannot write into the blob folder %s: %s", folder.root, exc)
        raise ApiError(503, "the blob storage cannot be written now; try again later") from exc
    body = RequestBody(request)
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    stored = False
    try:
        async for chunk in body:
            size += len(chunk)
            if limit and size > limit:
                raise ApiError(
                    413, f"the document is over the {limit} bytes this URL takes", close=True
                )
            if declared is not None and size > declared:
                raise ApiError(400, "the body is longer than its Content-Length", close=True)
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= WRITE_CHUNK:
                await asyncio.to_thread(staged.write, b"".join(pending))
                pending, pending_size = [], 0
        if declared is not None and size != declared:
            raise ApiError(400, f"the body ended after {size} of {declared} bytes", close=True)
        if pending:
            await asyncio.to_thread(staged.write, b"".join(pending))
        await asyncio.to_thread(staged.store, target)
        stored = True
    except ClientDisconnect:
        # Cut off: nothing is stored, and nobody is left to answer.
        return Response(status_code=400, headers={"Connection": "close"})
    except OSError as exc:
        log.error("cannot store blob %s: %s", grant.blob_key, exc)
        raise ApiError(503, "the blob storage cannot be written now; try again later") from exc
    finally:
        if not stored:
            await asyncio.to_thread(staged.discard)
    return JSONResponse({"size": size})


async def get_blob(folder: BlobFolder, request: Request) -> Response:
    grant = await _grant(folder, str(request.path_params["token"]), "GET")
    path = blob_path(folder.root, grant.blob_key)
    try:
        file, size = await asyncio.to_thread(_open, path)
    except _NOT_A_BLOB as exc:
        raise ApiError(404, "the document is no longer stored", "BLOB_NOT_FOUND") from exc
    headers = {"Content-Length": str(size)}
    if request.method == "HEAD":
        await asyncio.to_thread(file.close)
        return Response(headers=headers, media_type="application/octet-stream")
    return StreamingResponse(_chunks(file), headers=headers, media_type="application/octet-stream")


def _open(path: Path) -> tuple[BinaryIO, int]:
    # Opened first and measured through the open file: a blob replaced meanwhile (a rename)
    # cannot make the length disagree with the bytes sent.
    file = path.open("rb")
    try:
        return file, os.fstat(file.fileno()).st_size
    except BaseException:
        file.close()
        raise


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(file.close)


def blob_routes(folder: BlobFolder) -> list[Route]:
    async def blob(request: Request) -> Response:
        try:
            if request.method == "PUT":
                return await put_blob(folder, request)
            return await get_blob(folder, request)
        except ApiError as exc:
            return exc.response()

    return [Route("/blob/v1/{token:str}", blob, methods=["GET", "PUT"])]
