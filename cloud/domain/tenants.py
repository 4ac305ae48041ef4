"""Tenants: creation by the platform operator, settings by the tenant's admins."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.db.models import Tenant
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id, next_page_token, page_window
from cloud.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")


@dataclass(frozen=True)
class TenantUpdate:
    display_name: str | None = None
    job_retention: timedelta | None = None


def normalize_company_code(code: str) -> str:
    code = code.strip().upper()
    if not _CODE.match(code):
        raise InvalidArgument(
            "a Company Identification Code is 2-64 of A-Z, 0-9, '_' and '-'",
            reason="INVALID_COMPANY_CODE",
        )
    return code


async def tenant_by_code(session: AsyncSession, company_code: str) -> Tenant | None:
    code = company_code.strip().upper()
    return (
        await session.execute(select(Tenant).where(Tenant.company_code == code))
    ).scalar_one_or_none()


async def bump_revision(session: AsyncSession, tenant_id: str) -> int:
    """Next directory revision of the tenant (row-locked until the transaction ends)."""
    result = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(directory_revision=Tenant.directory_revision + 1)
        .returning(Tenant.directory_revision)
    )
    return int(result.scalar_one())


class Tenants:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def create(
        self,
        principal: Principal | None,
        company_code: str,
        display_name: str,
        job_retention: timedelta | None = None,
    ) -> Tenant:
        """Creates a tenant; principal None means the local admin CLI."""
        if principal is not None and not principal.is_operator:
            raise PermissionDenied("only the platform operator creates tenants")
        code = normalize_company_code(company_code)
        retention = job_retention or self.rt.settings.default_job_retention
        _check_retention(retention)
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            if await tenant_by_code(session, code):
                raise AlreadyExists(f"a tenant with company code {code} exists")
            tenant = Tenant(
                id=new_id(),
                company_code=code,
                display_name=display_name.strip() or code,
                job_retention_seconds=int(retention.total_seconds()),
                directory_revision=0,
                job_counter=0,
                credential_key=secrets.token_bytes(32),
                created_at=now,
            )
            session.add(tenant)
            await session.flush()
            audit(session, now, principal, "tenant.create", code, tenant_id=tenant.id)
        return tenant

    async def get(self, principal: Principal, tenant_id: str = "") -> Tenant:
        if not tenant_id or tenant_id == principal.tenant_id:
            tenant_id = principal.require_tenant()
        elif not principal.is_operator:
            # Another tenant's id answers exactly like an unknown one.
            raise NotFound(f"tenant {tenant_id} not found")
        async with self.rt.db.reader() as session:
            tenant = await session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return tenant

    async def list_tenants(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[Tenant], str]:
        if not principal.is_operator:
            raise PermissionDenied("only the platform operator lists tenants")
        offset, limit = page_window(page_size, page_token)
        async with self.rt.db.reader() as session:
            rows = list(
                (
                    await session.execute(
                        select(Tenant)
                        .order_by(Tenant.created_at, Tenant.id)
                        .offset(offset)
                        .limit(limit)
                    )
                ).scalars()
            )
        return rows, next_page_token(offset, limit, len(rows))

    async def update(self, principal: Principal, tenant_id: str, change: TenantUpdate) -> Tenant:
        if not principal.is_operator:
            principal.require_admin("changing the tenant")
        tenant = await self.get(principal, tenant_id)
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            row = await session.get(Tenant, tenant.id)
            if row is None:
                raise NotFound(f"tenant {tenant.id} not found")
            if change.display_name is not None:
                if not change.display_name.strip():
                    raise InvalidArgument("display_name must not be empty")
                row.display_name = change.display_name.strip()
            if change.job_retention is not None:
                _check_retention(change.job_retention)
                row.job_retention_seconds = int(change.job_retention.total_seconds())
            audit(session, now, principal, "tenant.update", row.company_code, tenant_id=row.id)
        return row

    async def count(self) -> int:
        async with self.rt.db.reader() as session:
            return int(
                (await session.execute(select(func.count()).select_from(Tenant))).scalar_one()
            )


def _check_retention(retention: timedelta) -> None:
    if not timedelta(minutes=1) <= retention <= timedelta(days=365):
        raise InvalidArgument("job retention must be between 1 minute and 365 days")
