"""The machinery of one LPD connection: bounded reads and writes, and data files on their way
to the spool folder (the LPD server's own; what the protocol means stays in server.py).

Nothing here logs or talks to a handler: the server decides what a failure means, these parts
only report it as `Ended` (the connection is over) or `Refusal` (the client hears a negative
acknowledgement).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from printfabric.lpd.control import ControlFile

if TYPE_CHECKING:  # server.py imports this module; the job only holds its ReceivedFiles
    from printfabric.lpd.server import ReceivedFile

_T = TypeVar("_T")

ACK = b"\x00"
NACK = b"\x01"
# Data goes to disk in writes of about this size: each write is one hand-off to a worker
# thread, and a thread hand-off costs about as much as writing 100 KiB.
WRITE_CHUNK = 1 << 20
# How much a connection's StreamReader buffers before it stops reading the socket; the loop
# keeps filling it while a worker thread writes the previous chunk.
READ_BUFFER = 256 << 10
HEAD_BYTES = 4096
# After a negative acknowledgement the client may still be sending; reading (and dropping) what
# it sends for a moment lets it see the acknowledgement instead of a connection reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 << 20


class Ended(Exception):
    """The connection ended (hang-up, reset, idle timeout): nothing more to say to the client."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Refusal(Ended):
    """The client asked for something the server does not do: negative acknowledgement."""


class LineTooLong(Exception):
    """A command line longer than max_command_line; `first` is its first octet (a receive-job
    command still hears a negative acknowledgement)."""

    def __init__(self, first: int) -> None:
        super().__init__("command line too long")
        self.first = first


class ArrivingJob:
    """The files of a job arriving on one connection, in whatever order they come."""

    def __init__(self) -> None:
        self.control: tuple[str, ControlFile] | None = None
        self.data: dict[str, SpoolFile] = {}  # by name, complete or still arriving
        self.received: dict[str, ReceivedFile] = {}
        self.size = 0

    @property
    def label(self) -> str:
        """The job's name for the log: its control file's name once that has arrived."""
        return self.control[0] if self.control is not None else "(no control file yet)"

    @property
    def started(self) -> bool:
        return self.control is not None or bool(self.data)

    @property
    def complete(self) -> bool:
        if self.control is None:
            return False
        return all(entry.name in self.received for entry in self.control[1].files)

    @property
    def spools(self) -> list[SpoolFile]:
        return list(self.data.values())


class SpoolFile:
    """A data file on its way to disk. Its methods run in worker threads, serialized by a lock,
    so that deleting it (the connection died) waits for a write still running."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._deleted = False

    def open(self) -> None:
        with self._lock:
            if self._deleted:
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            self._file = os.fdopen(fd, "wb")

    def write(self, pieces: Sequence[bytes]) -> None:
        with self._lock:
            self._write(pieces)

    def finish(self, pieces: Sequence[bytes]) -> str:
        """Writes the last pieces, flushes, fsyncs and closes; the SHA-256 of the whole file."""
        with self._lock:
            file = self._write(pieces)
            file.flush()
            os.fsync(file.fileno())
            file.close()
            self._file = None
            return self._hash.hexdigest()

    def _write(self, pieces: Sequence[bytes]) -> BinaryIO:
        if self._file is None:
            raise OSError(f"{self.path} was deleted while it was being written")
        for piece in pieces:
            self._hash.update(piece)
            self._file.write(piece)
        return self._file

    def delete(self) -> None:
        with self._lock:
            self._deleted = True
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def peer_address(address: object) -> str:
    """The client's IP address; an IPv4 client of a dual-stack listener as plain IPv4, so that
    limits and handlers see one address per client."""
    host = str(address[0]) if isinstance(address, tuple) else str(address)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return host


async def spool_write(write: Callable[[Sequence[bytes]], _T], pieces: Sequence[bytes]) -> _T:
    try:
        return await asyncio.to_thread(write, pieces)
    except OSError as exc:
        raise Refusal("SPOOL_FAILED", f"cannot write a spool file: {exc}") from exc


async def spool_data(link: Link, spool: SpoolFile, count: int, name: str) -> tuple[str, bytes]:
    """Streams a data file of count bytes and its trailer octet from the client into spool
    (opened), in writes of about WRITE_CHUNK; its SHA-256 and first HEAD_BYTES bytes."""
    head = bytearray()
    pieces: list[bytes] = []
    held = 0
    left = count
    while left:
        piece = await link.read(min(left, WRITE_CHUNK))
        if not piece:
            raise Ended("CONNECTION_LOST", f"the client hung up in data file {name!r}")
        if len(head) < HEAD_BYTES:
            head += piece[: HEAD_BYTES - len(head)]
        pieces.append(piece)
        held += len(piece)
        left -= len(piece)
        if held >= WRITE_CHUNK and left:
            await spool_write(spool.write, pieces)
            pieces, held = [], 0
    await link.trailer(name)
    sha256 = await spool_write(spool.finish, pieces)
    return sha256, bytes(head)


async def delete_spools(spools: Iterable[SpoolFile]) -> None:
    """Deletes the files in a worker thread; shielded so that a second cancellation cannot
    leave a file behind (the thread finishes the job regardless)."""
    files = list(spools)
    if not files:
        return

    def delete_all() -> None:
        for spool in files:
            spool.delete()

    await asyncio.shield(asyncio.to_thread(delete_all))


class Link:
    """One client connection: lines, exact reads and writes, each bounded by the idle timeout.

    Bytes read past a command line wait in `_pending` for the next read: a client sends a data
    file right behind its subcommand line, often in the same segment."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._idle = idle
        self._pending = b""

    async def _receive(self, most: int) -> bytes:
        try:
            async with asyncio.timeout(self._idle):
                return await self._reader.read(most)
        except TimeoutError as exc:
            raise Ended("IDLE_TIMEOUT", f"nothing from the client for {self._idle:g} s") from exc
        except OSError as exc:
            raise Ended("CONNECTION_LOST", f"the connection broke: {exc}") from exc

    async def line(self, limit: int) -> bytes | None:
        """The next line with its LF; None if the client closed before sending a byte of it."""
        buffer = self._pending
        while True:
            end = buffer.find(b"\n", 0, limit)
            if end >= 0:
                self._pending = buffer[end + 1 :]
                return buffer[: end + 1]
            if len(buffer) >= limit:
                raise LineTooLong(buffer[0])
            more = await self._receive(READ_BUFFER)
            if not more:
                if buffer:
                    raise Ended("CONNECTION_LOST", "the client hung up in the middle of a line")
                return None
            buffer += more
            self._pending = buffer

    async def read(self, most: int) -> bytes:
        """Up to most bytes (b"" at the end of the connection)."""
        if self._pending:
            piece, self._pending = self._pending[:most], self._pending[most:]
            return piece
        return await self._receive(most)

    async def exactly(self, count: int) -> bytes:
        pieces = []
        left = count
        while left:
            piece = await self.read(left)
            if not piece:
                raise Ended("CONNECTION_LOST", f"the client hung up {left} bytes short of a file")
            pieces.append(piece)
            left -= len(piece)
        return b"".join(pieces)

    async def trailer(self, name: str) -> None:
        """The zero octet after a file's bytes: anything else means the count was a lie."""
        octet = await self.exactly(1)
        if octet != ACK:
            raise Refusal("LENGTH_MISMATCH", f"{name!r} did not end where its count said")

    async def send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            async with asyncio.timeout(self._idle):
                await self._writer.drain()
        except TimeoutError as exc:
            raise Ended("IDLE_TIMEOUT", f"the client took nothing for {self._idle:g} s") from exc
        except OSError as exc:
            raise Ended("CONNECTION_LOST", f"the connection broke: {exc}") from exc

    async def refuse(self) -> None:
        """Sends the negative acknowledgement and our end of the stream, then drops what the
        client still sends for a moment: closing with unread bytes would reset the connection,
        and a reset can overtake the acknowledgement."""
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(min(LINGER_SECONDS, self._idle)):
                self._writer.write(NACK)
                await self._writer.drain()
                if self._writer.can_write_eof():
                    self._writer.write_eof()
                self._pending = b""
                dropped = 0
                while dropped < LINGER_BYTES:
                    piece = await self._reader.read(READ_BUFFER)
                    if not piece:
                        break
                    dropped += len(piece)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()
