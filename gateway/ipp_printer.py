"""The IPP printer object of a queue: operations in, gRPC calls to the cloud out.

Validation follows RFC 8011 section 4.1 in order (version, request-id, the operation group
with attributes-charset then attributes-natural-language, printer-uri) so that every bad
request gets the status the conformance suites expect. Documents stream straight into
SpoolService.SubmitJob; nothing is kept here.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from printfabric.formats import FORMATS
from printfabric.ipp import (
    Attribute,
    AttributeGroup,
    Message,
    Operation,
    Status,
    StringWithLanguage,
    Tag,
)
from printfabric.ipp import everywhere as attrs
from printfabric.v1 import spool_pb2

from gateway.upstream import QueueInfo, TokenRefused, Upstream, UserSession, prepend

log = logging.getLogger(__name__)

SUPPORTED_MAJORS = (1, 2)
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


class IppFailure(Exception):
    """Ends an operation with an IPP status (and, for bad attributes, the unsupported group)."""

    def __init__(
        self, status: Status, message: str, unsupported: list[Attribute] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.unsupported = unsupported or []


class NeedAuth(Exception):
    """The operation needs a login: the HTTP layer answers 401 with a Basic challenge (a
    Bearer one when the request came with a token)."""


@dataclass(frozen=True)
class Target:
    """Which queue a request is for, and how the client reached it."""

    company: str
    queue: str
    printer_uri: str
    more_info: str
    # https://host:port of the gateway as the client reached it.
    web_base: str


@dataclass
class Request:
    message: Message
    target: Target
    # What followed the attributes: the document, if any.
    body: AsyncIterator[bytes]
    credentials: tuple[str, str] | None
    user_agent: str = ""
    user: UserSession | None = None
    # An access token (Authorization: Bearer), instead of credentials.
    bearer: str = field(default="", repr=False)
    # The Idempotency-Key header as sent (None: absent).
    idempotency_key: str | None = None
    unsupported: list[Attribute] = field(default_factory=list)

    @property
    def op(self) -> AttributeGroup:
        group = self.message.group(Tag.OPERATION)
        assert group is not None
        return group

    def value(self, name: str, default: object = None) -> object:
        """The first value of an operation attribute (the text of a string with language)."""
        attr = self.op.get(name)
        if attr is None or not attr.values:
            return default
        value = attr.values[0]
        return value.text if isinstance(value, StringWithLanguage) else value


def rpc_failure(exc: grpc.aio.AioRpcError) -> IppFailure | NeedAuth:
    """The IPP answer to a refusal from the cloud."""
    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
        return NeedAuth()
    reason = ""
    for key, value in exc.trailing_metadata() or ():
        if key == "pf-error-reason":
            reason = str(value)
    status = _REASONS.get(reason) or _CODES.get(exc.code(), Status.SERVER_ERROR_INTERNAL_ERROR)
    if status is Status.SERVER_ERROR_INTERNAL_ERROR:
        log.error("cloud call failed: %s %s", exc.code(), exc.details())
    return IppFailure(status, exc.details() or "the cloud refused the request")


def response(
    request: Message | None, status: Status, message: str = "", version: tuple[int, int] = (1, 1)
) -> Message:
    """A response with the operation group every IPP response starts with."""
    reply = Message(
        version=version,
        code=int(status),
        request_id=request.request_id if request else 0,
        groups=[],
    )
    group = reply.add_group(Tag.OPERATION)
    group.add(Attribute.charset("attributes-charset", "utf-8"))
    group.add(Attribute.natural_language("attributes-natural-language", "en"))
    if message:
        group.add(Attribute.text("status-message", message[:255]))
    return reply


def check_envelope(message: Message) -> None:
    """RFC 8011 section 4.1: version, request-id and the operation group's first attributes."""
    if message.version[0] not in SUPPORTED_MAJORS:
        raise IppFailure(
            Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
            f"IPP/{message.version[0]}.{message.version[1]} is not supported; use 1.1 or 2.0",
        )
    if message.request_id <= 0:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "request-id must be 1 or more")
    group = message.groups[0] if message.groups else None
    if group is None or group.tag != Tag.OPERATION or not group.attributes:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "the operation attributes are missing")
    names = [a.name for a in group.attributes]
    if names[:2] != ["attributes-charset", "attributes-natural-language"]:
        raise IppFailure(
            Status.CLIENT_ERROR_BAD_REQUEST,
            "attributes-charset and then attributes-natural-language must come first",
        )
    if len(set(names)) != len(names):
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "an operation attribute is repeated")
    charset = group.attributes[0]
    if charset.tag != Tag.CHARSET or len(charset.values) != 1:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "attributes-charset must be one charset")
    if str(charset.values[0]).lower() not in ("utf-8", "us-ascii"):
        raise IppFailure(
            Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
            f"charset {charset.values[0]!s} is not supported; use utf-8",
            [charset],
        )
    language = group.attributes[1]
    if language.tag != Tag.NATURAL_LANGUAGE or len(language.values) != 1:
        raise IppFailure(
            Status.CLIENT_ERROR_BAD_REQUEST, "attributes-natural-language must be one language"
        )
    uri = group.get("printer-uri")
    if uri is None or uri.tag != Tag.URI or len(uri.values) != 1:
        job_uri = group.get("job-uri")
        if job_uri is None or job_uri.tag != Tag.URI:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "printer-uri is missing")


class IppPrinter:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._ops: dict[int, Callable[[Request], Awaitable[Message]]] = {
            Operation.PRINT_JOB: self.print_job,
            Operation.VALIDATE_JOB: self.validate_job,
            Operation.CREATE_JOB: self.create_job,
            Operation.SEND_DOCUMENT: self.send_document,
            Operation.CANCEL_JOB: self.cancel_job,
            Operation.GET_JOB_ATTRIBUTES: self.get_job_attributes,
            Operation.GET_JOBS: self.get_jobs,
            Operation.GET_PRINTER_ATTRIBUTES: self.get_printer_attributes,
            Operation.CANCEL_MY_JOBS: self.cancel_my_jobs,
            Operation.CLOSE_JOB: self.close_job,
            Operation.IDENTIFY_PRINTER: self.identify_printer,
        }

    async def handle(self, req: Request) -> Message:
        """The response to one request; raises NeedAuth when credentials are wanted."""
        msg = req.message
        version = msg.version if msg.version[0] in SUPPORTED_MAJORS else (1, 1)
        try:
            check_envelope(msg)
            handler = self._ops.get(msg.code)
            if handler is None:
                raise IppFailure(
                    Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                    f"operation 0x{msg.code:04x} is not supported by this printer",
                )
            if msg.code not in ANONYMOUS:
                await self._authenticate(req)
            reply = await handler(req)
        except IppFailure as exc:
            reply = response(msg, exc.status, exc.message, version)
            req.unsupported.extend(exc.unsupported)
        except grpc.aio.AioRpcError as exc:
            failure = rpc_failure(exc)
            if isinstance(failure, NeedAuth):
                if req.user is not None:
                    self.upstream.forget(req.user)
                raise failure from exc
            reply = response(msg, failure.status, failure.message, version)
        reply.version = version
        if req.unsupported:
            group = AttributeGroup(Tag.UNSUPPORTED, [])
            for attr in req.unsupported:
                group.add(attr)
            reply.groups.insert(1, group)
        return reply

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

    async def get_printer_attributes(self, req: Request) -> Message:
        queue = await self._queue(req)
        everything = attrs.printer_attributes(
            queue.printer,
            queue.queued_job_count,
            req.target.company,
            req.target.printer_uri,
            req.target.more_info,
            req.target.web_base,
        )
        chosen = attrs.select_printer_attributes(everything, _keywords(req, "requested-attributes"))
        reply = response(req.message, Status.SUCCESSFUL_OK)
        group = reply.add_group(Tag.PRINTER)
        for a in chosen:
            group.add(a)
        return reply

    async def identify_printer(self, req: Request) -> Message:
        await self._queue(req)
        actions = _keywords(req, "identify-actions") or ["display"]
        bad = [a for a in actions if a != "display"]
        if bad:
            raise IppFailure(
                Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"identify-actions {bad[0]} is not supported",
                [Attribute.keyword("identify-actions", *bad)],
            )
        log.info("Identify-Printer for %s/%s", req.target.company, req.target.queue)
        return response(req.message, Status.SUCCESSFUL_OK)

    # Jobs in ------------------------------------------------------------------------------

    def _job_header(self, req: Request, queue: QueueInfo) -> spool_pb2.JobHeader:
        """The spool header of a Print-Job, Validate-Job or Create-Job; checks what it asks."""
        job_group = req.message.group(Tag.JOB)
        template = {a.name: a for a in job_group.attributes} if job_group else {}
        fidelity = bool(req.value("ipp-attribute-fidelity", False))
        fmt = self._format(req, queue)
        self._compression(req)
        options = spool_pb2.JobOptions(copies=1)
        for name, attr in template.items():
            if not _apply(name, attr, options, queue):
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

    def _compression(self, req: Request) -> str:
        value = str(req.value("compression", "none"))
        if value not in ("none", "deflate", "gzip"):
            raise IppFailure(
                Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
                f"compression {value} is not supported",
                [Attribute.keyword("compression", value)],
            )
        return value

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
        last = req.op.get("last-document")
        if last is None or last.tag != Tag.BOOLEAN or len(last.values) != 1:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "last-document is missing")
        job = await self._job(req)
        first = await anext(req.body, b"")
        if job.state != spool_pb2.JOB_STATE_INCOMING:
            if not first and last.values[0] is True:
                return self._job_reply(req, job)  # closes a job that has its one document
            raise IppFailure(
                Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                f"job {job.number} already has its document; a job holds one document",
            )
        queue = await self._queue(req)
        fmt = self._format(req, queue)
        self._compression(req)
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
        chunks = _rechunk(_decompress(req.body, self._compression(req)))
        return await self.upstream.submit(req.user, header, chunks)

    def _ok(self, req: Request) -> Status:
        return (
            Status.SUCCESSFUL_OK_IGNORED_OR_SUBSTITUTED_ATTRIBUTES
            if req.unsupported
            else Status.SUCCESSFUL_OK
        )

    def _job_reply(self, req: Request, job: spool_pb2.Job) -> Message:
        reply = response(req.message, self._ok(req))
        group = reply.add_group(Tag.JOB)
        for a in attrs.job_attributes(
            job,
            req.target.printer_uri,
            ["job-id", "job-uri", "job-state", "job-state-reasons", "job-state-message"],
        ):
            group.add(a)
        return reply

    # Jobs out -----------------------------------------------------------------------------

    async def _job(self, req: Request) -> spool_pb2.Job:
        number = self._job_number(req)
        assert req.user is not None
        job = await self.upstream.find_job(req.user, number)
        if job is None or job.printer_name != req.target.queue:
            raise IppFailure(Status.CLIENT_ERROR_NOT_FOUND, f"job {number} does not exist")
        return job

    def _job_number(self, req: Request) -> int:
        job_id = req.op.get("job-id")
        if job_id is not None:
            if job_id.tag != Tag.INTEGER or len(job_id.values) != 1:
                raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "job-id must be one integer")
            return int(job_id.values[0])  # type: ignore[arg-type]
        job_uri = req.op.get("job-uri")
        if job_uri is not None and job_uri.tag == Tag.URI and job_uri.values:
            tail = str(job_uri.values[0]).rstrip("/").rpartition("/")[2]
            if tail.isdigit():
                return int(tail)
            raise IppFailure(Status.CLIENT_ERROR_NOT_FOUND, f"{job_uri.values[0]!s} is not a job")
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "job-id or job-uri is missing")

    async def get_job_attributes(self, req: Request) -> Message:
        job = await self._job(req)
        reply = response(req.message, Status.SUCCESSFUL_OK)
        group = reply.add_group(Tag.JOB)
        for a in attrs.job_attributes(
            job, req.target.printer_uri, _keywords(req, "requested-attributes")
        ):
            group.add(a)
        return reply

    async def get_jobs(self, req: Request) -> Message:
        assert req.user is not None
        which = str(req.value("which-jobs", "not-completed"))
        states = {"not-completed": attrs.OPEN_STATES, "completed": attrs.DONE_STATES}.get(which)
        if states is None:
            raise IppFailure(
                Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"which-jobs {which} is not supported",
                [Attribute.keyword("which-jobs", which)],
            )
        limit = req.value("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "limit must be a positive integer")
        my_jobs = req.value("my-jobs", False) is True
        jobs = await self.upstream.list_jobs(req.user, req.target.queue, states, min(limit, 1000))
        if my_jobs:
            jobs = [j for j in jobs if j.owner_login.casefold() == req.user.login.casefold()]
        if which == "completed":
            # Final jobs stay visible for the tenant's retention period, then drop out.
            now = int(time.time())
            jobs = [j for j in jobs if not j.HasField("expire_time") or j.expire_time.seconds > now]
        requested = _keywords(req, "requested-attributes")
        reply = response(req.message, Status.SUCCESSFUL_OK)
        for job in jobs:
            group = reply.add_group(Tag.JOB)
            for a in attrs.job_attributes(
                job, req.target.printer_uri, requested, default=("job-id", "job-uri")
            ):
                group.add(a)
        return reply

    async def cancel_job(self, req: Request) -> Message:
        job = await self._job(req)
        assert req.user is not None
        await self.upstream.cancel(req.user, job.job_id)
        return response(req.message, Status.SUCCESSFUL_OK)

    async def cancel_my_jobs(self, req: Request) -> Message:
        assert req.user is not None
        ids = req.op.get("job-ids")
        jobs = await self.upstream.list_jobs(req.user, req.target.queue, attrs.OPEN_STATES, 1000)
        jobs = [j for j in jobs if j.owner_login.casefold() == req.user.login.casefold()]
        if ids is not None:
            wanted = {int(v) for v in ids.values if isinstance(v, int)}
            missing = wanted - {j.number for j in jobs}
            if missing:
                raise IppFailure(
                    Status.CLIENT_ERROR_NOT_POSSIBLE,
                    f"job {min(missing)} is not one of your open jobs",
                    [Attribute.integer("job-ids", *sorted(missing))],
                )
            jobs = [j for j in jobs if j.number in wanted]
        for job in jobs:
            await self.upstream.cancel(req.user, job.job_id)
        return response(req.message, Status.SUCCESSFUL_OK)

    async def close_job(self, req: Request) -> Message:
        job = await self._job(req)
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


def _keywords(req: Request, name: str) -> list[str] | None:
    attr = req.op.get(name)
    if attr is None:
        return None
    return [str(v) for v in attr.values]


def _apply(name: str, attr: Attribute, options: spool_pb2.JobOptions, queue: QueueInfo) -> bool:
    """Takes one job template attribute into the options; False if it is not supported."""
    values = attr.values
    if len(values) != 1:
        return False
    value = values[0]
    printer = queue.printer
    if name == "copies":
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if not 1 <= value <= attrs.COPIES_MAX:
            return False
        options.copies = value
        return True
    if name == "sides":
        allowed = attrs.SIDES_ALL if printer.duplex else attrs.SIDES_ALL[:1]
        if value not in allowed:
            return False
        options.duplex = value != "one-sided"
        return True
    if name == "print-color-mode":
        allowed = attrs.COLOR_MODES if printer.color else ("monochrome",)
        if value not in allowed:
            return False
        options.mono = value == "monochrome"
        return True
    if name == "media":
        if value not in attrs.MEDIA:
            return False
        options.media = str(value)
        return True
    if name == "media-col":
        return True  # the size is what matters and the printer picks from its trays
    simple: dict[str, tuple[object, ...]] = {
        "print-quality": attrs.QUALITIES,
        "orientation-requested": attrs.ORIENTATIONS,
        "finishings": (3,),
        "output-bin": ("face-down",),
        "print-scaling": attrs.SCALINGS,
        "print-content-optimize": ("auto",),
        "number-up": (1,),
        "job-sheets": ("none",),
        "multiple-document-handling": ("separate-documents-uncollated-copies",),
    }
    if name in simple:
        return value in simple[name]
    if name == "printer-resolution":
        return any(
            getattr(value, "x", None) == r and getattr(value, "y", None) == r
            for r in attrs.RESOLUTIONS
        )
    return False


async def _decompress(chunks: AsyncIterator[bytes], compression: str) -> AsyncIterator[bytes]:
    if compression == "none":
        async for chunk in chunks:
            yield chunk
        return
    # IPP "deflate" is raw RFC 1951 data (no zlib header); "gzip" is RFC 1952.
    inflater = zlib.decompressobj(wbits=31 if compression == "gzip" else -15)
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                # Bounded output per step: a small bomb cannot blow up memory here.
                out = inflater.decompress(data, CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
        tail = inflater.flush()
        if tail:
            yield tail
        if not inflater.eof:
            raise IppFailure(
                Status.CLIENT_ERROR_COMPRESSION_ERROR, "the compressed data ends early"
            )
    except zlib.error as exc:
        raise IppFailure(
            Status.CLIENT_ERROR_COMPRESSION_ERROR, f"the {compression} data is corrupt: {exc}"
        ) from exc


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
