"""NodeLink message conversion (the node's view of users, accounting entries from a node)."""

from __future__ import annotations

from datetime import UTC, datetime

from printfabric.v1 import accounting_pb2, node_link_pb2

from cloud.domain.accounting import UsageKind, UsageRecord
from cloud.domain.directory import decode_rights
from cloud.domain.replication import ReplicaRecord
from cloud.errors import InvalidArgument


def replica_user(record: ReplicaRecord) -> node_link_pb2.ReplicaUser:
    u = record.user
    return node_link_pb2.ReplicaUser(
        user_id=u.id,
        login=u.login,
        email=u.email,
        full_name=u.full_name,
        department=u.department,
        rights=sorted(int(r) for r in decode_rights(u.rights)),  # type: ignore[misc]
        disabled=u.disabled,
        password_hash=u.password_hash or "",
        pin_hash=u.pin_hash or "",
        card_hashes=record.card_hashes,
        revision=u.revision,
    )


def usage_record(entry: accounting_pb2.UsageEntry, device_id: str) -> UsageRecord:
    try:
        kind = UsageKind(entry.kind)
    except ValueError as exc:
        raise InvalidArgument(f"usage entry {entry.request_id} has no valid kind") from exc
    occurred = (
        entry.occur_time.ToDatetime(tzinfo=UTC)
        if entry.HasField("occur_time")
        else datetime.now(UTC)
    )
    return UsageRecord(
        request_id=entry.request_id,
        kind=kind,
        user_login=entry.user_login,
        occurred_at=occurred,
        document_name=entry.document_name,
        device_id=entry.device_id or device_id,
        job_id=entry.job_id,
        pages=entry.pages,
        sheets=entry.sheets,
        color_pages=entry.color_pages,
        mono_pages=entry.mono_pages,
        duplex=entry.duplex,
        paper_size=entry.paper_size,
    )
