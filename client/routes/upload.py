"""Upload to storage: a short-lived URL from the cloud, an HTTP PUT of the file, then commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from client.api import TIMEOUT, Account, http_error, transport_error
from client.errors import Refused
from client.progress import Attempt
from client.routes.base import Delivered, PrintJob, with_retries

# The cloud reads a committed upload back (hash, format, pages): minutes for a GiB.
COMMIT_SECONDS = 900.0


async def send_upload(account: Account, job: PrintJob, advance: Callable[[int], None]) -> Delivered:
    """PUTs the file to the URL CreateUploadUrl gives and commits it as a held job.

    A PUT that broke off is sent again whole to the same URL (a PUT replaces); a URL that
    expired meanwhile is asked for again. The commit carries the job's idempotency key, so a
    commit repeated after a lost answer returns the same job.
    """
    doc = job.document
    ask = {
        "printer": job.printer,
        "title": job.title,
        "format": doc.mime,
        "copies": job.copies,
        "duplex": job.duplex,
        "mono": job.mono,
        "request_id": job.request_id,
        "size": doc.size,
    }

    async def new_url() -> dict[str, Any]:
        answer: dict[str, Any] = await with_retries(
            "asking for an upload URL", lambda: account.post("/uploads", ask)
        )
        return answer

    upload = await new_url()

    async def put() -> None:
        step = Attempt(advance)
        headers = {**upload.get("headers", {}), "Content-Length": str(doc.size)}
        try:
            async with httpx.AsyncClient(verify=account.ssl, timeout=TIMEOUT) as http:
                reply = await http.put(upload["url"], content=doc.chunks(step), headers=headers)
        except httpx.HTTPError as exc:
            step.rewind()
            raise transport_error(exc, "the storage") from exc
        if reply.status_code >= 300:
            step.rewind()
            raise http_error(reply, reply.content)

    try:
        await with_retries(f"uploading {doc.name}", put)
    except Refused:
        # The URL expired while the upload was retried: one more round with a new one.
        upload = await new_url()
        await with_retries(f"uploading {doc.name}", put)
    upload_id = quote(str(upload["upload_id"]), safe="")
    committed = await with_retries(
        "registering the upload",
        lambda: account.post(f"/uploads/{upload_id}/commit", read_seconds=COMMIT_SECONDS),
    )
    return Delivered(route="upload", job=dict(committed["job"]))
