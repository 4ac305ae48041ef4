"""The blob storage interface of the cloud, its errors and the key rules both backends share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

# The key rules are shared with the gateway, which serves the folder backend's signed URLs.
from printfabric.blobtokens import validate_key

#: The largest chunk a backend reads or writes at once, so no blob is ever held whole in memory.
MAX_CHUNK_SIZE = 1 << 20

#: The longest life of a signed URL: S3 refuses SigV4 presigned URLs valid for more than 7 days,
#: and both backends keep the same limit so that switching backends changes nothing for callers.
MAX_URL_LIFETIME = timedelta(days=7)

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_URL_LIFETIME",
    "BlobError",
    "BlobNotFound",
    "BlobStore",
    "SignedUrl",
    "validate_key",
    "validate_read_range",
    "validate_url_lifetime",
]


class BlobError(Exception):
    """The root of every error of the blob store."""


class BlobNotFound(BlobError):
    """No blob is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob stored under key {key!r}")
        self.key = key


@dataclass(frozen=True)
class SignedUrl:
    """A short-lived URL that grants one HTTP method on one blob, with the headers to send."""

    url: str
    headers: dict[str, str]
    expire_time: datetime


def validate_read_range(offset: int, chunk_size: int) -> None:
    """Raises ValueError unless offset >= 0 and chunk_size is within 1..MAX_CHUNK_SIZE."""
    if offset < 0:
        raise ValueError(f"read offset must not be negative, got {offset}")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be within 1..{MAX_CHUNK_SIZE}, got {chunk_size}")


def validate_url_lifetime(expires_in: timedelta) -> None:
    """Raises ValueError unless a signed URL's lifetime is within 1 second..MAX_URL_LIFETIME."""
    if not timedelta(seconds=1) <= expires_in <= MAX_URL_LIFETIME:
        raise ValueError(f"a signed URL must live 1 s to {MAX_URL_LIFETIME}, got {expires_in}")


class BlobStore(Protocol):
    """Where print and scan data live: a folder on disk (embedded) or an S3 bucket (at scale).

    Keys are validated with validate_key(); a malformed key raises ValueError in every method.
    """

    @property
    def staging_dir(self) -> Path:
        """A local folder where callers write a file before put_file().

        Writing there lets the local backend store the file with a rename on the same filesystem.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """The file that holds the blob, when the store keeps blobs on this machine's disk
        (None otherwise: then read() it). Callers only read it; it may be gone meanwhile."""
        ...

    async def put_file(self, key: str, path: Path) -> None:
        """Stores the finished local file at path under key, replacing any blob there.

        On success the store owns the data and path no longer exists; on failure path is left
        as it was, so the caller may retry or remove it.
        """
        ...

    def read(
        self, key: str, offset: int = 0, chunk_size: int = MAX_CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        """Yields the blob's bytes from offset on, in chunks of at most chunk_size.

        Arguments are checked at the call (ValueError); a missing blob raises BlobNotFound from
        the first iteration. An offset at or past the end yields nothing.
        """
        ...

    async def size(self, key: str) -> int:
        """Returns the blob's size in bytes; raises BlobNotFound if it is missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Tells whether a blob is stored under key."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the blob; a missing blob is not an error, so deletes can be retried."""
        ...

    async def upload_url(self, key: str, expires_in: timedelta, max_bytes: int = 0) -> SignedUrl:
        """Returns a URL that accepts one HTTP PUT of the blob's bytes until it expires.

        max_bytes (0: no limit) is carried in the local backend's token for the gateway to
        enforce; an S3 presigned PUT cannot carry an upper bound, so with S3 the caller must
        check size() once the upload is reported done.
        """
        ...

    async def download_url(self, key: str, expires_in: timedelta) -> SignedUrl:
        """Returns a URL that serves the blob to an HTTP GET until it expires."""
        ...

    async def close(self) -> None:
        """Releases the backend's connections; the store is not used afterwards."""
        ...
