"""The embedded blob backend: blobs are files under one root folder, URLs carry HMAC tokens."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from printfabric.blobtokens import (
    BLOBS_DIR,
    MIN_KEY_BYTES,
    STAGING_DIR,
    blob_path,
    sign_blob_token,
)

from cloud.blobs.base import (
    MAX_CHUNK_SIZE,
    BlobNotFound,
    SignedUrl,
    validate_key,
    validate_read_range,
    validate_url_lifetime,
)

# What the filesystem says when a key names no file: nothing there, a folder of other blobs
# ("a" when "a/b" is stored), or a path through a blob file ("a/b" when "a" is stored).
_NOT_A_BLOB = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class LocalBlobStore:
    """Stores blobs as files in root/"blobs"; the gateway serves the signed URLs it makes.

    Staging lives in root/"staging" (never a blob key's folder, as blob files live under
    root/"blobs"), on the same filesystem, so put_file() is an atomic rename: a reader sees the
    old blob or the new one, never half a file. Unlike S3, a folder cannot also be a file, so
    "a" and "a/b" cannot both be stored (put_file() raises OSError); keys of the form
    "tenant/kind/id" never collide that way.
    """

    def __init__(self, root: Path, public_base_url: str, url_key: bytes) -> None:
        if len(url_key) < MIN_KEY_BYTES:
            raise ValueError(f"url_key must be at least {MIN_KEY_BYTES} bytes")
        self._root = root.resolve()
        # The gateway serves the signed URLs and writes into the same layout (blob_path).
        self._blobs = self._root / BLOBS_DIR
        self._staging = self._root / STAGING_DIR
        self._public_base_url = public_base_url.rstrip("/")
        self._url_key = url_key
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._staging.mkdir(parents=True, exist_ok=True)

    @property
    def staging_dir(self) -> Path:
        return self._staging

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._put_file, self._path(key), path)

    def _put_file(self, target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._put_across_filesystems(target, source)
        # The rename itself is durable only once the folder is synced (the file's bytes are
        # the caller's to sync: the spool fsyncs what it received).
        _sync_folder(target.parent)

    def _put_across_filesystems(self, target: Path, source: Path) -> None:
        # A file written outside staging_dir cannot be renamed into place: copy it into staging
        # first, so the final step is still an atomic rename.
        fd, tmp_name = tempfile.mkstemp(dir=self._staging, prefix="put-")
        tmp = Path(tmp_name)
        try:
            with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, MAX_CHUNK_SIZE)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        source.unlink()

    def read(
        self, key: str, offset: int = 0, chunk_size: int = MAX_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        validate_read_range(offset, chunk_size)
        return self._read(key, path, offset, chunk_size)

    async def _read(
        self, key: str, path: Path, offset: int, chunk_size: int
    ) -> AsyncIterator[bytes]:
        try:
            file = await asyncio.to_thread(_open_at, path, offset)
        except _NOT_A_BLOB:
            raise BlobNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(file.read, chunk_size):
                yield chunk
        finally:
            file.close()

    async def size(self, key: str) -> int:
        path = self._path(key)
        try:
            info = await asyncio.to_thread(path.stat)
        except _NOT_A_BLOB:
            raise BlobNotFound(key) from None
        if not stat.S_ISREG(info.st_mode):
            raise BlobNotFound(key)
        return info.st_size

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(_unlink_blob, self._path(key))

    async def upload_url(self, key: str, expires_in: timedelta, max_bytes: int = 0) -> SignedUrl:
        return self._signed_url(key, "PUT", expires_in, max_bytes)

    async def download_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        return self._signed_url(key, "GET", expires_in, 0)

    async def close(self) -> None:
        """Nothing to release: every file is closed when its operation ends."""

    def _signed_url(
        self, key: str, method: str, expires_in: timedelta, max_bytes: int
    ) -> SignedUrl:
        validate_key(key)
        validate_url_lifetime(expires_in)
        # The token keeps whole seconds; rounding down here makes expire_time what it enforces.
        expire_time = (datetime.now(UTC) + expires_in).replace(microsecond=0)
        token = sign_blob_token(self._url_key, key, method, expire_time, max_bytes)
        return SignedUrl(
            url=f"{self._public_base_url}/blob/v1/{token}", headers={}, expire_time=expire_time
        )

    def _path(self, key: str) -> Path:
        return blob_path(self._root, key)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_blob(path: Path) -> None:
    # Emptied parent folders are left in place: removing them would race with a concurrent
    # put_file() that has just created them for its rename.
    with contextlib.suppress(*_NOT_A_BLOB):
        path.unlink()


def _open_at(path: Path, offset: int) -> BinaryIO:
    file = path.open("rb")
    try:
        file.seek(offset)
    except BaseException:
        file.close()
        raise
    return file
