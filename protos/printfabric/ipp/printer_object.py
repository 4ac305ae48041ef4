"""The IPP printer object (RFC 8011): the operations it answers and the parts of them that do
not depend on where its jobs go.

The gateway's printer of a cloud queue and the workstation's local printer (`printfabric
serve-printer`) subclass PrinterObject; each says how it finds, keeps and describes its jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from printfabric.ipp import everywhere
from printfabric.ipp.constants import Status, Tag
from printfabric.ipp.model import Attribute, AttributeGroup, Message
from printfabric.ipp.server import (
    SUPPORTED_MAJORS,
    IppFailure,
    OperationRequest,
    check_envelope,
    response,
)

R = TypeVar("R", bound=OperationRequest)
J = TypeVar("J")


class PrinterObject(ABC, Generic[R, J]):
    """Answers requests of type R about jobs of type J.

    It does the operations it advertises (everywhere.OPERATIONS, operations-supported) by the
    method named after each: print_job for Print-Job. A subclass defines those this class does
    not, and the abstract methods below.
    """

    def __init__(self) -> None:
        # A method missing here fails now (AttributeError), not at the first request for it.
        self._ops: dict[int, Callable[[R], Awaitable[Message]]] = {
            int(op): getattr(self, op.name.lower()) for op in everywhere.OPERATIONS
        }

    async def handle(self, req: R) -> Message:
        """The response to one request: an IppFailure becomes an IPP answer."""
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
            reply = await self.perform(handler, req)
        except IppFailure as exc:
            reply = response(msg, exc.status, exc.message, version)
            req.unsupported.extend(exc.unsupported)
        reply.version = version
        if req.unsupported:
            group = AttributeGroup(Tag.UNSUPPORTED, [])
            for attr in req.unsupported:
                group.add(attr)
            reply.groups.insert(1, group)
        return reply

    async def perform(self, handler: Callable[[R], Awaitable[Message]], req: R) -> Message:
        """Runs one operation; a subclass wraps it (a login first, its errors as IppFailure)."""
        return await handler(req)

    # What a subclass says -------------------------------------------------------------------

    @abstractmethod
    async def printer_attributes(self, req: R) -> list[Attribute]:
        """Every attribute of the printer the request reached."""

    @abstractmethod
    def job_attributes(
        self, req: R, job: J, requested: list[str] | None, default: tuple[str, ...] = ("all",)
    ) -> list[Attribute]:
        """The attributes of job that requested (else default) names."""

    @abstractmethod
    async def find_job(self, req: R) -> J:
        """The job a request names (OperationRequest.job_number); IppFailure if there is none."""

    # The same for every printer -------------------------------------------------------------------

    async def get_printer_attributes(self, req: R) -> Message:
        everything = await self.printer_attributes(req)
        chosen = everywhere.select_printer_attributes(
            everything, req.keywords("requested-attributes")
        )
        reply = response(req.message, Status.SUCCESSFUL_OK)
        group = reply.add_group(Tag.PRINTER)
        for a in chosen:
            group.add(a)
        return reply

    async def get_job_attributes(self, req: R) -> Message:
        job = await self.find_job(req)
        reply = response(req.message, Status.SUCCESSFUL_OK)
        group = reply.add_group(Tag.JOB)
        for a in self.job_attributes(req, job, req.keywords("requested-attributes")):
            group.add(a)
        return reply

    def _ok(self, req: R) -> Status:
        return (
            Status.SUCCESSFUL_OK_IGNORED_OR_SUBSTITUTED_ATTRIBUTES
            if req.unsupported
            else Status.SUCCESSFUL_OK
        )

    def _job_reply(self, req: R, job: J) -> Message:
        reply = response(req.message, self._ok(req))
        group = reply.add_group(Tag.JOB)
        for a in self.job_attributes(
            req,
            job,
            ["job-id", "job-uri", "job-state", "job-state-reasons", "job-state-message"],
        ):
            group.add(a)
        return reply

    def _jobs_reply(self, req: R, jobs: Iterable[J]) -> Message:
        """The answer to Get-Jobs: a job group for each job."""
        requested = req.keywords("requested-attributes")
        reply = response(req.message, Status.SUCCESSFUL_OK)
        for job in jobs:
            group = reply.add_group(Tag.JOB)
            for a in self.job_attributes(req, job, requested, default=("job-id", "job-uri")):
                group.add(a)
        return reply

    def _document_again(self, req: R, job: J, number: int, first: bytes, last: bool) -> Message:
        """Send-Document to a job that has its document: a job holds one, so only an empty
        last document (which just closes the job) is taken."""
        if not first and last:
            return self._job_reply(req, job)
        raise IppFailure(
            Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
            f"job {number} already has its document; a job holds one document",
        )
