"""An RFC 1179 LPD server on asyncio: takes print jobs from LPR clients and hands them over.

The server speaks the protocol and nothing else: whether a queue exists, who may print and where
a job goes are a handler's business (`LpdHandler`). Data files stream to temporary files in the
spool folder and are hashed as they arrive; a job reaches the handler only once its control file
and every data file it names are complete, and a connection that ends early leaves nothing
behind. LPD has no way to say why it refuses, so each refusal is one negative acknowledgement to
the client and one log line with the reason for the people running the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from printfabric.lpd._receiving import (
    ACK,
    NACK,
    READ_BUFFER,
    ArrivingJob,
    Ended,
    LineTooLong,
    Link,
    Refusal,
    SpoolFile,
    delete_spools,
    peer_address,
    spool_data,
)
from printfabric.lpd.client import check_queue_name
from printfabric.lpd.control import ControlFile, PrintFile
from printfabric.lpd.errors import LpdError

__all__ = [
    "LpdHandler",
    "LpdLimits",
    "LpdRefused",
    "LpdServer",
    "ReceivedFile",
    "ReceivedJob",
    "serving_lpd",
]

log = logging.getLogger(__name__)

# RFC 1179 section 5: the daemon commands, the first octet of a connection.
PRINT_WAITING = 0x01
RECEIVE_JOB = 0x02
SEND_QUEUE_SHORT = 0x03
SEND_QUEUE_LONG = 0x04
REMOVE_JOBS = 0x05
COMMAND_NAMES = {
    PRINT_WAITING: "print-waiting",
    RECEIVE_JOB: "receive-job",
    SEND_QUEUE_SHORT: "short queue state",
    SEND_QUEUE_LONG: "long queue state",
    REMOVE_JOBS: "remove-jobs",
}
# RFC 1179 section 6: the subcommands of "receive a printer job".
SUB_ABORT = 0x01
SUB_CONTROL_FILE = 0x02
SUB_DATA_FILE = 0x03

# "COUNT SP NAME" of a file subcommand; names as RFC 1179 makes them (cfA123host, dfA123host):
# printable ASCII without '/', so that no name can ever point outside a folder.
_COUNT_AND_NAME = re.compile(rb"(\d{1,19}) ([!-~]{1,255})")
_CONTROL_NAME = re.compile(r"cf[A-Za-z][!-.0-~]{0,252}")
_DATA_NAME = re.compile(r"df[A-Za-z][!-.0-~]{0,252}")


class LpdRefused(LpdError):
    """Raised by a handler to refuse: the client gets a negative acknowledgement (LPD carries no
    text; `message` goes to the log, `reason` is an UPPER_SNAKE code such as UNKNOWN_QUEUE)."""


@dataclass(frozen=True)
class LpdLimits:
    """What one client may ask of the server; anything beyond is refused, never half-done.

    max_job_bytes bounds the sum of a job's data files (so each one too), checked against the
    counts the client declares before a byte of the file is read. idle_timeout is how long the
    server waits for the next byte from a client before it drops the connection and its
    unfinished job; max_command_line counts one command or subcommand line with its LF.
    """

    max_control_bytes: int = 16 * 1024
    max_job_bytes: int = 4 << 30
    max_data_files: int = 52
    idle_timeout: float = 60.0
    max_connections_per_peer: int = 16
    max_connections: int = 512
    max_command_line: int = 1024


@dataclass(frozen=True)
class ReceivedFile:
    """One data file as it arrived: name as the subcommand gave it (dfA123host), a temporary
    file in the spool folder (written, flushed and fsynced), its size, SHA-256 (lowercase hex)
    and its first up to 4096 bytes (enough to tell PDF from PostScript from PCL)."""

    name: str
    path: Path
    size: int
    sha256: str
    head: bytes


@dataclass(frozen=True)
class ReceivedJob:
    """A complete job: its queue, parsed control file, the name it came under (cfA123host),
    the job number in that name (0 if those three characters are not digits), each of the
    control file's data-file entries with the file it names, and the client's IP address.

    A file the control file names twice (two entries, e.g. two formats) appears twice with the
    same ReceivedFile."""

    queue: str
    control: ControlFile
    control_name: str
    number: int
    files: tuple[tuple[PrintFile, ReceivedFile], ...]
    peer: str


class LpdHandler(Protocol):
    """What the server asks of the rest of the system; every method may raise LpdRefused.

    accept_job is called once the job is complete and before the client hears that its last
    file arrived, so a job the handler refuses is never acknowledged. The handler takes the
    files it wants by moving them (os.replace) out of the spool folder; the server deletes
    whatever is still there once accept_job returns or raises.
    """

    async def check_queue(self, queue: str, peer: str) -> None:
        """Whether peer may send a job to queue; LpdRefused refuses the job at once."""
        ...

    async def accept_job(self, job: ReceivedJob) -> None:
        """Takes a complete job; LpdRefused refuses it (the client sees a failed last file)."""
        ...

    async def queue_state(self, queue: str, items: Sequence[str], long: bool, peer: str) -> str:
        """The text lpq shows for queue (only the jobs or users in items, if any)."""
        ...

    async def remove_jobs(self, queue: str, agent: str, items: Sequence[str], peer: str) -> None:
        """Removes the jobs (numbers or user names in items) agent asks to remove."""
        ...

    async def print_waiting(self, queue: str, peer: str) -> None:
        """Starts printing whatever waits in queue (RFC 1179's "print any waiting jobs")."""
        ...


class LpdServer:
    """An LPD listener; every connection runs in a task of its own that close() cancels."""

    def __init__(
        self, handler: LpdHandler, spool_dir: Path, limits: LpdLimits | None = None
    ) -> None:
        self._handler = handler
        self._spool_dir = spool_dir
        self._limits = limits or LpdLimits()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_peer: Counter[str] = Counter()

    async def start(self, host: str, port: int) -> None:
        """Creates the spool folder (0700: print jobs are private) and listens; port 0 picks
        any free port (see `port`)."""
        await asyncio.to_thread(self._spool_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        self._server = await asyncio.start_server(self._accept, host, port, limit=READ_BUFFER)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the LPD server is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connection_count(self) -> int:
        """Connections being served right now (for metrics, and for tests to wait on)."""
        return len(self._tasks)

    async def close(self) -> None:
        """Stops listening and cancels every open connection; an unfinished job's files are
        deleted before this returns."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_address(writer.get_extra_info("peername"))
        limits = self._limits
        if (
            len(self._tasks) >= limits.max_connections
            or self._per_peer[peer] >= limits.max_connections_per_peer
        ):
            log.warning("LPD connection from %s closed: too many connections", peer)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None  # start_server runs each connection in a task
        self._tasks.add(task)
        self._per_peer[peer] += 1
        link = Link(reader, writer, limits.idle_timeout)
        try:
            await self._converse(link, peer)
        except Ended as exc:
            log.debug("LPD connection from %s ended: %s", peer, exc.message)
        except Exception:
            log.exception("LPD connection from %s failed", peer)
        finally:
            self._tasks.discard(task)
            self._per_peer[peer] -= 1
            if self._per_peer[peer] <= 0:
                del self._per_peer[peer]
            await link.close()

    async def _converse(self, link: Link, peer: str) -> None:
        """Reads the daemon command of a connection and carries it out."""
        try:
            line = await link.line(self._limits.max_command_line)
        except LineTooLong as exc:
            log.warning("LPD connection from %s closed: command line too long", peer)
            if exc.first == RECEIVE_JOB:
                await link.refuse()
            return
        if line is None or len(line) < 2:
            return
        command, words = line[0], line[1:-1].decode("utf-8", "replace").split()
        what = COMMAND_NAMES.get(command)
        if what is None:
            log.warning("LPD connection from %s closed: unknown command %d", peer, command)
            return
        queue = words[0] if words else ""
        try:
            check_queue_name(queue)
            if command == RECEIVE_JOB and len(words) != 1:
                raise LpdError("a receive-job command names one queue", "BAD_QUEUE_NAME")
            if command == REMOVE_JOBS and len(words) < 2:
                raise LpdError("a remove-jobs command names no agent", "BAD_COMMAND")
        except LpdError as exc:
            log.warning("LPD %s from %s refused (%s): %s", what, peer, exc.reason, exc.message)
            if command == RECEIVE_JOB:
                await link.refuse()
            return
        if command == RECEIVE_JOB:
            await self._receive_job(link, queue, peer)
            return
        try:
            if command == PRINT_WAITING:
                await self._handler.print_waiting(queue, peer)
            elif command == REMOVE_JOBS:
                await self._handler.remove_jobs(queue, words[1], words[2:], peer)
                # RFC 1179 defines no answer; one zero octet is what cups-lpd says.
                await link.send(ACK)
            else:
                long = command == SEND_QUEUE_LONG
                text = await self._handler.queue_state(queue, words[1:], long, peer)
                await link.send(text.encode("utf-8"))
        except LpdRefused as exc:
            log.warning(
                "LPD %s on queue %r from %s refused (%s): %s",
                what,
                queue,
                peer,
                exc.reason,
                exc.message,
            )
            if command == REMOVE_JOBS:
                await link.send(NACK)
        except Ended:
            raise
        except Exception:
            log.exception("LPD %s on queue %r from %s failed in the handler", what, queue, peer)

    async def _receive_job(self, link: Link, queue: str, peer: str) -> None:
        """RFC 1179 section 6: files of one or more jobs, each subcommand acknowledged."""
        try:
            await self._handler.check_queue(queue, peer)
        except LpdRefused as exc:
            log.warning(
                "LPD job for queue %r from %s refused (%s): %s",
                queue,
                peer,
                exc.reason,
                exc.message,
            )
            await link.refuse()
            return
        except Exception:
            log.exception("LPD job for queue %r from %s refused: check_queue failed", queue, peer)
            await link.refuse()
            return
        await link.send(ACK)
        job = ArrivingJob()
        try:
            while True:
                line = await link.line(self._limits.max_command_line)
                if line is None:
                    if job.started:
                        raise Ended(
                            "CONNECTION_LOST", "the client hung up before the job was complete"
                        )
                    return
                if line[0] == SUB_ABORT:
                    await self._discard(job, queue, peer, Ended("ABORTED", "the client aborted it"))
                    job = ArrivingJob()
                    await link.send(ACK)
                    continue
                await self._receive_file(link, job, line)
                if job.complete:
                    done, job = job, ArrivingJob()
                    if not await self._hand_over(done, queue, peer):
                        await link.refuse()
                        return
                await link.send(ACK)
        except LineTooLong:
            await self._discard(job, queue, peer, Refusal("BAD_SUBCOMMAND", "line too long"))
            await link.refuse()
        except Refusal as exc:
            await self._discard(job, queue, peer, exc)
            await link.refuse()
        except Ended as exc:
            await self._discard(job, queue, peer, exc)
        finally:
            # Cancelled (server closing) or anything unforeseen: nothing of the job may stay.
            await delete_spools(job.spools)

    async def _receive_file(self, link: Link, job: ArrivingJob, line: bytes) -> None:
        """One control or data file subcommand, up to (not including) its acknowledgement."""
        match = _COUNT_AND_NAME.fullmatch(line[1:-1])
        if line[0] not in (SUB_CONTROL_FILE, SUB_DATA_FILE) or match is None:
            raise Refusal("BAD_SUBCOMMAND", f"subcommand {line[0]} is not 'count name'")
        count, name = int(match[1]), match[2].decode("ascii")
        if line[0] == SUB_CONTROL_FILE:
            await self._receive_control(link, job, count, name)
        else:
            await self._receive_data(link, job, count, name)

    async def _receive_control(self, link: Link, job: ArrivingJob, count: int, name: str) -> None:
        limits = self._limits
        if not _CONTROL_NAME.fullmatch(name):
            raise Refusal("BAD_FILE_NAME", f"{name!r} is not a control file name")
        if job.control is not None:
            raise Refusal("BAD_JOB", "a second control file for one job")
        if not 0 < count <= limits.max_control_bytes:
            raise Refusal("CONTROL_FILE_TOO_BIG", f"control file of {count} bytes")
        await link.send(ACK)
        body = await link.exactly(count)
        await link.trailer(name)
        try:
            control = ControlFile.parse(body)
        except LpdError as exc:
            raise Refusal(exc.reason, exc.message) from exc
        if not control.files:
            raise Refusal("NO_DATA_FILES", "the control file names no data file")
        if len({entry.name for entry in control.files}) > limits.max_data_files:
            raise Refusal("TOO_MANY_FILES", "the control file names too many data files")
        job.control = (name, control)

    async def _receive_data(self, link: Link, job: ArrivingJob, count: int, name: str) -> None:
        limits = self._limits
        if not _DATA_NAME.fullmatch(name):
            raise Refusal("BAD_FILE_NAME", f"{name!r} is not a data file name")
        if count == 0:
            # LPRng's "send until the connection closes" leaves no way to tell a cut job.
            raise Refusal("UNSUPPORTED", "data file of unknown length (count 0)")
        if name in job.data:
            raise Refusal("BAD_JOB", f"data file {name!r} sent twice")
        if len(job.data) >= limits.max_data_files:
            raise Refusal("TOO_MANY_FILES", f"more than {limits.max_data_files} data files")
        if job.size + count > limits.max_job_bytes:
            raise Refusal("JOB_TOO_BIG", f"{job.size + count} bytes of data files")
        spool = SpoolFile(self._spool_dir / f"lpd-{secrets.token_hex(12)}.part")
        job.data[name] = spool
        job.size += count
        try:
            await asyncio.to_thread(spool.open)
        except OSError as exc:
            raise Refusal("SPOOL_FAILED", f"cannot create a spool file: {exc}") from exc
        await link.send(ACK)
        sha256, head = await spool_data(link, spool, count, name)
        job.received[name] = ReceivedFile(name, spool.path, count, sha256, head)

    async def _hand_over(self, job: ArrivingJob, queue: str, peer: str) -> bool:
        """Gives a complete job to the handler; whether it took it. Its files are gone from
        their temporary paths afterwards either way."""
        assert job.control is not None
        control_name, control = job.control
        number = control_name[3:6]
        received = ReceivedJob(
            queue=queue,
            control=control,
            control_name=control_name,
            number=int(number) if number.isascii() and number.isdigit() else 0,
            files=tuple((entry, job.received[entry.name]) for entry in control.files),
            peer=peer,
        )
        try:
            await self._handler.accept_job(received)
        except LpdRefused as exc:
            log.warning(
                "LPD job %s on queue %r from %s refused (%s): %s",
                control_name,
                queue,
                peer,
                exc.reason,
                exc.message,
            )
            return False
        except Exception:
            log.exception(
                "LPD job %s on queue %r from %s refused: accept_job failed",
                control_name,
                queue,
                peer,
            )
            return False
        finally:
            await delete_spools(job.spools)
        size = sum({file.name: file.size for _, file in received.files}.values())
        log.info(
            "LPD job %s accepted on queue %r from %s: user %r, %d bytes, %d data file(s)",
            control_name,
            queue,
            peer,
            control.user,
            size,
            len(received.files),
        )
        return True

    async def _discard(self, job: ArrivingJob, queue: str, peer: str, why: Ended) -> None:
        """Deletes what arrived of the job; a refusal, or the loss of a job begun, is logged
        as a warning (a client that hangs up between jobs is not news)."""
        await delete_spools(job.spools)
        if job.started or isinstance(why, Refusal):
            what = "refused" if isinstance(why, Refusal) else "discarded"
            log.warning(
                "LPD job %s on queue %r from %s %s (%s): %s",
                job.label,
                queue,
                peer,
                what,
                why.reason,
                why.message,
            )
        else:
            log.debug("LPD connection from %s ended (%s): %s", peer, why.reason, why.message)


@contextlib.asynccontextmanager
async def serving_lpd(
    handler: LpdHandler,
    spool_dir: Path,
    host: str,
    port: int,
    limits: LpdLimits | None = None,
) -> AsyncIterator[LpdServer]:
    """An LpdServer listening on host:port for the duration of the block, closed after it."""
    server = LpdServer(handler, spool_dir, limits)
    await server.start(host, port)
    try:
        yield server
    finally:
        await server.close()
