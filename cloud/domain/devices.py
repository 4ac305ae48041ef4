"""Printers (queues), MFP devices, sync agents and nodes of a tenant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.bus import config_topic
from cloud.db.models import Device, Job, Node, Printer, Tenant
from cloud.domain import credentials
from cloud.domain.directory import revoke_sessions
from cloud.domain.enums import DeviceKind, DocumentFormat, JobState, PrincipalKind, QueueModel
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id, next_page_token, page_window
from cloud.domain.tenants import tenant_by_code
from cloud.errors import AlreadyExists, InvalidArgument, NotFound

_QUEUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_URI_SCHEMES = {"lpd", "ipp", "ipps", "socket", "file"}
T = TypeVar("T", Printer, Device, Node)
Agent = TypeVar("Agent", Device, Node)


@dataclass
class PrinterFields:
    """Fields of a printer; None leaves a field unchanged on update."""

    name: str | None = None
    display_name: str | None = None
    location: str | None = None
    model: QueueModel | None = None
    device_uri: str | None = None
    node_id: str | None = None
    formats: frozenset[DocumentFormat] | None = None
    color: bool | None = None
    duplex: bool | None = None


@dataclass
class DeviceFields:
    kind: DeviceKind = DeviceKind.MFP
    serial_number: str = ""
    display_name: str = ""
    location: str = ""
    printer_id: str = ""
    node_id: str = ""


def encode_formats(formats: frozenset[DocumentFormat]) -> str:
    return ",".join(str(int(f)) for f in sorted(formats))


def decode_formats(text: str) -> frozenset[DocumentFormat]:
    return frozenset(DocumentFormat(int(v)) for v in text.split(",") if v)


def check_device_uri(uri: str) -> str:
    uri = uri.strip()
    if not uri:
        return ""
    parts = urlsplit(uri)
    if parts.scheme not in _URI_SCHEMES:
        raise InvalidArgument(
            f"device_uri scheme must be one of {', '.join(sorted(_URI_SCHEMES))}",
            reason="INVALID_URI",
        )
    if parts.scheme != "file" and not parts.hostname:
        raise InvalidArgument("device_uri needs a host", reason="INVALID_URI")
    return uri


def _serial(serial: str) -> str:
    serial = serial.strip()
    if not serial or len(serial) > 128:
        raise InvalidArgument("a serial number is 1-128 characters")
    return serial


class Devices:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def _get(
        self, session: AsyncSession, model: type[T], tenant_id: str, row_id: str, what: str
    ) -> T:
        row = (
            await session.execute(
                select(model).where(model.tenant_id == tenant_id, model.id == row_id)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"{what} {row_id} not found")
        return row

    async def _list(
        self, principal: Principal, model: type[T], page_size: int, page_token: str, what: str
    ) -> tuple[list[T], str]:
        if not (principal.is_admin or principal.kind in (PrincipalKind.NODE, PrincipalKind.MFP)):
            principal.require_admin(f"listing {what}")
        tenant_id = principal.require_tenant()
        offset, limit = page_window(page_size, page_token)
        async with self.rt.db.reader() as session:
            rows = list(
                (
                    await session.execute(
                        select(model)
                        .where(model.tenant_id == tenant_id)
                        .order_by(model.created_at, model.id)
                        .offset(offset)
                        .limit(limit)
                    )
                ).scalars()
            )
        return rows, next_page_token(offset, limit, len(rows))

    # Printers -----------------------------------------------------------------------------

    async def create_printer(
        self, principal: Principal | None, tenant_id: str, f: PrinterFields
    ) -> Printer:
        if principal is not None:
            principal.require_admin("creating printers")
            tenant_id = principal.require_tenant()
        name = (f.name or "").strip().lower()
        if not _QUEUE.match(name):
            raise InvalidArgument(
                "a queue name is 1-63 of a-z, 0-9, '_' and '-'", reason="INVALID_QUEUE"
            )
        now = self.rt.clock()
        try:
            async with self.rt.db.session() as session, session.begin():
                if await session.get(Tenant, tenant_id) is None:
                    raise NotFound("tenant not found")
                if f.node_id:
                    await self._get(session, Node, tenant_id, f.node_id, "node")
                printer = Printer(
                    id=new_id(),
                    tenant_id=tenant_id,
                    name=name,
                    display_name=(f.display_name or name).strip(),
                    location=(f.location or "").strip(),
                    model=int(f.model or QueueModel.SECURE),
                    device_uri=check_device_uri(f.device_uri or ""),
                    node_id=f.node_id or None,
                    formats=encode_formats(f.formats or frozenset()),
                    color=True if f.color is None else f.color,
                    duplex=True if f.duplex is None else f.duplex,
                    created_at=now,
                )
                session.add(printer)
                await session.flush()
                audit(session, now, principal, "printer.create", name, tenant_id=tenant_id)
        except IntegrityError as exc:
            raise AlreadyExists(f"a queue named {name} exists", reason="QUEUE_TAKEN") from exc
        await self._queues_changed(tenant_id)
        return printer

    async def _queues_changed(self, tenant_id: str) -> None:
        """Wakes the tenant's node links (after the commit), which push the new configuration:
        every node takes LPD jobs for every queue of the tenant."""
        await self.rt.bus.publish(config_topic(tenant_id))

    async def printer_by_ref(self, session: AsyncSession, tenant_id: str, ref: str) -> Printer:
        """A printer by id or queue name, within the tenant."""
        ref = ref.strip()
        row = (
            await session.execute(
                select(Printer).where(
                    Printer.tenant_id == tenant_id,
                    (Printer.id == ref) | (Printer.name == ref.lower()),
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no queue named {ref}", reason="UNKNOWN_QUEUE")
        return row

    async def get_printer(
        self, principal: Principal, printer_id: str = "", name: str = ""
    ) -> Printer:
        tenant_id = principal.require_tenant()
        async with self.rt.db.reader() as session:
            return await self.printer_by_ref(session, tenant_id, printer_id or name)

    async def list_printers(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[Printer], str]:
        return await self._list(principal, Printer, page_size, page_token, "printers")

    async def update_printer(
        self, principal: Principal, printer_id: str, f: PrinterFields
    ) -> Printer:
        principal.require_admin("changing printers")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            printer = await self._get(session, Printer, tenant_id, printer_id, "printer")
            if f.node_id:
                await self._get(session, Node, tenant_id, f.node_id, "node")
            if f.display_name is not None:
                printer.display_name = f.display_name.strip()
            if f.location is not None:
                printer.location = f.location.strip()
            if f.model:
                printer.model = int(f.model)
            if f.device_uri is not None:
                printer.device_uri = check_device_uri(f.device_uri)
            if f.node_id is not None:
                printer.node_id = f.node_id or None
            if f.formats is not None:
                printer.formats = encode_formats(f.formats)
            if f.color is not None:
                printer.color = f.color
            if f.duplex is not None:
                printer.duplex = f.duplex
            audit(session, now, principal, "printer.update", printer.name)
        await self._queues_changed(tenant_id)
        return printer

    async def delete_printer(self, principal: Principal, printer_id: str) -> None:
        principal.require_admin("deleting printers")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        try:
            async with self.rt.db.session() as session, session.begin():
                printer = await self._get(session, Printer, tenant_id, printer_id, "printer")
                await session.delete(printer)
                audit(session, now, principal, "printer.delete", printer.name)
        except IntegrityError as exc:
            raise InvalidArgument(
                "the queue still has jobs or devices; it cannot be deleted", reason="QUEUE_IN_USE"
            ) from exc
        await self._queues_changed(tenant_id)

    async def describe_printer(self, company_code: str, name: str) -> tuple[Printer, int]:
        """A queue's public description and how many of its jobs are not final; for callers that
        have not logged in yet (driverless set-up). Unknown tenant or queue: the same NOT_FOUND."""
        open_states = [int(s) for s in JobState if not s.is_final]
        async with self.rt.db.reader() as session:
            tenant = await tenant_by_code(session, company_code)
            printer = (
                await session.execute(
                    select(Printer).where(
                        Printer.tenant_id == (tenant.id if tenant else ""),
                        Printer.name == name.strip().lower(),
                    )
                )
            ).scalar_one_or_none()
            if tenant is None or printer is None:
                raise NotFound(f"no queue named {name}", reason="UNKNOWN_QUEUE")
            queued = (
                await session.execute(
                    select(func.count())
                    .select_from(Job)
                    .where(
                        Job.tenant_id == tenant.id,
                        Job.printer_id == printer.id,
                        Job.state.in_(open_states),
                    )
                )
            ).scalar_one()
        return printer, int(queued)

    async def user_printers(self, principal: Principal) -> list[tuple[Printer, list[str]]]:
        """Every queue of the tenant with its submit URIs: the gateway's IPPS one, then LPR to the
        queue's node when that node announced its LPD server. Two queries, however many queues."""
        tenant_id = principal.require_tenant()
        async with self.rt.db.reader() as session:
            tenant = await session.get(Tenant, tenant_id)
            # The node is joined within the tenant, and only while its token is good.
            rows = (
                await session.execute(
                    select(Printer, Node.lpd_uri)
                    .outerjoin(
                        Node,
                        (Node.id == Printer.node_id)
                        & (Node.tenant_id == tenant_id)
                        & Node.revoked.is_(False),
                    )
                    .where(Printer.tenant_id == tenant_id)
                    .order_by(Printer.name)
                )
            ).all()
        assert tenant is not None
        base = self.rt.settings.public_url.replace("https://", "ipps://", 1)
        listed: list[tuple[Printer, list[str]]] = []
        for printer, lpd_uri in rows:
            # The path prefix /t/{code} names the tenant at the gateway (see the README).
            uris = [f"{base}/t/{tenant.company_code}/ipp/print/{printer.name}"]
            if lpd_uri:
                uris.append(f"{lpd_uri}/{printer.name}")
            listed.append((printer, uris))
        return listed

    # MFP devices and sync agents ----------------------------------------------------------

    async def create_device(
        self, principal: Principal | None, tenant_id: str, f: DeviceFields
    ) -> tuple[Device, str]:
        if principal is not None:
            principal.require_admin("creating devices")
            tenant_id = principal.require_tenant()
        if f.kind not in (DeviceKind.MFP, DeviceKind.SYNC_AGENT):
            raise InvalidArgument(
                "a device is an MFP or a sync agent; create nodes with CreateNode"
            )
        token = credentials.new_access_token()
        now = self.rt.clock()
        try:
            async with self.rt.db.session() as session, session.begin():
                if await session.get(Tenant, tenant_id) is None:
                    raise NotFound("tenant not found")
                if f.printer_id:
                    await self._get(session, Printer, tenant_id, f.printer_id, "printer")
                if f.node_id:
                    await self._get(session, Node, tenant_id, f.node_id, "node")
                device = Device(
                    id=new_id(),
                    tenant_id=tenant_id,
                    kind=int(f.kind),
                    serial_number=_serial(f.serial_number),
                    display_name=f.display_name.strip(),
                    location=f.location.strip(),
                    printer_id=f.printer_id or None,
                    node_id=f.node_id or None,
                    token_hash=credentials.token_hash(token),
                    revoked=False,
                    created_at=now,
                )
                session.add(device)
                await session.flush()
                audit(
                    session,
                    now,
                    principal,
                    "device.create",
                    device.serial_number,
                    tenant_id=tenant_id,
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"a device with serial {f.serial_number} exists") from exc
        return device, token

    async def _get_agent(
        self, principal: Principal, model: type[Agent], row_id: str, what: str
    ) -> Agent:
        """A device or node for an admin, or for itself; NOT_FOUND for anyone else."""
        tenant_id = principal.require_tenant()
        if not principal.is_admin and principal.subject_id != row_id:
            raise NotFound(f"{what} {row_id} not found")
        async with self.rt.db.reader() as session:
            return await self._get(session, model, tenant_id, row_id, what)

    async def get_device(self, principal: Principal, device_id: str) -> Device:
        return await self._get_agent(principal, Device, device_id, "device")

    async def list_devices(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[Device], str]:
        return await self._list(principal, Device, page_size, page_token, "devices")

    async def delete_device(self, principal: Principal, device_id: str) -> None:
        await self._revoke(principal, Device, device_id, "device", delete=True)

    async def rotate_device_token(self, principal: Principal, device_id: str) -> str:
        return await self._rotate(principal, Device, device_id, "device")

    async def device_config(self, principal: Principal) -> tuple[Device, Printer | None, Tenant]:
        principal.require_kind(PrincipalKind.MFP, what="GetDeviceConfig")
        tenant_id = principal.require_tenant()
        async with self.rt.db.reader() as session:
            device = await self._get(session, Device, tenant_id, principal.subject_id, "device")
            printer = await session.get(Printer, device.printer_id) if device.printer_id else None
            tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return device, printer, tenant

    # Nodes ----------------------------------------------------------------------------------

    async def create_node(
        self,
        principal: Principal | None,
        tenant_id: str,
        serial: str,
        display_name: str,
        location: str,
    ) -> tuple[Node, str]:
        if principal is not None:
            principal.require_admin("creating nodes")
            tenant_id = principal.require_tenant()
        token = credentials.new_access_token()
        now = self.rt.clock()
        try:
            async with self.rt.db.session() as session, session.begin():
                if await session.get(Tenant, tenant_id) is None:
                    raise NotFound("tenant not found")
                node = Node(
                    id=new_id(),
                    tenant_id=tenant_id,
                    serial_number=_serial(serial),
                    display_name=display_name.strip(),
                    location=location.strip(),
                    token_hash=credentials.token_hash(token),
                    revoked=False,
                    directory_revision=0,
                    software_version="",
                    lpd_uri="",
                    created_at=now,
                )
                session.add(node)
                await session.flush()
                audit(
                    session, now, principal, "node.create", node.serial_number, tenant_id=tenant_id
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"a node with serial {serial} exists") from exc
        return node, token

    async def get_node(self, principal: Principal, node_id: str) -> Node:
        return await self._get_agent(principal, Node, node_id, "node")

    async def list_nodes(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[Node], str]:
        return await self._list(principal, Node, page_size, page_token, "nodes")

    async def online(self, node_ids: list[str]) -> set[str]:
        """Which of these nodes hold a NodeLink stream now, on any cloud replica."""
        return {n for n in node_ids if await self.rt.bus.get_presence(f"node.{n}")}

    async def delete_node(self, principal: Principal, node_id: str) -> None:
        await self._revoke(principal, Node, node_id, "node", delete=True)

    async def rotate_node_token(self, principal: Principal, node_id: str) -> str:
        return await self._rotate(principal, Node, node_id, "node")

    async def _revoke(
        self,
        principal: Principal,
        model: type[Agent],
        row_id: str,
        what: str,
        delete: bool,
    ) -> None:
        principal.require_admin(f"deleting a {what}")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            row = await self._get(session, model, tenant_id, row_id, what)
            # Kept as a revoked row: accounting and jobs still name it.
            row.revoked = True
            await revoke_sessions(self.rt, session, row.id)
            audit(
                session,
                now,
                principal,
                f"{what}.{'delete' if delete else 'revoke'}",
                row.serial_number,
            )

    async def _rotate(
        self, principal: Principal, model: type[Agent], row_id: str, what: str
    ) -> str:
        principal.require_admin(f"rotating a {what} token")
        tenant_id = principal.require_tenant()
        token = credentials.new_access_token()
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            row = await self._get(session, model, tenant_id, row_id, what)
            row.token_hash = credentials.token_hash(token)
            row.revoked = False
            await revoke_sessions(self.rt, session, row.id)
            audit(session, now, principal, f"{what}.rotate_token", row.serial_number)
        return token
