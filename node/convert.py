"""Conversion between NodeLink / spool messages and the node's domain types."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import accounting_pb2, common_pb2, node_link_pb2, spool_pb2

from node.credential import Card, Credential, LoginPassword, Pin
from node.delivery import JobOrder, NodePrinter
from node.errors import UsageFileError
from node.jba_log import JbaRecord, request_id
from node.replica import DirectoryDelta, ReplicaUser, SnapshotChunk

_USAGE_KINDS = {
    "PRINT": accounting_pb2.USAGE_KIND_PRINT,
    "COPY": accounting_pb2.USAGE_KIND_COPY,
    "SCAN": accounting_pb2.USAGE_KIND_SCAN,
    "FAX": accounting_pb2.USAGE_KIND_FAX,
}
_INT_FIELDS = ("pages", "sheets", "color_pages", "mono_pages")
_TEXT_FIELDS = ("user_login", "document_name", "paper_size", "device_id", "job_id")


def timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when.astimezone(UTC))
    return stamp


def replica_user(msg: node_link_pb2.ReplicaUser) -> ReplicaUser:
    return ReplicaUser(
        user_id=msg.user_id,
        login=msg.login,
        email=msg.email,
        full_name=msg.full_name,
        department=msg.department,
        rights=tuple(int(r) for r in msg.rights),
        disabled=msg.disabled,
        password_hash=msg.password_hash,
        pin_hash=msg.pin_hash,
        card_hashes=tuple(msg.card_hashes),
        revision=msg.revision,
    )


def snapshot_chunk(msg: node_link_pb2.DirectorySnapshotChunk) -> SnapshotChunk:
    return SnapshotChunk(
        revision=msg.revision,
        users=[replica_user(u) for u in msg.users],
        first=msg.first,
        last=msg.last,
        credential_key=msg.credential_key,
    )


def directory_delta(msg: node_link_pb2.DirectoryDelta) -> DirectoryDelta:
    return DirectoryDelta(
        from_revision=msg.from_revision,
        to_revision=msg.to_revision,
        upserts=[replica_user(u) for u in msg.upserts],
        deleted_user_ids=list(msg.deleted_user_ids),
    )


def remote_auth_request(
    request_id: str, device_id: str, credential: Credential, deadline: datetime
) -> node_link_pb2.RemoteAuthRequest:
    msg = node_link_pb2.RemoteAuthRequest(
        request_id=request_id, device_id=device_id, deadline=timestamp(deadline)
    )
    if isinstance(credential, Pin):
        msg.pin = credential.pin
    elif isinstance(credential, Card):
        msg.card = credential.card
    elif isinstance(credential, LoginPassword):
        msg.login, msg.password = credential.login, credential.password
    return msg


def node_printer(msg: node_link_pb2.NodePrinter) -> NodePrinter:
    return NodePrinter(printer_id=msg.printer_id, name=msg.name, device_uri=msg.device_uri)


def job_order(msg: spool_pb2.Job, printer_id: str) -> JobOrder:
    return JobOrder(
        job_id=msg.job_id,
        number=msg.number,
        title=msg.title,
        owner_login=msg.owner_login,
        printer_id=printer_id or msg.release_printer_id or msg.printer_id,
        size=msg.size_bytes,
        sha256=msg.sha256.lower(),
    )


def rights_names(rights: tuple[int, ...]) -> list[str]:
    names = []
    for right in rights:
        try:
            names.append(common_pb2.AccessRight.Name(right).removeprefix("ACCESS_RIGHT_"))
        except ValueError:
            names.append(str(right))
    return names


def usage_entry(record: Mapping[str, object], line: int) -> accounting_pb2.UsageEntry:
    """A usage entry from one JSON object of an accounting JSONL file (line for messages)."""

    def bad(what: str) -> UsageFileError:
        return UsageFileError(f"line {line}: {what}")

    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 128:
        raise bad("request_id must be a non-empty string of at most 128 characters")
    kind = _USAGE_KINDS.get(str(record.get("kind", "")).upper())
    if kind is None:
        raise bad(f"kind must be one of {', '.join(_USAGE_KINDS)}")
    entry = accounting_pb2.UsageEntry(request_id=request_id.strip(), kind=kind)
    for name in _TEXT_FIELDS:
        value = record.get(name, "")
        if not isinstance(value, str):
            raise bad(f"{name} must be a string")
        setattr(entry, name, value)
    if not entry.user_login:
        raise bad("user_login is required")
    for name in _INT_FIELDS:
        value = record.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
            raise bad(f"{name} must be a non-negative integer")
        setattr(entry, name, value)
    duplex = record.get("duplex", False)
    if not isinstance(duplex, bool):
        raise bad("duplex must be true or false")
    entry.duplex = duplex
    occur = record.get("occur_time")
    if not isinstance(occur, str):
        raise bad("occur_time must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(occur.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad(f"occur_time {occur!r} is not an ISO 8601 time") from exc
    # A time without a zone is the device's local time; UTC is the only honest guess.
    entry.occur_time.CopyFrom(timestamp(when if when.tzinfo else when.replace(tzinfo=UTC)))
    return entry


def jba_usage_entry(
    device: str, record: JbaRecord, login: str, job_id: str
) -> accounting_pb2.UsageEntry:
    """A usage entry from one record of a JBA device's log, charged to login (and job_id)."""
    # device_id stays empty: the cloud fills in the node (a JBA device is not a cloud device).
    return accounting_pb2.UsageEntry(
        request_id=request_id(device, record),
        kind=_USAGE_KINDS[record.kind.name],
        user_login=login,
        document_name=record.job_name,
        job_id=job_id,
        pages=record.pages,
        sheets=record.sheets,
        color_pages=record.color_pages,
        mono_pages=record.mono_pages,
        duplex=record.duplex,
        paper_size=record.paper_size,
        occur_time=timestamp(record.occurred),
    )


def usage_entries(text: str) -> list[accounting_pb2.UsageEntry]:
    """Parses a whole JSONL document; any bad line refuses the whole file."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageFileError(f"line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise UsageFileError(f"line {number}: not a JSON object")
        entries.append(usage_entry(record, number))
    return entries
