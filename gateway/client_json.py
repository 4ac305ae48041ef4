"""The workstation API's JSON shapes (docs/client-api.md) of the cloud's messages, and back."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.formats import FORMAT_MIME, mime_type
from printfabric.v1 import auth_pb2, device_pb2, directory_pb2, spool_pb2

# The API's job states and the spool's.
JOB_STATES: dict[str, int] = {
    "incoming": spool_pb2.JOB_STATE_INCOMING,
    "held": spool_pb2.JOB_STATE_HELD,
    "released": spool_pb2.JOB_STATE_RELEASED,
    "printing": spool_pb2.JOB_STATE_PRINTING,
    "completed": spool_pb2.JOB_STATE_COMPLETED,
    "failed": spool_pb2.JOB_STATE_FAILED,
    "canceled": spool_pb2.JOB_STATE_CANCELED,
    "expired": spool_pb2.JOB_STATE_EXPIRED,
}
_STATE_NAMES = {value: name for name, value in JOB_STATES.items()}
_MODELS = {device_pb2.QUEUE_MODEL_SECURE: "secure", device_pb2.QUEUE_MODEL_DIRECT: "direct"}


def time_of(message: Message, field: str) -> str | None:
    """An RFC 3339 UTC time ("2026-11-24T10:00:00Z"), or None when the field is unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToJsonString()


def tokens(pair: auth_pb2.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "access_token_expire_time": time_of(pair, "access_token_expire_time"),
        "refresh_token": pair.refresh_token,
        "refresh_token_expire_time": time_of(pair, "refresh_token_expire_time"),
    }


def user(person: directory_pb2.User) -> dict[str, Any]:
    return {"login": person.login, "full_name": person.full_name, "email": person.email}


def printer(entry: device_pb2.UserPrinter) -> dict[str, Any]:
    queue = entry.printer
    # No formats listed: the queue takes every format the spool knows.
    formats = [FORMAT_MIME[f] for f in queue.formats if f in FORMAT_MIME] or list(
        dict.fromkeys(FORMAT_MIME.values())
    )
    return {
        "id": queue.printer_id,
        "name": queue.name,
        "display_name": queue.display_name or queue.name,
        "location": queue.location,
        "model": _MODELS.get(queue.model, "secure"),
        "color": queue.color,
        "duplex": queue.duplex,
        "formats": formats,
        "submit_uris": list(entry.submit_uris),
    }


def job(spooled: spool_pb2.Job) -> dict[str, Any]:
    options = spooled.options
    return {
        "id": spooled.job_id,
        "number": spooled.number,
        "printer": spooled.printer_name,
        "title": spooled.title,
        "format": mime_type(spooled.format),
        "state": _STATE_NAMES.get(spooled.state, "unknown"),
        "state_message": spooled.state_message,
        "size_bytes": spooled.size_bytes,
        "page_count": spooled.page_count,
        "copies": options.copies or 1,
        "duplex": options.duplex,
        "mono": options.mono,
        "sha256": spooled.sha256,
        "origin": spooled.origin,
        "create_time": time_of(spooled, "create_time"),
        "expire_time": time_of(spooled, "expire_time"),
        "complete_time": time_of(spooled, "complete_time"),
    }


def upload(made: spool_pb2.CreateUploadUrlResponse) -> dict[str, Any]:
    return {
        "upload_id": made.upload_id,
        "url": made.url,
        "headers": dict(made.headers),
        "expire_time": time_of(made, "expire_time"),
    }
