"""Taking a job in: the checks of Print-Job, Validate-Job and Create-Job (format, compression,
job template), and the document as it arrives (decompressed, typed by its first bytes)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from printfabric.formats import FORMAT_MIME, FORMATS
from printfabric.ipp import Attribute, Status, Tag
from printfabric.ipp import everywhere as attrs
from printfabric.ipp.compression import check_compression, decompressed
from printfabric.ipp.server import IppFailure
from printfabric.v1 import device_pb2, spool_pb2

from client.serve_printer import ticket
from client.serve_printer.queue import JobState, LocalJob, new_request_id
from client.serve_printer.request import Request
from client.serve_printer.stream import detected_mime, sniff

NOT_SUPPORTED_HINT = "print it as PDF"


def check_job(req: Request, printer: device_pb2.Printer) -> spool_pb2.JobOptions:
    """The ticket of a Print-Job, Validate-Job or Create-Job; checks what the request asks.

    Unsupported job template attributes go to req.unsupported (an error with fidelity)."""
    document_format(req, printer)
    compression(req)
    job_group = req.message.group(Tag.JOB)
    chosen = spool_pb2.JobOptions(copies=1)
    for attr in job_group.attributes if job_group else []:
        if not ticket.apply(chosen, attr, printer):
            req.unsupported.append(attr)
    if req.unsupported and req.value("ipp-attribute-fidelity", False) is True:
        raise IppFailure(
            Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            f"{req.unsupported[0].name} is not supported as asked",
        )
    return chosen


def _supported(printer: device_pb2.Printer) -> set[str]:
    return {m.lower() for m in attrs.queue_formats(printer)}


def document_format(req: Request, printer: device_pb2.Printer) -> str:
    """The document-format asked for (application/octet-stream: told by the bytes)."""
    mime = req.text("document-format", "application/octet-stream").lower()
    if mime not in FORMATS or mime not in _supported(printer):
        raise IppFailure(
            Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
            f"document-format {mime} is not supported by {printer.name}; {NOT_SUPPORTED_HINT}",
            [Attribute.mime_type("document-format", mime)],
        )
    return mime


def compression(req: Request) -> str:
    return check_compression(req.text("compression", "none"))


def new_job(
    req: Request, printer: device_pb2.Printer, chosen: spool_pb2.JobOptions, state: JobState
) -> LocalJob:
    """The local job a request makes (its id is given when the queue takes it)."""
    title = req.text("job-name") or req.text("document-name") or "Untitled"
    return LocalJob(
        id=0,
        request_id=new_request_id(),
        printer=printer.name,
        title=title[:255],
        document_name=(req.text("document-name") or title)[:255],
        user=req.text("requesting-user-name")[:255],
        create_time=time.time(),
        copies=chosen.copies,
        duplex=chosen.duplex,
        mono=chosen.mono,
        media=chosen.media,
        state=state,
    )


async def read_document(
    req: Request, printer: device_pb2.Printer
) -> tuple[str, AsyncIterator[bytes]]:
    """(the document's MIME type, its bytes): decompressed, and typed from its first bytes when
    sent as application/octet-stream."""
    mime = document_format(req, printer)
    chunks = decompressed(req.body, compression(req))
    head, chunks = await sniff(chunks)
    if not head:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "the document is empty")
    if mime == "application/octet-stream":
        found = detected_mime(head)
        if found is None or found.lower() not in _supported(printer):
            raise IppFailure(
                Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                f"the document is {found or 'of no format this printer knows'}, which "
                f"{printer.name} does not take; {NOT_SUPPORTED_HINT}",
                [Attribute.mime_type("document-format", mime)],
            )
        mime = found
    return FORMAT_MIME.get(FORMATS[mime.lower()], mime), chunks
