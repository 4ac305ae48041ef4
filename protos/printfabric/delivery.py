"""Sends a spooled job to a printer named by its device URI (lpd, socket, ipp/ipps, file).

`deliver` is what the cloud (direct queues) and a node (released jobs) call for each job:

- `lpd://host[:port]/queue` (port 515): RFC 1179 with P = the owner's login, J and N = the
  title, H = this host; `?format=o` sends another data-file type than `l` (raw),
  `?banner=on` asks for a banner page, `?order=data,control` sends the data file first.
- `socket://host[:port]` (port 9100): the bytes as they are, then our side closed; the
  printer closing its side says it took them.
- `ipp://` / `ipps://host[:port]/path` (port 631): Print-Job as the owner, in the document's
  format if the printer lists it, else application/octet-stream; retried while the printer
  answers busy; then the job is followed until it is completed, canceled or aborted.
  Credentials in the URI (`ipps://user:password@host/...`) go out as HTTP Basic.
- `file:///folder`: the job is written into the folder (see printfabric.folder).

Every failure is one DeliveryError with a message a person can act on and an UPPER_SNAKE reason.
Nothing here logs or shows a password from a URI.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import re
import socket
import ssl
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import httpx

from printfabric.folder import FolderError, deliver_to_folder, folder_target
from printfabric.ipp import (
    Attribute,
    IppClient,
    IppError,
    IppHttpError,
    JobState,
    Message,
    Operation,
    Status,
    Tag,
    new_request,
)
from printfabric.lpd import DEFAULT_PORT as LPD_PORT
from printfabric.lpd import LpdError, send_job

__all__ = ["DeliveryError", "DeliveryJob", "DeliveryResult", "deliver", "public_uri"]

SOCKET_PORT = 9100
CHUNK = 1 << 20
# A printer closes its side once it has taken the job; one that keeps the connection open has
# still received every byte, so after this long we close it ourselves.
CLOSE_WAIT = 10.0
OCTET_STREAM = "application/octet-stream"
# IPP answers that mean "not now": retried with backoff until the timeout.
_BUSY = {Status.SERVER_ERROR_BUSY, Status.SERVER_ERROR_SERVICE_UNAVAILABLE}
# IPP status -> our reason; anything else that is not a success is PRINTER_REFUSED.
_IPP_REASONS = {
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED: "DOCUMENT_FORMAT_NOT_SUPPORTED",
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR: "DOCUMENT_FORMAT_ERROR",
    Status.CLIENT_ERROR_FORBIDDEN: "NOT_AUTHORIZED",
    Status.CLIENT_ERROR_NOT_AUTHENTICATED: "NOT_AUTHORIZED",
    Status.CLIENT_ERROR_NOT_AUTHORIZED: "NOT_AUTHORIZED",
    Status.CLIENT_ERROR_NOT_FOUND: "NO_SUCH_PRINTER",
    Status.SERVER_ERROR_NOT_ACCEPTING_JOBS: "PRINTER_NOT_ACCEPTING",
    Status.SERVER_ERROR_BUSY: "PRINTER_BUSY",
    Status.SERVER_ERROR_SERVICE_UNAVAILABLE: "PRINTER_BUSY",
}
_HTTP_REASONS = {401: "NOT_AUTHORIZED", 403: "NOT_AUTHORIZED", 404: "NO_SUCH_PRINTER"}
_ENDED = {JobState.COMPLETED, JobState.CANCELED, JobState.ABORTED}


class DeliveryError(Exception):
    """A job could not be delivered; `message` says why in a person's words, `reason` is an
    UPPER_SNAKE code (UNSUPPORTED_DEVICE_URI, BAD_DEVICE_URI, NO_DOCUMENT, SIZE_MISMATCH,
    PRINTER_UNREACHABLE, CONNECTION_REFUSED, CONNECTION_LOST, TIMEOUT, PRINTER_REFUSED,
    PRINTER_BUSY, NOT_AUTHORIZED, UNTRUSTED_CERTIFICATE, DOCUMENT_FORMAT_NOT_SUPPORTED, JOB_ABORTED, JOB_CANCELED, the
    LpdError and FolderError reasons, ...)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class DeliveryJob:
    """What the printer is told about the job: our job number, title, owner's login, the
    document's MIME type, and its size in bytes (None: not checked)."""

    number: int
    title: str
    owner_login: str
    document_format: str = OCTET_STREAM
    size: int | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What happened: `message` for people ("Printed on lpd://host/q"), the device URI without
    credentials, the bytes sent, and where the printer has them: its job id and final state
    (IPP), or the file written (file://)."""

    device_uri: str
    message: str
    bytes_sent: int
    printer_job_id: int | None = None
    printer_job_state: str | None = None
    path: Path | None = None


async def deliver(
    device_uri: str,
    data: Path,
    job: DeliveryJob,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109  (per step and per wait, not one deadline)
    verify_tls: bool | ssl.SSLContext = False,
    host_name: str | None = None,
) -> DeliveryResult:
    """Sends the document data of job to the printer at device_uri; raises DeliveryError.

    timeout bounds each step (connecting, an acknowledgement, a response, a write making
    progress), and also how long an IPP printer may answer busy and then take to finish the
    job. verify_tls applies to ipps://: False (the default) accepts any certificate, because
    printers on a LAN carry self-signed ones (CUPS trusts them on first use too); True checks
    it against the system's CAs; an SSLContext is used as given. host_name goes on LPD's H
    line (default: this machine's name).
    """
    uri = public_uri(device_uri)
    parts = urlsplit(device_uri)
    size = _document_size(data, job)
    if parts.scheme == "lpd":
        return await _deliver_lpd(parts, uri, data, job, size, timeout, host_name)
    if parts.scheme == "socket":
        return await _deliver_socket(parts, uri, data, size, timeout)
    if parts.scheme in ("ipp", "ipps"):
        return await _IppDelivery(device_uri, uri, data, job, size, timeout, verify_tls).run()
    if parts.scheme == "file":
        return await _deliver_folder(device_uri, uri, data, job, size)
    raise DeliveryError(
        f"cannot print to {uri}: PrintFabric sends jobs to lpd://, socket://, ipp://, ipps:// "
        "and file:// printers",
        "UNSUPPORTED_DEVICE_URI",
    )


def public_uri(device_uri: str) -> str:
    """device_uri without user name and password, fit for messages and logs."""
    parts = urlsplit(device_uri)
    if "@" not in parts.netloc:
        return device_uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _document_size(data: Path, job: DeliveryJob) -> int:
    try:
        size = data.stat().st_size
    except OSError as exc:
        raise DeliveryError(
            f"the document of job {job.number} is gone from the spool ({exc.strerror})",
            "NO_DOCUMENT",
        ) from exc
    if job.size is not None and size != job.size:
        raise DeliveryError(
            f"the document of job {job.number} has {size} bytes in the spool, not {job.size}",
            "SIZE_MISMATCH",
        )
    return size


def _host_port(parts: Any, uri: str, default_port: int) -> tuple[str, int]:
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise DeliveryError(f"{uri} has no valid port number", "BAD_DEVICE_URI") from exc
    if not parts.hostname:
        raise DeliveryError(f"{uri} names no printer host", "BAD_DEVICE_URI")
    return str(parts.hostname), int(port)


# --- lpd:// ------------------------------------------------------------------------------


async def _deliver_lpd(
    parts: Any,
    uri: str,
    data: Path,
    job: DeliveryJob,
    size: int,
    timeout: float,  # noqa: ASYNC109
    host_name: str | None,
) -> DeliveryResult:
    host, port = _host_port(parts, uri, LPD_PORT)
    queue = unquote(parts.path.lstrip("/"))
    if not queue:
        raise DeliveryError(f"{uri} names no queue (lpd://host/queue)", "BAD_DEVICE_URI")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        await send_job(
            host,
            port,
            queue,
            data,
            user=job.owner_login,
            host_name=host_name or socket.gethostname(),
            job_name=job.title,
            source_name=job.title,
            file_type=query.get("format", "l"),
            banner=query.get("banner", "off").lower() in ("on", "yes", "true"),
            data_first=query.get("order", "control,data") == "data,control",
            job_number=job.number % 1000,
            timeout=timeout,
        )
    except LpdError as exc:
        raise DeliveryError(exc.message, exc.reason) from exc
    return DeliveryResult(uri, f"Printed on {uri}", size)


# --- socket:// ---------------------------------------------------------------------------


async def _deliver_socket(
    parts: Any,
    uri: str,
    data: Path,
    size: int,
    timeout: float,  # noqa: ASYNC109
) -> DeliveryResult:
    host, port = _host_port(parts, uri, SOCKET_PORT)
    where = f"the printer at {host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError as exc:
        raise DeliveryError(f"{where} did not answer within {timeout:g} s", "TIMEOUT") from exc
    except OSError as exc:
        raise _unreachable(where, exc) from exc
    sent = 0
    try:
        async with contextlib.aclosing(_chunks(data, size)) as chunks:
            async for chunk in chunks:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), timeout)
                sent += len(chunk)
        writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(timeout, CLOSE_WAIT)):
                while await reader.read(65536):  # a back channel (status, PJL) is not kept
                    pass
    except TimeoutError as exc:
        raise DeliveryError(
            f"{where} took no data for {timeout:g} s ({sent} of {size} bytes sent)", "TIMEOUT"
        ) from exc
    except OSError as exc:
        raise DeliveryError(
            f"the connection to {where} broke after {sent} of {size} bytes: "
            f"{exc.strerror or type(exc).__name__}",
            "CONNECTION_LOST",
        ) from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return DeliveryResult(uri, f"Printed on {uri}", sent)


def _unreachable(where: str, exc: BaseException) -> DeliveryError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"{where} presented a certificate that is not trusted ({exc.verify_message}); "
            "deliver with verify_tls=False to accept a printer's self-signed certificate",
            "UNTRUSTED_CERTIFICATE",
        )
    if isinstance(exc, socket.gaierror):
        return DeliveryError(f"cannot find {where}: {exc.strerror}", "PRINTER_UNREACHABLE")
    # asyncio joins the errors of a host's several addresses into one OSError.
    errnos = {int(n) for n in re.findall(r"\[Errno (\d+)\]", str(exc))}
    if isinstance(exc, ConnectionRefusedError) or errnos == {errno.ECONNREFUSED}:
        return DeliveryError(f"{where} refused the connection", "CONNECTION_REFUSED")
    return DeliveryError(f"cannot reach {where}: {_why(exc)}", "PRINTER_UNREACHABLE")


async def _chunks(data: Path, size: int) -> AsyncGenerator[bytes, None]:
    """The first size bytes of data, 1 MiB at a time, read in a worker thread."""
    try:
        fh = await asyncio.to_thread(data.open, "rb")
    except OSError as exc:
        raise DeliveryError(f"cannot read {data}: {exc.strerror}", "NO_DOCUMENT") from exc
    try:
        left = size
        while left > 0:
            chunk = await asyncio.to_thread(fh.read, min(CHUNK, left))
            if not chunk:
                raise DeliveryError(f"{data} shrank while it was being sent", "NO_DOCUMENT")
            left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(fh.close)


# --- file:// -----------------------------------------------------------------------------


async def _deliver_folder(
    device_uri: str, uri: str, data: Path, job: DeliveryJob, size: int
) -> DeliveryResult:
    try:
        folder = folder_target(device_uri)
        assert folder is not None  # the scheme is file
        path = await asyncio.to_thread(deliver_to_folder, data, folder, job.number, job.title)
    except FolderError as exc:
        raise DeliveryError(exc.message, exc.reason) from exc
    return DeliveryResult(uri, f"Printed on {uri} as {path.name}", size, path=path)


# --- ipp:// and ipps:// ------------------------------------------------------------------


def _tls_context(verify_tls: bool | ssl.SSLContext) -> ssl.SSLContext:
    if isinstance(verify_tls, ssl.SSLContext):
        return verify_tls
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _IppDelivery:
    """One job to one IPP printer: check the format, Print-Job (again while busy), follow it."""

    def __init__(
        self,
        device_uri: str,
        uri: str,
        data: Path,
        job: DeliveryJob,
        size: int,
        timeout: float,
        verify_tls: bool | ssl.SSLContext,
    ) -> None:
        parts = urlsplit(device_uri)
        _host_port(parts, uri, 631)
        self.uri = uri  # the printer-uri we send: no credentials in IPP attributes
        self.data = data
        self.job = job
        self.size = size
        self.timeout = timeout
        self.where = f"the printer at {uri}"
        self.client = IppClient(
            uri,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            ssl_context=_tls_context(verify_tls),
            timeout=timeout,
        )

    async def run(self) -> DeliveryResult:
        async with self.client:
            document_format = await self._document_format()
            job_id = await self._print(document_format)
            state, detail = await self._follow(job_id)
        keyword = state.name.lower()
        if state != JobState.COMPLETED:
            raise DeliveryError(
                f"{self.where} {'aborted' if state == JobState.ABORTED else 'canceled'} "
                f"job {job_id}" + (f": {detail}" if detail else ""),
                f"JOB_{state.name}",
            )
        return DeliveryResult(
            self.uri,
            f"Printed on {self.uri} (printer job {job_id}, {keyword})",
            self.size,
            printer_job_id=job_id,
            printer_job_state=keyword,
        )

    async def _document_format(self) -> str:
        request = self._request(Operation.GET_PRINTER_ATTRIBUTES)
        request.operation_attributes.add(
            Attribute.keyword("requested-attributes", "document-format-supported")
        )
        reply = await self._call(request, "Get-Printer-Attributes", time.monotonic())
        supported = {str(v).lower() for v in _values(reply, "document-format-supported")}
        wanted = self.job.document_format
        return wanted if wanted.lower() in supported else OCTET_STREAM

    async def _print(self, document_format: str) -> int:
        request = self._request(Operation.PRINT_JOB)
        group = request.operation_attributes
        title = self.job.title or f"job {self.job.number}"
        group.add(Attribute.name_("job-name", _cut(title, 255)))
        group.add(Attribute.boolean("ipp-attribute-fidelity", False))
        group.add(Attribute.mime_type("document-format", document_format))
        reply = await self._call(request, "the job", time.monotonic(), document=True)
        job_id = next(iter(_values(reply, "job-id")), None)
        if not isinstance(job_id, int):
            raise DeliveryError(f"{self.where} accepted the job but gave no job-id", "BAD_RESPONSE")
        return job_id

    async def _follow(self, job_id: int) -> tuple[JobState, str]:
        """Polls Get-Job-Attributes until the job ends; (final state, message or reasons)."""
        deadline = time.monotonic() + self.timeout
        pause = 0.05
        while True:
            request = self._request(Operation.GET_JOB_ATTRIBUTES)
            group = request.operation_attributes
            group.add(Attribute.integer("job-id", job_id))
            group.add(
                Attribute.keyword(
                    "requested-attributes", "job-state", "job-state-reasons", "job-state-message"
                )
            )
            reply = await self._call(request, f"a question about job {job_id}", time.monotonic())
            state = _job_state(next(iter(_values(reply, "job-state")), 0))
            if state is not None and state in _ENDED:
                message = " ".join(str(v) for v in _values(reply, "job-state-message"))
                reasons = ", ".join(str(v) for v in _values(reply, "job-state-reasons"))
                return state, message or reasons
            if time.monotonic() + pause > deadline:
                now = state.name.lower().replace("_", "-") if state is not None else "unknown"
                reasons = ", ".join(str(v) for v in _values(reply, "job-state-reasons"))
                raise DeliveryError(
                    f"{self.where} accepted job {job_id} but it did not finish within "
                    f"{self.timeout:g} s (it is {now}" + (f": {reasons})" if reasons else ")"),
                    "TIMEOUT",
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _request(self, operation: Operation) -> Message:
        return new_request(operation, self.uri, user=_cut(self.job.owner_login, 255))

    async def _call(
        self, request: Message, what: str, started: float, *, document: bool = False
    ) -> Message:
        """One request; repeated with backoff while the printer is busy, up to the timeout."""
        pause = 0.1
        while True:
            reply = await self._exchange(request, what, document)
            status = Status.SERVER_ERROR_SERVICE_UNAVAILABLE if reply is None else reply.status
            if status.is_success and reply is not None:
                return reply
            waited = time.monotonic() - started
            if status not in _BUSY or waited + pause > self.timeout:
                detail = " ".join(str(v) for v in _values(reply, "status-message"))
                busy = f" for {waited:.1f} s" if status in _BUSY else ""
                raise DeliveryError(
                    f"{self.where} refused {what}{busy}: {status.keyword} (0x{status.value:04x})"
                    + (f", {detail}" if detail else ""),
                    _IPP_REASONS.get(status, "PRINTER_REFUSED"),
                )
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, 2.0)

    async def _exchange(self, request: Message, what: str, document: bool) -> Message | None:
        """The printer's answer; None for HTTP 503 (busy); DeliveryError for the rest."""
        body = _chunks(self.data, self.size) if document else None
        try:
            return await self.client.request(request, body)
        except IppHttpError as exc:
            if exc.status_code == 503:
                return None
            reason = _HTTP_REASONS.get(exc.status_code, "PRINTER_REFUSED")
            raise DeliveryError(
                f"{self.where} refused {what}: HTTP {exc.status_code}", reason
            ) from exc
        except IppError as exc:
            raise DeliveryError(
                f"{self.where} gave an answer that is not IPP: {exc}", "BAD_RESPONSE"
            ) from exc
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"{self.where} did not answer within {self.timeout:g} s", "TIMEOUT"
            ) from exc
        except httpx.ConnectError as exc:
            raise _unreachable(self.where, _cause(exc)) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"the connection to {self.where} broke: {_why(_cause(exc))}", "CONNECTION_LOST"
            ) from exc
        finally:
            if body is not None:
                await body.aclose()  # closes the spool file even when the request failed


def _values(reply: Message | None, name: str) -> list[Any]:
    if reply is None:
        return []
    for group in reply.groups:
        if group.tag in (Tag.OPERATION, Tag.JOB, Tag.PRINTER):
            attr = group.get(name)
            if attr is not None:
                return list(attr.values)
    return []


def _job_state(value: object) -> JobState | None:
    if isinstance(value, int) and value in JobState._value2member_map_:
        return JobState(value)
    return None


def _cut(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _cause(exc: BaseException) -> BaseException:
    """The innermost exception behind a transport error (the OSError of a failed connect)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__
