"""The local IPP printer object: what each operation does with the durable queue.

Nothing here talks to the cloud: jobs are taken into the local queue (whole, or not at all) and
the forwarder sends them on. The printer describes itself as the cloud queue it forwards to
(`printfabric.ipp.everywhere`), except that it needs no login: it only listens on loopback, and
whoever prints here prints as the logged-in user.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from printfabric.ipp import Attribute, Message, Status
from printfabric.ipp import everywhere as attrs
from printfabric.ipp.printer_object import PrinterObject
from printfabric.ipp.server import IppFailure, response
from printfabric.v1 import device_pb2

from client.serve_printer import intake, job_view
from client.serve_printer.description import Destination
from client.serve_printer.queue import JobQueue, JobState, LocalJob
from client.serve_printer.request import Request
from client.serve_printer.status import Link

log = logging.getLogger(__name__)


class LocalPrinter(PrinterObject[Request, LocalJob]):
    """The one printer of serve-printer, whose jobs are the local queue's."""

    def __init__(self, queue: JobQueue, destination: Destination, link: Link) -> None:
        super().__init__()
        self.queue = queue
        self.destination = destination
        self.link = link

    async def perform(
        self, handler: Callable[[Request], Awaitable[Message]], req: Request
    ) -> Message:
        """Runs one operation; a queue folder that cannot keep a job is an IPP answer too."""
        try:
            return await handler(req)
        except OSError as exc:
            # The queue folder cannot take the job (a full disk, most likely): nothing was kept.
            log.error("cannot keep a job in the queue folder: %s", exc)
            raise IppFailure(
                Status.SERVER_ERROR_INTERNAL_ERROR,
                f"cannot keep the job on this computer: {exc.strerror or exc}",
            ) from exc

    @property
    def _printer(self) -> device_pb2.Printer:
        return self.destination.description.printer()

    # Printer ------------------------------------------------------------------------------

    async def printer_attributes(self, req: Request) -> list[Attribute]:
        """Every attribute of this printer: the cloud queue's, as a local printer."""
        destination = self.destination
        printer = self._printer
        local_uuid = uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"printfabric-local:{destination.company}:{destination.login}:{printer.name}",
        )
        return attrs.printer_attributes(
            printer,
            sum(1 for j in self.queue.jobs.values() if not j.final),
            destination.company,
            req.target.printer_uri,
            req.target.more_info,
            req.target.web_base,
            # Loopback only, and the local user is the logged-in user: nobody to ask.
            authentication="none",
            printer_uuid=local_uuid.urn,
            info=f"{printer.display_name or printer.name} (PrintFabric)",
            state_message=self.link.message,
        )

    async def identify_printer(self, req: Request) -> Message:
        req.check_identify_actions()
        log.info(
            "Identify-Printer: this is the PrintFabric printer for %s (%s)",
            self._printer.name,
            req.text("message", "no message"),
        )
        return response(req.message, Status.SUCCESSFUL_OK)

    # Jobs in ------------------------------------------------------------------------------

    async def validate_job(self, req: Request) -> Message:
        intake.check_job(req, self._printer)
        return response(req.message, self._ok(req))

    async def print_job(self, req: Request) -> Message:
        chosen = intake.check_job(req, self._printer)
        mime, chunks = await intake.read_document(req, self._printer)
        job = intake.new_job(req, self._printer, chosen, JobState.QUEUED)
        job.format = mime
        async with self.queue.part() as part:
            async for chunk in chunks:
                await part.write(chunk)
            await self.queue.add(job, part)
        return self._job_reply(req, job)

    async def create_job(self, req: Request) -> Message:
        chosen = intake.check_job(req, self._printer)
        job = await self.queue.add(
            intake.new_job(req, self._printer, chosen, JobState.INCOMING), None
        )
        return self._job_reply(req, job)

    async def send_document(self, req: Request) -> Message:
        last = req.last_document()
        job = await self.find_job(req)
        if job.state is not JobState.INCOMING:
            first = await anext(req.body, b"")
            return self._document_again(req, job, job.id, first, last)
        mime, chunks = await intake.read_document(req, self._printer)
        if req.text("document-name"):
            job.document_name = req.text("document-name")[:255]
        async with self.queue.part() as part:
            async for chunk in chunks:
                await part.write(chunk)
            if not await self.queue.attach(job, part, mime):
                # Closed, canceled or timed out while its document came.
                raise IppFailure(Status.CLIENT_ERROR_NOT_POSSIBLE, f"job {job.id} is {job.state}")
        return self._job_reply(req, job)

    def job_attributes(
        self,
        req: Request,
        job: LocalJob,
        requested: list[str] | None,
        default: tuple[str, ...] = ("all",),
    ) -> list[Attribute]:
        return job_view.job_attributes(
            job,
            self.link,
            self.queue.sending == job.id,
            req.target.printer_uri,
            requested,
            default,
        )

    # Jobs out -----------------------------------------------------------------------------

    async def find_job(self, req: Request) -> LocalJob:
        number = req.job_number()
        job = self.queue.get(number)
        if job is None:
            raise IppFailure(Status.CLIENT_ERROR_NOT_FOUND, f"job {number} does not exist")
        return job

    async def get_jobs(self, req: Request) -> Message:
        which = req.which_jobs()
        limit = req.limit()
        jobs = [
            j
            for j in sorted(self.queue.jobs.values(), key=lambda j: j.id)
            if j.final == (which == "completed")
        ]
        if req.value("my-jobs", False) is True:
            user = req.text("requesting-user-name").casefold()
            jobs = [j for j in jobs if j.user.casefold() == user]
        return self._jobs_reply(req, jobs[:limit])

    def _why_not_cancel(self, job: LocalJob) -> str | None:
        """Why job cannot be canceled here, or None if it can."""
        if job.state is JobState.COMPLETED:
            number = job.cloud_number
            return (
                f"job {job.id} is already in PrintFabric as job {number} on {job.printer}: "
                f"cancel it there with `printfabric cancel {number}`"
            )
        if job.final:
            return f"job {job.id} is already {job.state}"
        if self.queue.sending == job.id or job.sent:
            return (
                f"job {job.id} is being sent to PrintFabric (or is there already): cancel it "
                "with `printfabric cancel N` once `printfabric jobs` lists it"
            )
        return None

    async def cancel_job(self, req: Request) -> Message:
        job = await self.find_job(req)
        why = self._why_not_cancel(job)
        if why is not None:
            raise IppFailure(Status.CLIENT_ERROR_NOT_POSSIBLE, why)
        await self.queue.finish(job, JobState.CANCELED, "canceled on this computer")
        return response(req.message, Status.SUCCESSFUL_OK)

    async def cancel_my_jobs(self, req: Request) -> Message:
        user = req.text("requesting-user-name").casefold()
        mine = [j for j in self.queue.jobs.values() if not j.final and j.user.casefold() == user]
        wanted = req.job_ids(j.id for j in mine)
        if wanted is not None:
            mine = [j for j in mine if j.id in wanted]
        for job in mine:
            why = self._why_not_cancel(job)
            if why is not None and wanted is not None:
                raise IppFailure(Status.CLIENT_ERROR_NOT_POSSIBLE, why)
            if why is None:
                await self.queue.finish(job, JobState.CANCELED, "canceled on this computer")
        return response(req.message, Status.SUCCESSFUL_OK)

    async def close_job(self, req: Request) -> Message:
        job = await self.find_job(req)
        if job.state is JobState.INCOMING:
            # Closed with no document: nothing to print.
            await self.queue.finish(job, JobState.CANCELED, "closed without a document")
        return response(req.message, Status.SUCCESSFUL_OK)
