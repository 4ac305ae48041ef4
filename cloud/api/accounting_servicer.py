"""AccountingService: usage entries recorded by devices, nodes and admins; lists and totals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import accounting_pb2, accounting_pb2_grpc

from cloud.api.convert import ts, usage_record
from cloud.api.interceptor import caller
from cloud.db.models import AccountingEntry
from cloud.domain.accounting import Accounting, Period, UsageTotals

Ctx = grpc.aio.ServicerContext[Any, Any]


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def usage_entry(row: AccountingEntry) -> accounting_pb2.UsageEntry:
    return accounting_pb2.UsageEntry(
        entry_id=row.id,
        request_id=row.request_id,
        kind=row.kind,  # type: ignore[arg-type]
        user_login=row.user_login,
        document_name=row.document_name,
        device_id=row.device_id or "",
        job_id=row.job_id or "",
        pages=row.pages,
        sheets=row.sheets,
        color_pages=row.color_pages,
        mono_pages=row.mono_pages,
        duplex=row.duplex,
        paper_size=row.paper_size,
        occur_time=ts(row.occurred_at),
        record_time=ts(row.recorded_at),
    )


_INT32_MAX = 2**31 - 1


def usage_totals(t: UsageTotals) -> accounting_pb2.UsageTotals:
    # The fields are int32: a total beyond it is shown as the largest value, not an error.
    return accounting_pb2.UsageTotals(
        user_login=t.user_login,
        print_pages=min(t.print_pages, _INT32_MAX),
        copy_pages=min(t.copy_pages, _INT32_MAX),
        scan_pages=min(t.scan_pages, _INT32_MAX),
        color_pages=min(t.color_pages, _INT32_MAX),
        sheets=min(t.sheets, _INT32_MAX),
    )


class AccountingServicer(accounting_pb2_grpc.AccountingServiceServicer):
    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting

    async def RecordUsage(
        self, request: accounting_pb2.RecordUsageRequest, context: Ctx
    ) -> accounting_pb2.RecordUsageResponse:
        row, duplicate = await self.accounting.record(caller(), usage_record(request.entry))
        return accounting_pb2.RecordUsageResponse(entry=usage_entry(row), duplicate=duplicate)

    async def ListUsage(
        self, request: accounting_pb2.ListUsageRequest, context: Ctx
    ) -> accounting_pb2.ListUsageResponse:
        rows, token = await self.accounting.list_usage(
            caller(),
            request.page_size,
            request.page_token,
            request.user_login,
            Period(_time(request, "start_time"), _time(request, "end_time")),
        )
        return accounting_pb2.ListUsageResponse(
            entries=[usage_entry(r) for r in rows], next_page_token=token
        )

    async def SummarizeUsage(
        self, request: accounting_pb2.SummarizeUsageRequest, context: Ctx
    ) -> accounting_pb2.SummarizeUsageResponse:
        totals = await self.accounting.summarize(
            caller(), Period(_time(request, "start_time"), _time(request, "end_time"))
        )
        return accounting_pb2.SummarizeUsageResponse(totals=[usage_totals(t) for t in totals])
