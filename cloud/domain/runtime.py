"""What domain services share: database, blob store, token signer, settings and the clock."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from cloud.db.engine import Database
from cloud.db.models import AuditEvent
from cloud.domain.live_sessions import LiveSessions
from cloud.domain.principal import Principal
from cloud.domain.tokens import TokenSigner
from cloud.errors import InvalidArgument

if TYPE_CHECKING:
    from cloud.blobs import BlobStore
    from cloud.bus import Bus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Settings:
    max_job_bytes: int
    refresh_token_ttl: timedelta
    default_job_retention: timedelta
    public_url: str
    upload_url_ttl: timedelta = timedelta(minutes=15)
    download_url_ttl: timedelta = timedelta(minutes=5)
    node_heartbeat: timedelta = timedelta(seconds=15)
    # How long a job made by CreateJob waits for its document (IPP multiple-operation-time-out).
    incoming_job_timeout: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Runtime:
    db: Database
    blobs: BlobStore
    signer: TokenSigner
    settings: Settings
    bus: Bus
    clock: Callable[[], datetime] = utcnow
    live_sessions: LiveSessions = field(default_factory=LiveSessions)


def audit(
    session: AsyncSession,
    now: datetime,
    principal: Principal | None,
    action: str,
    target: str = "",
    detail: str = "",
    tenant_id: str | None = None,
) -> None:
    """Adds an audit event to the caller's transaction."""
    session.add(
        AuditEvent(
            tenant_id=tenant_id
            if tenant_id is not None
            else (principal.tenant_id or None)
            if principal
            else None,
            at=now,
            actor_kind=int(principal.kind) if principal else 0,
            actor_id=principal.subject_id if principal else "",
            action=action,
            target=target,
            detail=detail,
        )
    )


MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def page_window(page_size: int, page_token: str) -> tuple[int, int]:
    """Returns (offset, limit) from a List request's page_size and opaque page_token."""
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative")
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return 0, limit
    try:
        data = json.loads(base64.urlsafe_b64decode(page_token.encode() + b"=="))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument("page_token is not one this server issued") from exc
    if offset < 0:
        raise InvalidArgument("page_token is not one this server issued")
    return offset, limit


def next_page_token(offset: int, limit: int, returned: int) -> str:
    if returned < limit:
        return ""
    raw = json.dumps({"o": offset + returned}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
