"""An RFC 1179 LPD client over asyncio: print a job, read a queue's state, remove jobs.

The connection comes from an ordinary (unprivileged) source port: RFC 1179 asks for 721-731,
but binding those needs root, cups-lpd and printers do not check it, and a port number proves
nothing. Every step (connecting, each acknowledgement, each write making progress) waits at
most `timeout` seconds; each failure is one LpdError with a message a person can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import re
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from printfabric.lpd.control import JOB_NUMBERS, ControlFile, control_file_name
from printfabric.lpd.errors import LpdError

DEFAULT_PORT = 515
CHUNK = 1 << 20
# After its last acknowledgement a server closes when it has taken the job (cups-lpd hands it
# to cupsd only then); a server that keeps the connection open has still acknowledged it all.
CLOSE_WAIT = 10.0
STATE_LIMIT = 1 << 20

# RECEIVE_JOB etc. are RFC 1179's daemon commands (section 5) and subcommands (section 6).
RECEIVE_JOB = 0x02
SEND_QUEUE_SHORT = 0x03
SEND_QUEUE_LONG = 0x04
REMOVE_JOBS = 0x05
SUB_CONTROL_FILE = 0x02
SUB_DATA_FILE = 0x03

# A queue name or list item goes on a command line between spaces: printable ASCII, no space.
_WORD = re.compile(r"[!-~]{1,127}")


def check_queue_name(queue: str) -> str:
    """queue if it can go on an LPD command line; LpdError (BAD_QUEUE_NAME) otherwise."""
    if not _WORD.fullmatch(queue):
        raise LpdError(
            f"{queue!r} is not an LPD queue name (1 to 127 printable ASCII characters, no spaces)",
            "BAD_QUEUE_NAME",
        )
    return queue


async def send_job(
    host: str,
    port: int,
    queue: str,
    data: Path,
    *,
    user: str,
    host_name: str,
    job_name: str = "",
    title: str = "",
    source_name: str = "",
    file_type: str = "l",
    copies: int = 1,
    job_number: int | None = None,
    banner: bool = False,
    data_first: bool = False,
    timeout: float = 30.0,  # noqa: ASYNC109  (per step, not a deadline for the whole job)
    progress: Callable[[int], None] | None = None,
) -> int:
    """Prints the file data on queue at host:port ("receive a printer job"); returns the job number.

    user goes on the P line (the job's owner), host_name on H, job_name on J, title on T (the
    title `pr` prints), source_name on N; file_type is the data-file line ('l' prints the bytes
    as they are; 'o' PostScript, 'f' text, ...); copies repeats that line; banner adds an L line.
    The control file goes first (as CUPS's lpd backend and LPRng send it), or last with
    data_first (as BSD lpr does). The data streams from disk in 1 MiB chunks (progress(n) after
    each is on its way). job_number
    (0-999) is random when not given. Raises LpdError.
    """
    check_queue_name(queue)
    number = random.randrange(len(JOB_NUMBERS)) if job_number is None else job_number
    control = ControlFile.for_job(
        job_number=number,
        host=host_name,
        user=user,
        job_name=job_name,
        title=title,
        source_name=source_name,
        file_type=file_type,
        copies=copies,
        banner=banner,
    )
    try:
        document = await asyncio.to_thread(data.open, "rb")
    except OSError as exc:
        raise LpdError(f"cannot read the document {data}: {exc.strerror}", "NO_DOCUMENT") from exc
    try:
        size = os.fstat(document.fileno()).st_size
        async with _connect(host, port, timeout) as link:
            await link.send(bytes([RECEIVE_JOB]) + queue.encode("ascii") + b"\n")
            await link.ack(f"refused queue {queue!r}", "QUEUE_REFUSED")
            if not data_first:
                await _send_control(link, control, number, host_name)
            await _send_data(link, control.files[0].name, document, size, number, progress)
            if data_first:
                await _send_control(link, control, number, host_name)
            await link.finish()
    finally:
        await asyncio.to_thread(document.close)
    return number


async def queue_state(
    host: str,
    port: int,
    queue: str,
    long: bool = False,
    items: Sequence[str | int] = (),
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  (per step, not a deadline for the whole job)
) -> str:
    """The queue's state as the server words it ("send queue state", short or long), optionally
    only for the given job numbers or user names."""
    check_queue_name(queue)
    command = SEND_QUEUE_LONG if long else SEND_QUEUE_SHORT
    line = bytes([command]) + " ".join([queue, *_words(items)]).encode("ascii") + b"\n"
    async with _connect(host, port, timeout) as link:
        await link.send(line)
        answer = await link.read_to_end(STATE_LIMIT)
    return answer.decode("utf-8", "replace")


async def remove_jobs(
    host: str,
    port: int,
    queue: str,
    agent: str,
    jobs: Sequence[str | int] = (),
    *,
    timeout: float = 30.0,  # noqa: ASYNC109  (per step, not a deadline for the whole job)
) -> None:
    """Removes jobs (job numbers or user names; none: the agent's current job) as agent."""
    check_queue_name(queue)
    words = _words([agent, *jobs])
    line = bytes([REMOVE_JOBS]) + " ".join([queue, *words]).encode("ascii") + b"\n"
    async with _connect(host, port, timeout) as link:
        await link.send(line)
        answer = await link.read_to_end(STATE_LIMIT)
    # RFC 1179 defines no answer; cups-lpd sends one status octet, BSD lpd sends text.
    if len(answer) == 1 and answer != b"\x00":
        raise LpdError(
            f"the printer at {link.where} refused to remove jobs {' '.join(words[1:]) or '(current)'} "
            f"from queue {queue!r} for {agent!r} (negative acknowledgement {answer[0]})",
            "REMOVE_REFUSED",
        )


def _words(items: Sequence[str | int]) -> list[str]:
    words = [str(item) for item in items]
    for word in words:
        if not _WORD.fullmatch(word):
            raise LpdError(f"{word!r} cannot go on an LPD command line", "BAD_JOB")
    return words


async def _send_control(link: _Link, control: ControlFile, number: int, host_name: str) -> None:
    body = control.encode()
    name = control_file_name(number, host_name)
    await link.send(b"%c%d %s\n" % (SUB_CONTROL_FILE, len(body), name.encode("ascii")))
    await link.ack(f"refused the control file of job {number}", "CONTROL_FILE_REFUSED")
    await link.send(body + b"\x00")
    await link.ack(f"did not take the control file of job {number}", "CONTROL_FILE_REFUSED")


async def _send_data(
    link: _Link,
    name: str,
    document: BinaryIO,
    size: int,
    number: int,
    progress: Callable[[int], None] | None,
) -> None:
    await link.send(b"%c%d %s\n" % (SUB_DATA_FILE, size, name.encode("ascii")))
    what = f"refused the data file of job {number}"
    await link.ack(what, "DATA_FILE_REFUSED")
    left = size
    while left > 0:
        chunk = await asyncio.to_thread(document.read, min(CHUNK, left))
        if not chunk:
            raise LpdError(
                f"the document of job {number} shrank while it was being sent "
                f"({size - left} of {size} bytes)",
                "NO_DOCUMENT",
            )
        await link.send(chunk, refused=(what, "DATA_FILE_REFUSED"))
        left -= len(chunk)
        if progress is not None:
            progress(len(chunk))
    await link.send(b"\x00", refused=(what, "DATA_FILE_REFUSED"))
    await link.ack(f"did not take the data file of job {number}", "DATA_FILE_REFUSED")


class _Link:
    """One LPD connection; every step bounded by timeout, every failure an LpdError."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.where = where
        self.timeout = timeout

    async def send(self, data: bytes, refused: tuple[str, str] | None = None) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except TimeoutError as exc:
            raise self._timeout("to take more data") from exc
        except OSError as exc:
            # A server that refuses a file may say so and hang up while it is still coming.
            if refused is not None:
                with contextlib.suppress(OSError, TimeoutError):
                    said = await asyncio.wait_for(self.reader.read(1), 0.5)
                    if said and said != b"\x00":
                        raise self._nack(refused[0], refused[1], said[0]) from exc
            raise self._lost(exc) from exc

    async def ack(self, refusal: str, reason: str) -> None:
        """Reads the one-octet acknowledgement: zero, or LpdError(reason)."""
        try:
            answer = await asyncio.wait_for(self.reader.read(1), self.timeout)
        except TimeoutError as exc:
            raise self._timeout("to acknowledge") from exc
        except OSError as exc:
            raise self._lost(exc) from exc
        if not answer:
            raise LpdError(
                f"the printer at {self.where} closed the connection instead of acknowledging",
                "CONNECTION_LOST",
            )
        if answer != b"\x00":
            raise self._nack(refusal, reason, answer[0])

    async def read_to_end(self, limit: int) -> bytes:
        answer = bytearray()
        try:
            while len(answer) < limit:
                chunk = await asyncio.wait_for(self.reader.read(65536), self.timeout)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError as exc:
            raise self._timeout("to answer") from exc
        except OSError as exc:
            raise self._lost(exc) from exc
        return bytes(answer[:limit])

    async def finish(self) -> None:
        """Ends the job: closes our side and gives the server a moment to take the job."""
        with contextlib.suppress(OSError):
            self.writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(min(self.timeout, CLOSE_WAIT)):
                while await self.reader.read(65536):
                    pass

    def _nack(self, refusal: str, reason: str, code: int) -> LpdError:
        return LpdError(
            f"the printer at {self.where} {refusal} (negative acknowledgement {code})", reason
        )

    def _timeout(self, doing: str) -> LpdError:
        return LpdError(
            f"the printer at {self.where} took more than {self.timeout:g} s {doing}", "TIMEOUT"
        )

    def _lost(self, exc: OSError) -> LpdError:
        why = exc.strerror or type(exc).__name__
        return LpdError(
            f"the connection to the printer at {self.where} broke: {why}", "CONNECTION_LOST"
        )


def _refused(exc: OSError) -> bool:
    """Whether every address of the host refused (asyncio joins the errors of several)."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    errnos = re.findall(r"\[Errno (\d+)\]", str(exc))
    return bool(errnos) and all(int(n) == errno.ECONNREFUSED for n in errnos)


@contextlib.asynccontextmanager
async def _connect(
    host: str,
    port: int,
    timeout: float,  # noqa: ASYNC109
) -> AsyncIterator[_Link]:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError as exc:
        raise LpdError(
            f"the printer at {where} did not answer within {timeout:g} s", "TIMEOUT"
        ) from exc
    except socket.gaierror as exc:
        raise LpdError(f"cannot find the printer {host}: {exc.strerror}", "UNKNOWN_HOST") from exc
    except OSError as exc:
        if not _refused(exc):
            raise LpdError(
                f"cannot reach the printer at {where}: {exc.strerror or exc}", "UNREACHABLE"
            ) from exc
        raise LpdError(
            f"the printer at {where} refused the connection (nothing listens on port {port})",
            "CONNECTION_REFUSED",
        ) from exc
    try:
        yield _Link(reader, writer, where, timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
