"""IPPS to the gateway: one Print-Job with the access token and the job's idempotency key."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from printfabric.ipp import (
    Attribute,
    IppClient,
    IppError,
    IppHttpError,
    Message,
    Operation,
    Status,
    Tag,
    new_request,
)

from client.api import Account, transport_error
from client.errors import ClientError, DocumentError, LoginRequired, NotFound, Refused
from client.progress import Attempt
from client.routes.base import Delivered, PrintJob, with_retries

_DOCUMENT_STATUSES = frozenset(
    {
        Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
        Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
        Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR,
        Status.CLIENT_ERROR_DOCUMENT_UNPRINTABLE_ERROR,
        Status.CLIENT_ERROR_COMPRESSION_ERROR,
    }
)
_REFUSED_STATUSES = frozenset(
    {
        Status.CLIENT_ERROR_FORBIDDEN,
        Status.CLIENT_ERROR_NOT_AUTHORIZED,
        Status.CLIENT_ERROR_NOT_POSSIBLE,
        Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
        Status.CLIENT_ERROR_ACCOUNT_LIMIT_REACHED,
    }
)


def print_job_request(uri: str, login: str, job: PrintJob) -> Message:
    """The Print-Job request (RFC 8011 4.2.1) for job, sent as login."""
    request = new_request(Operation.PRINT_JOB, uri, user=login)
    op = request.operation_attributes
    op.add(Attribute.name_("job-name", job.title))
    op.add(Attribute.name_("document-name", job.document.name))
    op.add(Attribute.mime_type("document-format", job.document.mime))
    template = request.add_group(Tag.JOB)
    if job.copies != 1:
        template.add(Attribute.integer("copies", job.copies))
    if job.duplex:
        template.add(Attribute.keyword("sides", "two-sided-long-edge"))
    if job.mono:
        template.add(Attribute.keyword("print-color-mode", "monochrome"))
    if job.media:
        template.add(Attribute.keyword("media", job.media))
    return request


def ipp_failure(reply: Message) -> ClientError | None:
    """The error an IPP answer reports, or None when it is a success."""
    if reply.code < 0x0400:
        return None
    message_attr = reply.operation_attributes.get("status-message")
    said = str(message_attr.value) if message_attr is not None else ""
    try:
        name = Status(reply.code).name.lower().replace("_", "-")
    except ValueError:
        name = f"0x{reply.code:04x}"
    text = f"{said} ({name})" if said else name
    if reply.code in _DOCUMENT_STATUSES:
        return DocumentError(text)
    if reply.code == Status.CLIENT_ERROR_NOT_FOUND:
        return NotFound(text)
    if reply.code in _REFUSED_STATUSES:
        return Refused(text)
    return ClientError(text)


async def send_ipps(
    account: Account, uri: str, job: PrintJob, advance: Callable[[int], None]
) -> Delivered:
    """Prints job at the gateway's printer uri; the cloud's job, fetched after it is taken."""

    async def attempt(token: str) -> int:
        step = Attempt(advance)
        headers = {"Authorization": f"Bearer {token}"}
        if job.request_id:
            headers["Idempotency-Key"] = job.request_id
        request = print_job_request(uri, account.session.login, job)
        try:
            async with IppClient(uri, ssl_context=account.ssl, headers=headers, timeout=120) as ipp:
                reply = await ipp.request(request, job.document.chunks(step))
        except IppHttpError as exc:
            step.rewind()
            if exc.status_code == 401:
                raise LoginRequired(
                    "the gateway did not take the login", "UNAUTHENTICATED"
                ) from exc
            raise ClientError(f"the gateway answered HTTP {exc.status_code}") from exc
        except httpx.HTTPError as exc:
            step.rewind()
            raise transport_error(exc, uri) from exc
        except IppError as exc:
            raise ClientError(f"the gateway's answer is not IPP: {exc}") from exc
        failure = ipp_failure(reply)
        if failure is not None:
            raise failure
        group = reply.group(Tag.JOB)
        job_id = group.get("job-id") if group is not None else None
        if job_id is None:
            raise ClientError("the gateway took the job but did not say its number")
        return int(job_id.value)  # type: ignore[arg-type]

    number = await with_retries(f"sending {job.document.name}", lambda: account.authorized(attempt))
    return Delivered(route=uri, job=await account.job(str(number)))
