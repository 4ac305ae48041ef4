"""Accounting entries: stored once per request id, however often a device or node resends them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from sqlalchemy.dialects import postgresql, sqlite

from cloud.db.models import AccountingEntry
from cloud.domain.runtime import Runtime, new_id
from cloud.errors import InvalidArgument


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
    now = rt.clock()
    rows = [
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
    dialect = postgresql if not rt.db.is_sqlite else sqlite
    # A resent batch hits the (tenant_id, request_id) unique key: skip those rows, keep the rest.
    statement = dialect.insert(AccountingEntry).on_conflict_do_nothing(
        index_elements=["tenant_id", "request_id"]
    )
    async with rt.db.session() as session, session.begin():
        result = await session.execute(statement, rows)
    return max(0, int(getattr(result, "rowcount", 0) or 0))
