"""Accounting entries: stored once per request id, however often a device or node resends them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from cloud.db.models import AccountingEntry, User
from cloud.domain.enums import PrincipalKind
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, new_id, next_page_token, page_window
from cloud.errors import AlreadyExists, InvalidArgument, PermissionDenied


class UsageKind(IntEnum):
    PRINT = 1
    COPY = 2
    SCAN = 3
    FAX = 4


@dataclass(frozen=True)
class UsageRecord:
    request_id: str
    kind: UsageKind
    user_login: str
    occurred_at: datetime
    document_name: str = ""
    device_id: str = ""
    job_id: str = ""
    pages: int = 0
    sheets: int = 0
    color_pages: int = 0
    mono_pages: int = 0
    duplex: bool = False
    paper_size: str = ""

    def checked(self) -> UsageRecord:
        if not self.request_id or len(self.request_id) > 128:
            raise InvalidArgument("every usage entry needs a request_id of 1-128 characters")
        if min(self.pages, self.sheets, self.color_pages, self.mono_pages) < 0:
            raise InvalidArgument(f"usage entry {self.request_id} has a negative count")
        return self


async def record_usage(rt: Runtime, tenant_id: str, records: Sequence[UsageRecord]) -> int:
    """Stores the records in one transaction; returns how many were new."""
    if not records:
        return 0
    return await _insert(rt, _rows(tenant_id, records, rt.clock()))


def _rows(tenant_id: str, records: Sequence[UsageRecord], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "request_id": r.request_id,
            "kind": int(r.kind),
            "user_login": r.user_login[:256],
            "document_name": r.document_name[:512],
            "device_id": r.device_id or None,
            "job_id": r.job_id or None,
            "pages": r.pages,
            "sheets": r.sheets,
            "color_pages": r.color_pages,
            "mono_pages": r.mono_pages,
            "duplex": r.duplex,
            "paper_size": r.paper_size[:64],
            "occurred_at": r.occurred_at,
            "recorded_at": now,
        }
        for r in (rec.checked() for rec in records)
    ]


async def _insert(rt: Runtime, rows: list[dict[str, Any]]) -> int:
    dialect = postgresql if not rt.db.is_sqlite else sqlite
    # A resent batch hits the (tenant_id, request_id) unique key: skip those rows, keep the rest.
    statement = dialect.insert(AccountingEntry).on_conflict_do_nothing(
        index_elements=["tenant_id", "request_id"]
    )
    async with rt.db.session() as session, session.begin():
        result = await session.execute(statement, rows)
    return max(0, int(getattr(result, "rowcount", 0) or 0))


@dataclass(frozen=True)
class UsageTotals:
    user_login: str
    print_pages: int
    copy_pages: int
    scan_pages: int
    color_pages: int
    sheets: int


@dataclass(frozen=True)
class Period:
    """occurred_at from start (inclusive) to end (exclusive); None: unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def checked(self) -> Period:
        if self.start and self.end and self.start > self.end:
            raise InvalidArgument("start_time is after end_time")
        return self


class Accounting:
    """RecordUsage, ListUsage and SummarizeUsage: one entry at a time from devices and admins."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def record(
        self, principal: Principal, record: UsageRecord
    ) -> tuple[AccountingEntry, bool]:
        """Stores one entry; returns it and whether its request_id was recorded before.

        user_login must name a user of the tenant: an unknown login is INVALID_ARGUMENT
        (UNKNOWN_USER) rather than stored as given, so that every entry recorded through the
        API belongs to someone a summary can show; it is stored as the directory spells it.
        (Nodes' JBA batches over NodeLink keep storing logins as the device logged them.)
        An MFP always records as itself: device_id is the caller's. A request_id that another
        device already used is ALREADY_EXISTS (REQUEST_ID_IN_USE), not a silent duplicate.
        """
        tenant_id = principal.require_tenant()
        if principal.kind not in (PrincipalKind.MFP, PrincipalKind.NODE) and not principal.is_admin:
            raise PermissionDenied(
                "recording usage is for MFP devices, nodes and admins", reason="NOT_A_RECORDER"
            )
        record = record.checked()
        if principal.kind is PrincipalKind.MFP:
            record = replace(record, device_id=principal.subject_id)
        for name, value in (("device_id", record.device_id), ("job_id", record.job_id)):
            if len(value) > 32:
                raise InvalidArgument(f"{name} is longer than 32 characters")
        if not record.user_login.strip():
            raise InvalidArgument("every usage entry names its user_login", reason="UNKNOWN_USER")
        # A replay is answered from what was stored, whatever changed since.
        stored = await self._stored(principal, tenant_id, record)
        if stored is not None:
            return stored, True
        async with self.rt.db.reader() as session:
            user = (
                await session.execute(
                    select(User).where(
                        User.tenant_id == tenant_id,
                        User.login_key == record.user_login.strip().casefold(),
                    )
                )
            ).scalar_one_or_none()
        if user is None:
            raise InvalidArgument(
                f"no user with login {record.user_login} in this tenant; usage is recorded "
                "only for users of the directory",
                reason="UNKNOWN_USER",
            )
        (row,) = _rows(tenant_id, [replace(record, user_login=user.login)], self.rt.clock())
        await _insert(self.rt, [row])
        entry = await self._stored(principal, tenant_id, record)
        assert entry is not None
        # Another call with the same request_id may have stored its entry first.
        return entry, entry.id != row["id"]

    async def _stored(
        self, principal: Principal, tenant_id: str, record: UsageRecord
    ) -> AccountingEntry | None:
        async with self.rt.db.reader() as session:
            entry = (
                await session.execute(
                    select(AccountingEntry).where(
                        AccountingEntry.tenant_id == tenant_id,
                        AccountingEntry.request_id == record.request_id,
                    )
                )
            ).scalar_one_or_none()
        if (
            entry is not None
            and principal.kind is PrincipalKind.MFP
            and entry.device_id != principal.subject_id
        ):
            raise AlreadyExists(
                f"request_id {record.request_id} was recorded by another device; use ids "
                "unique in the tenant (a UUID, or one prefixed with the serial number)",
                reason="REQUEST_ID_IN_USE",
            )
        return entry

    async def list_usage(
        self,
        principal: Principal,
        page_size: int,
        page_token: str,
        user_login: str,
        period: Period,
    ) -> tuple[list[AccountingEntry], str]:
        """Newest first; admins see the tenant's entries, a user only their own."""
        tenant_id = principal.require_tenant()
        if not principal.is_user:
            raise PermissionDenied("listing usage is for users and admins")
        if not principal.is_admin:
            if user_login and user_login.strip().casefold() != principal.login.casefold():
                raise PermissionDenied(
                    "you may list only your own usage; that needs the ADMIN right",
                    reason="ADMIN_REQUIRED",
                )
            user_login = principal.login
        offset, limit = page_window(page_size, page_token)
        query = _in_period(
            select(AccountingEntry).where(AccountingEntry.tenant_id == tenant_id), period.checked()
        )
        if user_login.strip():
            query = query.where(
                func.lower(AccountingEntry.user_login) == user_login.strip().lower()
            )
        query = query.order_by(AccountingEntry.occurred_at.desc(), AccountingEntry.id.desc())
        async with self.rt.db.reader() as session:
            rows = list((await session.execute(query.offset(offset).limit(limit))).scalars())
        return rows, next_page_token(offset, limit, len(rows))

    async def summarize(self, principal: Principal, period: Period) -> list[UsageTotals]:
        """Totals per user (logins compared case-insensitively), for admins."""
        principal.require_admin("summarizing usage")
        tenant_id = principal.require_tenant()
        e = AccountingEntry

        def pages_of(kind: UsageKind) -> Any:
            return func.coalesce(func.sum(case((e.kind == int(kind), e.pages), else_=0)), 0)

        key = func.lower(e.user_login)
        query = _in_period(
            select(
                func.min(e.user_login),
                pages_of(UsageKind.PRINT),
                pages_of(UsageKind.COPY),
                pages_of(UsageKind.SCAN),
                func.coalesce(func.sum(e.color_pages), 0),
                func.coalesce(func.sum(e.sheets), 0),
            ).where(e.tenant_id == tenant_id),
            period.checked(),
        )
        async with self.rt.db.reader() as session:
            result = await session.execute(query.group_by(key).order_by(key))
            return [
                UsageTotals(str(login), *(int(v) for v in values))
                for login, *values in result.tuples()
            ]


def _in_period(query: Select[Any], period: Period) -> Select[Any]:
    if period.start is not None:
        query = query.where(AccountingEntry.occurred_at >= period.start)
    if period.end is not None:
        query = query.where(AccountingEntry.occurred_at < period.end)
    return query
