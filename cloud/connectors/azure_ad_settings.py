"""A tenant's Azure AD sync settings and state in the cloud database, and the run lease."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.connectors.azure_records import AttributeMapping
from cloud.connectors.sealing import SecretBox
from cloud.db.models import AzureAdConnection, AzureAdUser, Tenant
from cloud.domain.runtime import Runtime, audit
from cloud.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_INTERVAL = timedelta(hours=1)
MIN_INTERVAL, MAX_INTERVAL = timedelta(minutes=1), timedelta(days=7)
# A failed round is tried again after its interval, but not later than this.
RETRY_AFTER_FAILURE = timedelta(minutes=15)

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$")
_CLIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def secret_context(tenant_id: str) -> str:
    return f"azure-ad-client-secret:{tenant_id}"


@dataclass(frozen=True)
class AzureAdChange:
    """Settings given to `azure-ad set`; None keeps what is stored (a new one needs the first
    three and a client secret)."""

    azure_tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    ca_file: str | None = None
    login_attribute: str | None = None
    pin_attribute: str | None = None
    card_attribute: str | None = None
    interval: timedelta | None = None


@dataclass(frozen=True)
class AzureAdStatus:
    company_code: str
    enabled: bool
    azure_tenant_id: str
    client_id: str
    authority_host: str
    graph_url: str
    ca_file: str
    mapping: AttributeMapping
    interval: timedelta
    next_run_at: datetime | None
    running_until: datetime | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_result: dict[str, Any]
    delta: bool

    def as_dict(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "company_code": self.company_code,
            "enabled": self.enabled,
            "azure_tenant_id": self.azure_tenant_id,
            "client_id": self.client_id,
            "authority_host": self.authority_host,
            "graph_url": self.graph_url,
            "ca_file": self.ca_file,
            "login_attribute": self.mapping.login,
            "pin_attribute": self.mapping.pin,
            "card_attribute": self.mapping.card,
            "interval_seconds": int(self.interval.total_seconds()),
            "next_run_at": when(self.next_run_at),
            "running_until": when(self.running_until),
            "last_run_at": when(self.last_run_at),
            "last_success_at": when(self.last_success_at),
            "next_round": "delta" if self.delta else "full",
            "last_result": self.last_result,
        }


def mapping_of(row: AzureAdConnection) -> AttributeMapping:
    return AttributeMapping(row.login_attribute, row.pin_attribute, row.card_attribute)


async def configure(
    rt: Runtime, box: SecretBox, tenant_id: str, change: AzureAdChange
) -> AzureAdConnection:
    """Creates or changes a tenant's sync and enables it; the next round is a full one, soon."""
    now = rt.clock()
    async with rt.db.session() as session, session.begin():
        if await session.get(Tenant, tenant_id) is None:
            raise NotFound("tenant not found")
        row = await session.get(AzureAdConnection, tenant_id)
        if row is None:
            missing = [
                flag
                for flag, value in (
                    ("--azure-tenant", change.azure_tenant_id),
                    ("--client-id", change.client_id),
                    ("a client secret", change.client_secret),
                )
                if not value
            ]
            if missing:
                raise InvalidArgument(f"a new Azure AD sync needs {', '.join(missing)}")
            row = AzureAdConnection(
                tenant_id=tenant_id,
                authority_host=DEFAULT_AUTHORITY,
                graph_url=DEFAULT_GRAPH_URL,
                ca_file="",
                login_attribute="userPrincipalName",
                pin_attribute="",
                card_attribute="",
                interval_seconds=int(DEFAULT_INTERVAL.total_seconds()),
                generation=0,
                rounds=0,
                delta_link="",
                lease_owner="",
                last_result="{}",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        before = _what_is_read(row)
        _apply(row, change, box)
        if _what_is_read(row) != before:
            # Another directory, app or mapping: the delta link (it carries the old $select)
            # and what was read are of no use; the next round is a full one.
            row.generation = (row.generation or 0) + 1
            row.rounds = 0
            row.delta_link = ""
            await session.execute(delete(AzureAdUser).where(AzureAdUser.tenant_id == tenant_id))
        row.enabled = True
        row.next_run_at = now
        row.updated_at = now
        audit(
            session,
            now,
            None,
            "azure_ad.configure",
            row.azure_tenant_id,
            f"client_id={row.client_id} login={row.login_attribute}"
            f" interval={row.interval_seconds}s",
            tenant_id=tenant_id,
        )
    return row


def _what_is_read(row: AzureAdConnection) -> tuple[str | None, ...]:
    return (
        row.azure_tenant_id,
        row.client_id,
        row.graph_url,
        row.login_attribute,
        row.pin_attribute,
        row.card_attribute,
    )


def _apply(row: AzureAdConnection, change: AzureAdChange, box: SecretBox) -> None:
    if change.azure_tenant_id is not None:
        row.azure_tenant_id = _matching(_TENANT, change.azure_tenant_id, "Azure tenant id")
    if change.client_id is not None:
        row.client_id = _matching(_CLIENT, change.client_id, "client id")
    if change.client_secret is not None:
        secret = change.client_secret.strip()
        if not secret or len(secret) > 1024:
            raise InvalidArgument("the client secret is empty or longer than 1024 characters")
        row.client_secret = box.seal(secret, secret_context(row.tenant_id))
    if change.authority_host is not None:
        row.authority_host = _https_url(change.authority_host, "authority", path=False)
    if change.graph_url is not None:
        row.graph_url = _https_url(change.graph_url, "Graph URL", path=True)
    if change.ca_file is not None:
        row.ca_file = _ca_file(change.ca_file)
    mapping = AttributeMapping(
        change.login_attribute if change.login_attribute is not None else row.login_attribute,
        change.pin_attribute if change.pin_attribute is not None else row.pin_attribute,
        change.card_attribute if change.card_attribute is not None else row.card_attribute,
    )
    row.login_attribute, row.pin_attribute, row.card_attribute = (
        mapping.login,
        mapping.pin,
        mapping.card,
    )
    if change.interval is not None:
        if not MIN_INTERVAL <= change.interval <= MAX_INTERVAL:
            raise InvalidArgument("the sync interval is between 1 minute and 7 days")
        row.interval_seconds = int(change.interval.total_seconds())


def _matching(pattern: re.Pattern[str], value: str, what: str) -> str:
    value = value.strip()
    if not pattern.match(value):
        raise InvalidArgument(f"{value!r} is not a valid {what}")
    return value


def _https_url(value: str, what: str, path: bool) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise InvalidArgument(f"the {what} is an https:// URL, not {value!r}")
    if parts.path and not path:
        raise InvalidArgument(f"the {what} is a scheme and host only (e.g. {DEFAULT_AUTHORITY})")
    return value


def _ca_file(value: str) -> str:
    if not value.strip():
        return ""
    path = Path(value.strip()).expanduser().resolve()
    if not path.is_file():
        raise InvalidArgument(f"the CA file {path} does not exist")
    return str(path)


async def disable(rt: Runtime, tenant_id: str) -> None:
    """Stops the schedule; settings and state stay (`azure-ad set` enables it again)."""
    now = rt.clock()
    async with rt.db.session() as session, session.begin():
        row = await _row(session, tenant_id)
        row.enabled = False
        row.updated_at = now
        audit(session, now, None, "azure_ad.disable", row.azure_tenant_id, tenant_id=tenant_id)


async def _row(session: AsyncSession, tenant_id: str) -> AzureAdConnection:
    row = await session.get(AzureAdConnection, tenant_id)
    if row is None:
        raise NotFound(
            "this tenant has no Azure AD sync; set one up with `printfabric-cloud azure-ad set`",
            reason="AZURE_AD_NOT_CONFIGURED",
        )
    return row


async def statuses(rt: Runtime, tenant_id: str | None = None) -> list[AzureAdStatus]:
    query = (
        select(AzureAdConnection, Tenant.company_code)
        .join(Tenant, Tenant.id == AzureAdConnection.tenant_id)
        .order_by(Tenant.company_code)
    )
    if tenant_id is not None:
        query = query.where(AzureAdConnection.tenant_id == tenant_id)
    now = rt.clock()
    async with rt.db.reader() as session:
        rows = list((await session.execute(query)).tuples())
    if tenant_id is not None and not rows:
        raise NotFound(
            "this tenant has no Azure AD sync; set one up with `printfabric-cloud azure-ad set`",
            reason="AZURE_AD_NOT_CONFIGURED",
        )
    return [
        AzureAdStatus(
            company_code=code,
            enabled=row.enabled,
            azure_tenant_id=row.azure_tenant_id,
            client_id=row.client_id,
            authority_host=row.authority_host,
            graph_url=row.graph_url,
            ca_file=row.ca_file,
            mapping=mapping_of(row),
            interval=timedelta(seconds=row.interval_seconds),
            next_run_at=row.next_run_at if row.enabled else None,
            running_until=row.lease_until
            if row.lease_until is not None and row.lease_until > now
            else None,
            last_run_at=row.last_run_at,
            last_success_at=row.last_success_at,
            last_result=json.loads(row.last_result or "{}"),
            delta=bool(row.delta_link),
        )
        for row, code in rows
    ]


async def due_tenants(rt: Runtime, now: datetime, limit: int = 20) -> list[str]:
    async with rt.db.reader() as session:
        return list(
            (
                await session.execute(
                    select(AzureAdConnection.tenant_id)
                    .where(
                        AzureAdConnection.enabled.is_(True),
                        AzureAdConnection.next_run_at <= now,
                        _lease_free(now),
                    )
                    .order_by(AzureAdConnection.next_run_at)
                    .limit(limit)
                )
            ).scalars()
        )


def _lease_free(now: datetime) -> Any:
    return or_(AzureAdConnection.lease_until.is_(None), AzureAdConnection.lease_until < now)


async def claim(
    rt: Runtime, tenant_id: str, owner: str, lease: timedelta, due_only: bool
) -> AzureAdConnection | None:
    """Takes the tenant's run for owner until the lease ends; None when another replica holds
    it (or, with due_only, when it is not due any more). One conditional UPDATE: two replicas
    never both succeed."""
    now = rt.clock()
    async with rt.db.session() as session, session.begin():
        query = (
            update(AzureAdConnection)
            .where(
                AzureAdConnection.tenant_id == tenant_id,
                AzureAdConnection.enabled.is_(True),
                _lease_free(now),
            )
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(AzureAdConnection.tenant_id)
        )
        if due_only:
            query = query.where(AzureAdConnection.next_run_at <= now)
        if (await session.execute(query)).scalar_one_or_none() is None:
            if due_only:
                return None
            row = await _row(session, tenant_id)
            if not row.enabled:
                raise FailedPrecondition(
                    "the Azure AD sync of this tenant is disabled; `azure-ad set` enables it",
                    reason="AZURE_AD_DISABLED",
                )
            until = row.lease_until or now
            raise Aborted(
                "a sync of this tenant is running on a cloud replica (until"
                f" {until:%Y-%m-%d %H:%M:%S} UTC at the latest); try again later",
                reason="AZURE_AD_RUNNING",
            )
        return await session.get(AzureAdConnection, tenant_id, populate_existing=True)
