"""Conversion between database/domain objects and v1 messages; the only place that knows both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import (
    accounting_pb2,
    auth_pb2,
    device_pb2,
    directory_pb2,
    spool_pb2,
    tenant_pb2,
)

from cloud.db.models import Device, Node, Printer, Tenant, User
from cloud.domain.accounting import UsageKind, UsageRecord
from cloud.domain.auth import Tokens
from cloud.domain.devices import PrinterFields, decode_formats
from cloud.domain.directory import UserFields, decode_rights
from cloud.domain.enums import AccessRight, DeviceKind, DocumentFormat, QueueModel, UserSource
from cloud.domain.jobs import JobInfo, JobOptions, JobSubmission
from cloud.errors import InvalidArgument


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def duration(value: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(value)
    return out


def tokens(t: Tokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=t.access_token,
        access_token_expire_time=ts(t.access_expire),
        refresh_token=t.refresh_token,
        refresh_token_expire_time=ts(t.refresh_expire),
    )


def tenant(t: Tenant) -> tenant_pb2.Tenant:
    return tenant_pb2.Tenant(
        tenant_id=t.id,
        company_code=t.company_code,
        display_name=t.display_name,
        job_retention=duration(timedelta(seconds=t.job_retention_seconds)),
        directory_revision=t.directory_revision,
        create_time=ts(t.created_at),
    )


def user(u: User, card_count: int) -> directory_pb2.User:
    return directory_pb2.User(
        user_id=u.id,
        login=u.login,
        email=u.email,
        full_name=u.full_name,
        department=u.department,
        rights=sorted(int(r) for r in decode_rights(u.rights)),  # type: ignore[misc]
        source=u.source,  # type: ignore[arg-type]
        disabled=u.disabled,
        has_password=bool(u.password_hash),
        has_pin=bool(u.pin_hash),
        card_count=card_count,
        create_time=ts(u.created_at),
        update_time=ts(u.updated_at),
    )


def rights(values: object) -> frozenset[AccessRight]:
    try:
        return frozenset(AccessRight(int(v)) for v in values)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise InvalidArgument(f"unknown access right: {exc}") from exc


def user_fields(msg: directory_pb2.User, paths: set[str] | None) -> UserFields:
    """User fields from a message; with paths (an update mask), only those fields."""

    def want(name: str) -> bool:
        return paths is None or name in paths

    source = UserSource(msg.source) if msg.source else UserSource.LOCAL
    return UserFields(
        login=msg.login if want("login") else None,
        email=msg.email if want("email") else None,
        full_name=msg.full_name if want("full_name") else None,
        department=msg.department if want("department") else None,
        rights=rights(msg.rights) if want("rights") and (paths is not None or msg.rights) else None,
        disabled=msg.disabled if want("disabled") else None,
        source=source,
    )


def printer(p: Printer) -> device_pb2.Printer:
    return device_pb2.Printer(
        printer_id=p.id,
        name=p.name,
        display_name=p.display_name,
        location=p.location,
        model=p.model,  # type: ignore[arg-type]
        device_uri=p.device_uri,
        node_id=p.node_id or "",
        formats=sorted(int(f) for f in decode_formats(p.formats)),  # type: ignore[misc]
        color=p.color,
        duplex=p.duplex,
        create_time=ts(p.created_at),
    )


def public_printer(p: Printer) -> device_pb2.Printer:
    """What anyone may see of a queue: no id, device URI or node."""
    full = printer(p)
    return device_pb2.Printer(
        name=full.name,
        display_name=full.display_name,
        location=full.location,
        model=full.model,
        formats=full.formats,
        color=full.color,
        duplex=full.duplex,
    )


def printer_fields(msg: device_pb2.Printer, paths: set[str] | None) -> PrinterFields:
    def want(name: str) -> bool:
        return paths is None or name in paths

    try:
        formats = frozenset(DocumentFormat(int(f)) for f in msg.formats)
        model = QueueModel(msg.model) if msg.model else None
    except ValueError as exc:
        raise InvalidArgument(f"unknown enum value: {exc}") from exc
    return PrinterFields(
        name=msg.name if want("name") else None,
        display_name=msg.display_name if want("display_name") else None,
        location=msg.location if want("location") else None,
        model=model if want("model") else None,
        device_uri=msg.device_uri if want("device_uri") else None,
        node_id=msg.node_id if want("node_id") else None,
        formats=formats if want("formats") else None,
        color=msg.color if want("color") else None,
        duplex=msg.duplex if want("duplex") else None,
    )


def device(d: Device) -> device_pb2.Device:
    return device_pb2.Device(
        device_id=d.id,
        kind=d.kind,  # type: ignore[arg-type]
        serial_number=d.serial_number,
        display_name=d.display_name,
        location=d.location,
        printer_id=d.printer_id or "",
        node_id=d.node_id or "",
        revoked=d.revoked,
        create_time=ts(d.created_at),
        last_seen_time=ts(d.last_seen_at),
    )


def device_kind(value: int) -> DeviceKind:
    try:
        return DeviceKind(value)
    except ValueError as exc:
        raise InvalidArgument("kind must be MFP, NODE or SYNC_AGENT") from exc


def node(n: Node, online: bool = False) -> device_pb2.Node:
    return device_pb2.Node(
        node_id=n.id,
        serial_number=n.serial_number,
        display_name=n.display_name,
        location=n.location,
        revoked=n.revoked,
        online=online,
        directory_revision=n.directory_revision,
        software_version=n.software_version,
        create_time=ts(n.created_at),
        last_seen_time=ts(n.last_seen_at),
        lpd_uri=n.lpd_uri,
    )


def job_options(o: JobOptions) -> spool_pb2.JobOptions:
    return spool_pb2.JobOptions(copies=o.copies, duplex=o.duplex, mono=o.mono, media=o.media)


def job(info: JobInfo) -> spool_pb2.Job:
    j = info.job
    return spool_pb2.Job(
        job_id=j.id,
        number=j.number,
        printer_id=j.printer_id,
        printer_name=info.printer_name,
        owner_user_id=j.owner_user_id,
        owner_login=info.owner_login,
        title=j.title,
        format=j.format,  # type: ignore[arg-type]
        options=job_options(info.options),
        state=j.state,  # type: ignore[arg-type]
        state_message=j.state_message,
        size_bytes=j.size_bytes,
        page_count=j.page_count,
        sha256=j.sha256,
        origin=j.origin,
        release_printer_id=j.release_printer_id or "",
        create_time=ts(j.created_at),
        update_time=ts(j.updated_at),
        expire_time=ts(j.expires_at),
        complete_time=ts(j.completed_at),
    )


def submission(h: spool_pb2.JobHeader) -> JobSubmission:
    try:
        fmt = DocumentFormat(h.format)
    except ValueError as exc:
        raise InvalidArgument(f"unknown document format {h.format}") from exc
    return JobSubmission(
        printer=h.printer,
        title=h.title,
        format=fmt,
        options=JobOptions(
            copies=h.options.copies,
            duplex=h.options.duplex,
            mono=h.options.mono,
            media=h.options.media,
        ),
        request_id=h.request_id,
        origin=h.origin,
        size_hint=h.size_hint,
        owner_login=h.owner_login,
        job_id=h.job_id,
    )


def usage_record(
    entry: accounting_pb2.UsageEntry,
    device_id: str = "",
    default_time: datetime | None = None,
) -> UsageRecord:
    """A usage entry as the domain's record. device_id stands in when the entry names no device
    (a node's batch); default_time when it has no occur_time (else that is INVALID_ARGUMENT)."""
    try:
        kind = UsageKind(entry.kind)
    except ValueError as exc:
        raise InvalidArgument(
            f"usage entry {entry.request_id}: kind must be print, copy, scan or fax",
            reason="BAD_KIND",
        ) from exc
    if entry.HasField("occur_time"):
        occurred = entry.occur_time.ToDatetime(tzinfo=UTC)
    elif default_time is not None:
        occurred = default_time
    else:
        raise InvalidArgument("every usage entry needs its occur_time")
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
