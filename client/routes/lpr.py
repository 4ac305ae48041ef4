"""LPR (RFC 1179) to a node or straight to a printer: the owner is the logged-in login."""

from __future__ import annotations

import socket
from collections.abc import Callable

from printfabric.lpd import LpdError, send_job

from client.errors import ClientError, NotFound, Refused, Unreachable
from client.progress import Attempt
from client.routes.base import Delivered, PrintJob, Route, with_retries

# LpdError reasons from a server that answered (anything else: it could not be reached).
_REFUSALS = {"QUEUE_REFUSED": NotFound}
_ANSWERED = frozenset(
    {"QUEUE_REFUSED", "CONTROL_FILE_REFUSED", "DATA_FILE_REFUSED", "BAD_QUEUE_NAME", "NO_DOCUMENT"}
)


async def send_lpr(
    route: Route, login: str, job: PrintJob, advance: Callable[[int], None]
) -> Delivered:
    """Sends job to route's LPD queue; the job number the server took it under.

    LPD has no idempotency key: a server keeps a job only once all of it arrived (our node does
    so), and a send that broke off is sent again whole.
    """
    notes = []
    if job.duplex or job.mono:
        notes.append("LPR carries no duplex or colour choice: set them at the printer")

    async def attempt() -> int:
        step = Attempt(advance)
        try:
            return await send_job(
                route.host,
                route.port,
                route.queue,
                job.document.path,
                user=login,
                host_name=socket.gethostname().split(".")[0][:31] or "workstation",
                job_name=job.title,
                title=job.title,
                source_name=job.document.name,
                copies=job.copies,
                progress=step,
            )
        except LpdError as exc:
            step.rewind()
            reason = exc.reason
            if reason == "NO_DOCUMENT":
                raise ClientError(str(exc), reason) from exc
            if reason in _ANSWERED:
                raise _REFUSALS.get(reason, Refused)(f"{route.uri}: {exc}", reason) from exc
            raise Unreachable(f"{route.uri}: {exc}", reason) from exc

    number = await with_retries(f"sending {job.document.name} to {route.uri}", attempt)
    return Delivered(route=route.uri, lpd_job_number=number, notes=notes)
