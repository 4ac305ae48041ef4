"""Scans from devices: streamed into the blob store whole or not at all; destinations to pick."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.db.engine import run_to_completion
from cloud.db.models import Scan, ScanDestination, User
from cloud.domain.directory import acting_user, decode_rights
from cloud.domain.enums import AccessRight, PrincipalKind
from cloud.domain.formats import StreamSniffer, stream_to_file
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id, next_page_token, page_window
from cloud.errors import InvalidArgument, NotFound, PermissionDenied, TooLarge

_MIME = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
_MAX_METADATA_BYTES = 64 << 10
# The one destination every user with an email address has; tenant destinations have hex ids.
EMAIL_ME = "email-me"
DEFAULT_SCAN_FORMAT = "application/pdf"


class ScanState(IntEnum):
    RECEIVED = 1
    DELIVERING = 2
    DELIVERED = 3
    FAILED = 4


class DestinationKind(IntEnum):
    EMAIL = 1
    CLOUD_STORAGE = 2


@dataclass(frozen=True)
class ScanSubmission:
    """The header of an upload: the device's description file."""

    size: int
    user_login: str = ""
    file_name: str = ""
    mime_type: str = ""
    page_count: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    destination_id: str = ""

    def checked(self) -> ScanSubmission:
        if self.size <= 0:
            raise InvalidArgument(
                "the header must declare the document's size in bytes", reason="NO_SIZE"
            )
        if self.page_count < 0:
            raise InvalidArgument("page_count must not be negative")
        if len(self.request_id) > 128:
            raise InvalidArgument("request_id is longer than 128 characters")
        if len(self.destination_id) > 64:
            raise InvalidArgument("destination_id is longer than 64 characters")
        mime = self.mime_type.strip() or "application/octet-stream"
        if len(mime) > 128 or not _MIME.match(mime):
            raise InvalidArgument(f"mime_type {self.mime_type!r} is not a MIME type")
        if len(json.dumps(self.metadata)) > _MAX_METADATA_BYTES:
            raise InvalidArgument(
                f"the metadata is over {_MAX_METADATA_BYTES} bytes", reason="METADATA_TOO_LARGE"
            )
        # A device's path means nothing here; keep the last name only.
        name = re.split(r"[/\\]", self.file_name.strip())[-1][:512]
        return ScanSubmission(
            size=self.size,
            user_login=self.user_login.strip(),
            file_name=name or "scan",
            mime_type=mime,
            page_count=self.page_count,
            metadata=dict(self.metadata),
            request_id=self.request_id,
            destination_id=self.destination_id.strip(),
        )


@dataclass(frozen=True)
class Destination:
    destination_id: str
    display_name: str
    kind: DestinationKind
    target: str
    format: str = DEFAULT_SCAN_FORMAT


@dataclass(frozen=True)
class ScanInfo:
    scan: Scan
    owner_login: str

    @property
    def metadata(self) -> dict[str, str]:
        loaded = json.loads(self.scan.details or "{}")
        return {str(k): str(v) for k, v in loaded.items()}


class Scans:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # Upload -------------------------------------------------------------------------------

    async def upload(
        self, principal: Principal, header: ScanSubmission, chunks: AsyncIterator[bytes]
    ) -> ScanInfo:
        """Streams a scan into the blob store and records it RECEIVED.

        The chunks must add up to exactly header.size: a stream that stops short (cut off) or
        runs over (a description that lies) stores nothing, blob and row both.
        """
        header = header.checked()
        limit = self.rt.settings.max_job_bytes
        if header.size > limit:
            raise TooLarge(
                f"the scan is {header.size} bytes; the limit is {limit}", reason="SCAN_TOO_LARGE"
            )
        owner, existing = await run_to_completion(self._prepare(principal, header))
        if existing is not None:
            return existing
        staging = self.rt.blobs.staging_dir
        await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
        part = staging / f"{new_id()}.part"
        try:
            sniffer = await self._receive(part, chunks, header.size)
            # The whole document is here: storing it finishes even if the caller goes now.
            return await run_to_completion(self._store(principal, header, owner, part, sniffer))
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(part.unlink)

    async def _prepare(
        self, principal: Principal, header: ScanSubmission
    ) -> tuple[User, ScanInfo | None]:
        async with self.rt.db.reader() as session:
            owner = await self._user_for(session, principal, header.user_login)
            if AccessRight.SCAN not in decode_rights(owner.rights):
                raise PermissionDenied(f"{owner.login} may not scan", reason="NO_SCAN_RIGHT")
            if header.request_id:
                existing = await self._by_request(session, owner, header.request_id)
                if existing is not None:
                    return owner, existing
            if header.destination_id:
                known = {d.destination_id for d in await self._destinations(session, owner)}
                if header.destination_id not in known:
                    raise InvalidArgument(
                        f"destination {header.destination_id} is not one {owner.login} may "
                        "use; see ListScanDestinations",
                        reason="UNKNOWN_DESTINATION",
                    )
            return owner, None

    async def _receive(
        self, part: Path, chunks: AsyncIterator[bytes], declared: int
    ) -> StreamSniffer:
        sniffer = await stream_to_file(
            part,
            chunks,
            declared,
            lambda: InvalidArgument(
                f"the header declares {declared} bytes; more arrived", reason="SIZE_MISMATCH"
            ),
        )
        if sniffer.size != declared:
            # Also what a cancelled upload looks like: gRPC can end it like a finished one.
            raise InvalidArgument(
                f"the header declares {declared} bytes; {sniffer.size} arrived (the upload was "
                "cut off or the description is wrong)",
                reason="SIZE_MISMATCH",
            )
        return sniffer

    async def _store(
        self,
        principal: Principal,
        header: ScanSubmission,
        owner: User,
        part: Path,
        sniffer: StreamSniffer,
    ) -> ScanInfo:
        """Moves the received scan into the blob store and records it: both or neither."""
        scan_id = new_id()
        blob_key = f"{owner.tenant_id}/scans/{scan_id}"
        now = self.rt.clock()
        scan = Scan(
            id=scan_id,
            tenant_id=owner.tenant_id,
            owner_user_id=owner.id,
            device_id=principal.subject_id if principal.kind is PrincipalKind.MFP else None,
            destination_id=header.destination_id,
            file_name=header.file_name,
            mime_type=header.mime_type,
            page_count=header.page_count,
            details=json.dumps(header.metadata, sort_keys=True),
            request_id=header.request_id or None,
            state=int(ScanState.RECEIVED),
            state_message="Received",
            size_bytes=sniffer.size,
            sha256=sniffer.sha256_hex,
            blob_key=blob_key,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.rt.blobs.put_file(blob_key, part)
            async with self.rt.db.session() as session, session.begin():
                session.add(scan)
                audit(session, now, principal, "scan.upload", scan_id, f"{sniffer.size} bytes")
        except IntegrityError:
            # The same request_id won a race: answer with that scan, drop this copy.
            await self.rt.blobs.delete(blob_key)
            async with self.rt.db.reader() as session:
                existing = await self._by_request(session, owner, header.request_id)
            if existing is None:
                raise
            return existing
        except BaseException:
            await self.rt.blobs.delete(blob_key)
            raise
        return ScanInfo(scan, owner.login)

    # Reading ------------------------------------------------------------------------------

    async def get(self, principal: Principal, scan_id: str) -> ScanInfo:
        query = self._visible(principal).where(Scan.id == scan_id)
        async with self.rt.db.reader() as session:
            row = (await session.execute(query)).tuples().one_or_none()
        if row is None:
            raise NotFound(f"scan {scan_id} not found", reason="UNKNOWN_SCAN")
        return ScanInfo(*row)

    async def list_scans(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[ScanInfo], str]:
        """Newest first: a user's own scans, or the tenant's for admins and devices."""
        offset, limit = page_window(page_size, page_token)
        query = (
            self._visible(principal)
            .order_by(Scan.created_at.desc(), Scan.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with self.rt.db.reader() as session:
            rows = [ScanInfo(*row) for row in (await session.execute(query)).tuples()]
        return rows, next_page_token(offset, limit, len(rows))

    def _visible(self, principal: Principal) -> Select[tuple[Scan, str]]:
        tenant_id = principal.require_tenant()
        query = (
            select(Scan, User.login)
            .join(User, User.id == Scan.owner_user_id)
            .where(Scan.tenant_id == tenant_id)
        )
        if principal.is_user and not principal.is_admin:
            return query.where(Scan.owner_user_id == principal.subject_id)
        if principal.is_admin or principal.kind in (PrincipalKind.MFP, PrincipalKind.NODE):
            return query
        raise PermissionDenied("scans are for users, admins and devices")

    # Destinations -------------------------------------------------------------------------

    async def destinations(self, principal: Principal, user_login: str) -> list[Destination]:
        """ "Email to me" (if the user has an email address), then the tenant's destinations."""
        async with self.rt.db.reader() as session:
            user = await self._user_for(session, principal, user_login)
            return await self._destinations(session, user)

    async def _destinations(self, session: AsyncSession, user: User) -> list[Destination]:
        found = []
        if user.email:
            found.append(Destination(EMAIL_ME, "Email to me", DestinationKind.EMAIL, user.email))
        rows = (
            await session.execute(
                select(ScanDestination)
                .where(ScanDestination.tenant_id == user.tenant_id)
                .order_by(ScanDestination.display_name, ScanDestination.id)
            )
        ).scalars()
        found.extend(
            Destination(r.id, r.display_name, DestinationKind(r.kind), r.target, r.format)
            for r in rows
        )
        return found

    async def create_destination(self, principal: Principal, new: Destination) -> Destination:
        principal.require_admin("adding scan destinations")
        tenant_id = principal.require_tenant()
        name, target = new.display_name.strip(), new.target.strip()
        if not name or len(name) > 200:
            raise InvalidArgument("a destination needs a display_name of 1-200 characters")
        if not target or len(target) > 1024:
            raise InvalidArgument("a destination needs a target of 1-1024 characters")
        if new.kind is DestinationKind.EMAIL and "@" not in target:
            raise InvalidArgument(f"{target} is not an email address")
        fmt = new.format.strip() or DEFAULT_SCAN_FORMAT
        if len(fmt) > 128 or not _MIME.match(fmt):
            raise InvalidArgument(f"format {new.format!r} is not a MIME type")
        now = self.rt.clock()
        row = ScanDestination(
            id=new_id(),
            tenant_id=tenant_id,
            display_name=name,
            kind=int(new.kind),
            target=target,
            format=fmt,
            created_at=now,
        )
        async with self.rt.db.session() as session, session.begin():
            session.add(row)
            audit(session, now, principal, "scan_destination.create", row.id, name)
        return Destination(row.id, name, new.kind, target, fmt)

    async def delete_destination(self, principal: Principal, destination_id: str) -> None:
        principal.require_admin("removing scan destinations")
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            result = await session.execute(
                delete(ScanDestination).where(
                    ScanDestination.tenant_id == tenant_id, ScanDestination.id == destination_id
                )
            )
            if not getattr(result, "rowcount", 0):
                raise NotFound(f"scan destination {destination_id} not found")
            audit(session, now, principal, "scan_destination.delete", destination_id)

    # Who ----------------------------------------------------------------------------------

    async def _user_for(self, session: AsyncSession, principal: Principal, login: str) -> User:
        """The user a scan call is for: the calling user, or whom an MFP or an admin names."""
        return await acting_user(
            session,
            principal,
            login,
            naming=frozenset({PrincipalKind.MFP}),
            refused="scanning is for users (for themselves), MFP devices and admins",
            missing_login="name the user (user_login) the scan is for",
        )

    async def _by_request(
        self, session: AsyncSession, owner: User, request_id: str
    ) -> ScanInfo | None:
        scan = (
            await session.execute(
                select(Scan).where(
                    Scan.tenant_id == owner.tenant_id,
                    Scan.owner_user_id == owner.id,
                    Scan.request_id == request_id,
                )
            )
        ).scalar_one_or_none()
        return ScanInfo(scan, owner.login) if scan is not None else None
