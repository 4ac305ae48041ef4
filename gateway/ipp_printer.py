"""The IPP printer object of a queue: operations in, gRPC calls to the cloud out.

What does not depend on the cloud (the RFC 8011 section 4.1 checks, the dispatch, the answers)
is printfabric.ipp's, shared with the workstation's local printer. Documents stream straight
into SpoolService.SubmitJob; nothing is kept here.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from printfabric.formats import FORMATS
from printfabric.ipp import Attribute, Message, Operation, Status, Tag, job_template
from printfabric.ipp import everywhere as attrs
from printfabric.ipp.compression import check_compression, decompressed
from printfabric.ipp.printer_object import PrinterObject
from printfabric.ipp.server import IppFailure, OperationRequest, PrinterAddress, response
from printfabric.mfp.errors import REASON_KEY, metadata_value
from printfabric.request_body import prepend
from printfabric.v1 import spool_pb2

from gateway.upstream import QueueInfo, TokenRefused, Upstream, UserSession

log = logging.getLogger(__name__)

# Documents go to the cloud in messages of at most this size (the gRPC limit is 8 MiB).
CHUNK = 1 << 20
# Operations anyone may call before logging in (driverless set-up needs the printer's
# description); everything else asks for HTTP Basic credentials or a bearer token.
ANONYMOUS = frozenset({Operation.GET_PRINTER_ATTRIBUTES})
# The operations whose job an Idempotency-Key names (the spool's request_id, per owner).
_IDEMPOTENT = frozenset({Operation.PRINT_JOB, Operation.CREATE_JOB})
IDEMPOTENCY_KEY_MAX = 128
_REQUEST_ID_MAX = 128
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,4096}")
# What the cloud answers for an access token it does not accept for a person printing.
_TOKEN_REFUSED = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)

# The cloud's refusal reasons that have an IPP status of their own.
_REASONS = {
    "DOCUMENT_FORMAT_NOT_SUPPORTED": Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
    "JOB_TOO_LARGE": Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
    "EMPTY_DOCUMENT": Status.CLIENT_ERROR_BAD_REQUEST,
    "UNKNOWN_QUEUE": Status.CLIENT_ERROR_NOT_FOUND,
    "UNKNOWN_JOB": Status.CLIENT_ERROR_NOT_FOUND,
    "JOB_FINAL": Status.CLIENT_ERROR_NOT_POSSIBLE,
    "JOB_NOT_INCOMING": Status.CLIENT_ERROR_NOT_POSSIBLE,
}
_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: Status.CLIENT_ERROR_BAD_REQUEST,
    grpc.StatusCode.NOT_FOUND: Status.CLIENT_ERROR_NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: Status.CLIENT_ERROR_NOT_AUTHORIZED,
    grpc.StatusCode.FAILED_PRECONDITION: Status.CLIENT_ERROR_NOT_POSSIBLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
    grpc.StatusCode.ALREADY_EXISTS: Status.CLIENT_ERROR_NOT_POSSIBLE,
    grpc.StatusCode.UNAVAILABLE: Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
}


class NeedAuth(Exception):
    """The operation needs a login: the HTTP layer answers 401 with a Basic challenge (a
    Bearer one when the request came with a token)."""


@dataclass(frozen=True)
class Target(PrinterAddress):
    """Which queue a request is for, and how the client reached it."""

    company: str
    queue: str


@dataclass
class Request(OperationRequest):
    target: Target
    credentials: tuple[str, str] | None
    user_agent: str = ""
    user: UserSession | None = None
    # An access token (Authorization: Bearer), instead of credentials.
    bearer: str = field(default="", repr=False)
    # The Idempotency-Key header as sent (None: absent).
    idempotency_key: str | None = None


def rpc_failure(exc: grpc.aio.AioRpcError) -> IppFailure | NeedAuth:
    """The IPP answer to a refusal from the cloud."""
    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        return NeedAuth()
    reason = metadata_value(exc, REASON_KEY)
    status = _REASONS.get(reason) or _CODES.get(exc.code(), Status.SERVER_ERROR_INTERNAL_ERROR)
    if status is Status.SERVER_ERROR_INTERNAL_ERROR:
        log.error("cloud call failed: %s %s", exc.code(), exc.details())
    return IppFailure(status, exc.details() or "the cloud refused the request")


class IppPrinter(PrinterObject[Request, spool_pb2.Job]):
    """The printer object of every queue; raises NeedAuth when credentials are wanted."""

    def __init__(self, upstream: Upstream) -> None:
        super().__init__()
        self.upstream = upstream

    async def perform(
        self, handler: Callable[[Request], Awaitable[Message]], req: Request
    ) -> Message:
        """Logs in first (but for ANONYMOUS operations); a refusal from the cloud becomes its
        IPP answer, or NeedAuth."""
        try:
            if req.message.code not in ANONYMOUS:
                await self._authenticate(req)
            return await handler(req)
        except grpc.aio.AioRpcError as exc:
            failure = rpc_failure(exc)
            if isinstance(failure, NeedAuth) and req.user is not None:
                self.upstream.forget(req.user)
            raise failure from exc

    async def _authenticate(self, req: Request) -> None:
        if req.bearer:
            req.user = await self._token_user(req)
            return
        if req.credentials is None:
            raise NeedAuth()
        login, password = req.credentials
        try:
            req.user = await self.upstream.login(req.target.company, login, password)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise NeedAuth() from exc
            raise

    async def _token_user(self, req: Request) -> UserSession:
        """The user of an access token, refused (401) like a wrong password."""
        if not _TOKEN_SHAPE.fullmatch(req.bearer):
            raise NeedAuth()  # gRPC metadata carries printable ASCII only: no token of ours
        try:
            user = await self.upstream.token_session(req.bearer)
        except TokenRefused as exc:
            raise NeedAuth() from exc
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _TOKEN_REFUSED:
                raise NeedAuth() from exc
            raise
        if user.company_code.upper() != req.target.company.upper():
            # A token of another tenant than the printer's: as wrong as a password would be.
            raise NeedAuth()
        return user

    # Printer ------------------------------------------------------------------------------

    async def _queue(self, req: Request) -> QueueInfo:
        try:
            info = await self.upstream.describe(req.target.company, req.target.queue)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise IppFailure(
                    Status.CLIENT_ERROR_NOT_FOUND, f"there is no queue {req.target.queue}"
                ) from exc
            raise
        return info

    async def printer_attributes(self, req: Request) -> list[Attribute]:
        queue = await self._queue(req)
        return attrs.printer_attributes(
            queue.printer,
            queue.queued_job_count,
            req.target.company,
            req.target.printer_uri,
            req.target.more_info,
            req.target.web_base,
        )

    async def identify_printer(self, req: Request) -> Message:
        await self._queue(req)
        req.check_identify_actions()
        log.info("Identify-Printer for %s/%s", req.target.company, req.target.queue)
        return response(req.message, Status.SUCCESSFUL_OK)

    # Jobs in ------------------------------------------------------------------------------

    def _job_header(self, req: Request, queue: QueueInfo) -> spool_pb2.JobHeader:
        """The spool header of a Print-Job, Validate-Job or Create-Job; checks what it asks."""
        job_group = req.message.group(Tag.JOB)
        template = {a.name: a for a in job_group.attributes} if job_group else {}
        fidelity = bool(req.value("ipp-attribute-fidelity", False))
        fmt = self._format(req, queue)
        check_compression(req.text("compression", "none"))
        options = spool_pb2.JobOptions(copies=1)
        for attr in template.values():
            if not job_template.apply(options, attr, queue.printer):
                req.unsupported.append(attr)
        if req.unsupported and fidelity:
            raise IppFailure(
                Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"{req.unsupported[0].name} is not supported as asked",
            )
        title = req.value("job-name") or req.value("document-name") or ""
        return spool_pb2.JobHeader(
            printer=req.target.queue,
            title=str(title)[:512],
            format=fmt,  # type: ignore[arg-type]
            options=options,
            origin=f"IPP {req.user_agent}".strip()[:256],
            size_hint=0,
            request_id=_request_id(req),
        )

    def _format(self, req: Request, queue: QueueInfo) -> int:
        mime = str(req.value("document-format", "application/octet-stream")).lower()
        fmt = FORMATS.get(mime)
        supported = {m.lower() for m in attrs.queue_formats(queue.printer)}
        if fmt is None or mime not in supported:
            raise IppFailure(
                Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                f"document-format {mime} is not supported by this queue",
                [Attribute.mime_type("document-format", mime)],
            )
        return fmt

    async def validate_job(self, req: Request) -> Message:
        queue = await self._queue(req)
        self._job_header(req, queue)
        return response(req.message, self._ok(req))

    async def print_job(self, req: Request) -> Message:
        queue = await self._queue(req)
        header = self._job_header(req, queue)
        job = await self._submit(req, header)
        return self._job_reply(req, job)

    async def create_job(self, req: Request) -> Message:
        queue = await self._queue(req)
        header = self._job_header(req, queue)
        assert req.user is not None
        job = await self.upstream.create_job(req.user, header)
        return self._job_reply(req, job)

    async def send_document(self, req: Request) -> Message:
        last = req.last_document()
        job = await self.find_job(req)
        first = await anext(req.body, b"")
        if job.state != spool_pb2.JOB_STATE_INCOMING:
            return self._document_again(req, job, job.number, first, last)
        queue = await self._queue(req)
        fmt = self._format(req, queue)
        check_compression(req.text("compression", "none"))
        header = spool_pb2.JobHeader(
            printer=req.target.queue,
            title=job.title,
            format=fmt,  # type: ignore[arg-type]
            options=job.options,
            job_id=job.job_id,
            origin=f"IPP {req.user_agent}".strip()[:256],
        )
        req.body = prepend(first, req.body)
        done = await self._submit(req, header)
        return self._job_reply(req, done)

    async def _submit(self, req: Request, header: spool_pb2.JobHeader) -> spool_pb2.Job:
        assert req.user is not None
        compression = check_compression(req.text("compression", "none"))
        chunks = _rechunk(decompressed(req.body, compression))
        return await self.upstream.submit(req.user, header, chunks)

    def job_attributes(
        self,
        req: Request,
        job: spool_pb2.Job,
        requested: list[str] | None,
        default: tuple[str, ...] = ("all",),
    ) -> list[Attribute]:
        return attrs.job_attributes(job, req.target.printer_uri, requested, default)

    # Jobs out -----------------------------------------------------------------------------

    async def find_job(self, req: Request) -> spool_pb2.Job:
        number = req.job_number()
        assert req.user is not None
        job = await self.upstream.find_job(req.user, number)
        if job is None or job.printer_name != req.target.queue:
            raise IppFailure(Status.CLIENT_ERROR_NOT_FOUND, f"job {number} does not exist")
        return job

    async def get_jobs(self, req: Request) -> Message:
        assert req.user is not None
        which = req.which_jobs()
        states = {"not-completed": attrs.OPEN_STATES, "completed": attrs.DONE_STATES}[which]
        limit = req.limit()
        my_jobs = req.value("my-jobs", False) is True
        jobs = await self.upstream.list_jobs(req.user, req.target.queue, states, min(limit, 1000))
        if my_jobs:
            jobs = [j for j in jobs if j.owner_login.casefold() == req.user.login.casefold()]
        if which == "completed":
            # Final jobs stay visible for the tenant's retention period, then drop out.
            now = int(time.time())
            jobs = [j for j in jobs if not j.HasField("expire_time") or j.expire_time.seconds > now]
        return self._jobs_reply(req, jobs)

    async def cancel_job(self, req: Request) -> Message:
        job = await self.find_job(req)
        assert req.user is not None
        await self.upstream.cancel(req.user, job.job_id)
        return response(req.message, Status.SUCCESSFUL_OK)

    async def cancel_my_jobs(self, req: Request) -> Message:
        assert req.user is not None
        jobs = await self.upstream.list_jobs(req.user, req.target.queue, attrs.OPEN_STATES, 1000)
        jobs = [j for j in jobs if j.owner_login.casefold() == req.user.login.casefold()]
        wanted = req.job_ids(j.number for j in jobs)
        if wanted is not None:
            jobs = [j for j in jobs if j.number in wanted]
        for job in jobs:
            await self.upstream.cancel(req.user, job.job_id)
        return response(req.message, Status.SUCCESSFUL_OK)

    async def close_job(self, req: Request) -> Message:
        job = await self.find_job(req)
        assert req.user is not None
        if job.state == spool_pb2.JOB_STATE_INCOMING:
            # Closed with no document: nothing to print.
            await self.upstream.cancel(req.user, job.job_id)
        return response(req.message, Status.SUCCESSFUL_OK)


def _request_id(req: Request) -> str:
    """The spool request_id an Idempotency-Key gives a Print-Job or Create-Job ("" without).

    The cloud keeps one job per owner and request_id, so a job sent again after a network
    drop returns the first job instead of making a second.
    """
    key = req.idempotency_key
    if key is None:
        return ""
    if not (1 <= len(key) <= IDEMPOTENCY_KEY_MAX and all(" " <= c <= "~" for c in key)):
        raise IppFailure(
            Status.CLIENT_ERROR_BAD_REQUEST,
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters",
        )
    if req.message.code not in _IDEMPOTENT:
        return ""
    if len(key) > _REQUEST_ID_MAX - len("ipp:"):
        # The spool keeps request ids of up to 128 characters: a longer key goes as its hash
        # (request ids are per owner, so a collision could only ever be with one's own job).
        return "ipp:#" + hashlib.sha256(key.encode("ascii")).hexdigest()
    return f"ipp:{key}"


async def _rechunk(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Gathers small HTTP chunks into messages of up to CHUNK bytes (fewer gRPC messages)."""
    pending: list[bytes] = []
    size = 0
    async for chunk in chunks:
        while chunk:
            take = chunk[: CHUNK - size]
            chunk = chunk[len(take) :]
            pending.append(take)
            size += len(take)
            if size >= CHUNK // 4:
                yield b"".join(pending)
                pending, size = [], 0
    if pending:
        yield b"".join(pending)
