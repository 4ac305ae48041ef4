"""AccountingService: devices record usage once per request id; users and admins read it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import accounting_pb2, accounting_pb2_grpc, auth_pb2, device_pb2
from sqlalchemy import func, select

from cloud.db.models import AccountingEntry
from tests.support.fabric import CloudHarness, Stubs, TenantHandle

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


def entry(request_id: str, login: str = "bob", **kw: Any) -> accounting_pb2.UsageEntry:
    fields: dict[str, Any] = {
        "kind": accounting_pb2.USAGE_KIND_COPY,
        "pages": 3,
        "sheets": 2,
        "mono_pages": 3,
        "occur_time": at(T0),
        "document_name": "copy",
    }
    fields.update(kw)
    return accounting_pb2.UsageEntry(request_id=request_id, user_login=login, **fields)


def accounting(stubs: Stubs) -> accounting_pb2_grpc.AccountingServiceStub:
    return accounting_pb2_grpc.AccountingServiceStub(stubs.channel)


async def record(stubs: Stubs, e: accounting_pb2.UsageEntry) -> accounting_pb2.RecordUsageResponse:
    reply: accounting_pb2.RecordUsageResponse = await accounting(stubs).RecordUsage(
        accounting_pb2.RecordUsageRequest(entry=e)
    )
    return reply


async def refused(stubs: Stubs, e: accounting_pb2.UsageEntry) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await record(stubs, e)
    return err.value


def reason(err: grpc.aio.AioRpcError) -> str:
    return next((str(v) for k, v in err.trailing_metadata() or () if k == "pf-error-reason"), "")


async def device_stubs(
    cloud: CloudHarness, t: TenantHandle, serial: str, node: bool = False
) -> tuple[Stubs, str]:
    """Stubs with the access token of a new MFP (or node) of the tenant, and its id."""
    if node:
        made = await t.admin.device.CreateNode(
            device_pb2.CreateNodeRequest(node=device_pb2.Node(serial_number=serial))
        )
        token, kind = made.access_token, auth_pb2.DEVICE_KIND_NODE
    else:
        created = await t.admin.device.CreateDevice(
            device_pb2.CreateDeviceRequest(device=device_pb2.Device(serial_number=serial))
        )
        token, kind = created.access_token, auth_pb2.DEVICE_KIND_MFP
    anon = await cloud.stubs()
    login = await anon.auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code, serial_number=serial, access_token=token, kind=kind
        )
    )
    return await cloud.stubs(login.tokens.access_token), login.device_id


async def stored(cloud: CloudHarness, tenant_id: str) -> int:
    async with cloud.rt.db.reader() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(AccountingEntry)
                    .where(AccountingEntry.tenant_id == tenant_id)
                )
            ).scalar_one()
        )


async def test_a_replayed_request_id_is_answered_from_the_one_stored_entry(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob")
    mfp, mfp_id = await device_stubs(cloud, t, "MFP-1")
    # The device names the user in any case and cannot speak for another device.
    first = await record(mfp, entry("jba-1", login="BOB", device_id="someone-else"))
    assert not first.duplicate
    assert first.entry.user_login == "bob" and first.entry.device_id == mfp_id
    assert first.entry.pages == 3 and first.entry.occur_time.ToDatetime(tzinfo=UTC) == T0
    again = await record(mfp, entry("jba-1", pages=99))
    assert again.duplicate and again.entry == first.entry
    assert await stored(cloud, t.tenant_id) == 1


async def test_bad_entries_are_invalid_and_store_nothing(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob")
    mfp, _ = await device_stubs(cloud, t, "MFP-1")
    err = await refused(mfp, entry("e-1", login="nobody"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(err) == "UNKNOWN_USER"
    assert "no user with login nobody" in (err.details() or "")
    for bad in (
        entry("e-2", pages=-1),
        entry("e-3", color_pages=-5),
        entry("", pages=1),
        entry("e-4", login=""),
        entry("e-5", kind=accounting_pb2.USAGE_KIND_UNSPECIFIED),
        accounting_pb2.UsageEntry(request_id="e-6", user_login="bob", pages=1),  # no time
        entry("e-7", job_id="x" * 33),
    ):
        err = await refused(mfp, bad)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    assert await stored(cloud, t.tenant_id) == 0


async def test_tenants_are_walled_off(cloud: CloudHarness) -> None:
    a = await cloud.make_tenant("ACME")
    b = await cloud.make_tenant("GLOBEX")
    await cloud.add_user(a, "bob")
    await cloud.add_user(b, "carol")
    mfp_a, _ = await device_stubs(cloud, a, "MFP-A")
    mfp_b, _ = await device_stubs(cloud, b, "MFP-B")
    await record(mfp_a, entry("same-id"))
    # B's device cannot record for A's user, and the same id in B is B's own entry.
    err = await refused(mfp_b, entry("other", login="bob"))
    assert reason(err) == "UNKNOWN_USER"
    in_b = await record(mfp_b, entry("same-id", login="carol"))
    assert not in_b.duplicate and in_b.entry.user_login == "carol"
    listed = await accounting(b.admin).ListUsage(accounting_pb2.ListUsageRequest())
    assert [e.user_login for e in listed.entries] == ["carol"]
    assert await stored(cloud, a.tenant_id) == 1 and await stored(cloud, b.tenant_id) == 1


async def test_a_request_id_another_device_used_is_refused_not_swallowed(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob")
    one, _ = await device_stubs(cloud, t, "MFP-1")
    two, _ = await device_stubs(cloud, t, "MFP-2")
    await record(one, entry("42"))
    err = await refused(two, entry("42"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and reason(err) == "REQUEST_ID_IN_USE"
    assert await stored(cloud, t.tenant_id) == 1


async def test_users_list_their_own_usage_and_admins_the_tenants_with_totals(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    bob = await cloud.add_user(t, "bob")
    await cloud.add_user(t, "carol")
    mfp, _ = await device_stubs(cloud, t, "MFP-1")
    node, _ = await device_stubs(cloud, t, "NODE-1", node=True)
    print_ = accounting_pb2.USAGE_KIND_PRINT
    scan = accounting_pb2.USAGE_KIND_SCAN
    await record(mfp, entry("b-1", pages=4, sheets=2, color_pages=1))
    await record(
        mfp, entry("b-2", kind=print_, pages=10, sheets=5, occur_time=at(T0 + timedelta(hours=1)))
    )
    await record(node, entry("c-1", login="carol", kind=scan, pages=7, sheets=0, device_id="jba-7"))
    await record(
        t.admin,
        entry(
            "c-2",
            login="carol",
            kind=print_,
            pages=1,
            sheets=1,
            occur_time=at(T0 - timedelta(days=1)),
        ),
    )

    mine = await accounting(bob).ListUsage(accounting_pb2.ListUsageRequest())
    assert [e.request_id for e in mine.entries] == ["b-2", "b-1"]  # newest first
    for who, call in (
        (bob, accounting(bob).ListUsage(accounting_pb2.ListUsageRequest(user_login="carol"))),
        (bob, accounting(bob).SummarizeUsage(accounting_pb2.SummarizeUsageRequest())),
        (mfp, accounting(mfp).ListUsage(accounting_pb2.ListUsageRequest())),
        (bob, accounting(bob).RecordUsage(accounting_pb2.RecordUsageRequest(entry=entry("b-9")))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, who

    admin = accounting(t.admin)
    carol = await admin.ListUsage(accounting_pb2.ListUsageRequest(user_login="CAROL"))
    assert [e.request_id for e in carol.entries] == ["c-1", "c-2"]
    today = await admin.ListUsage(
        accounting_pb2.ListUsageRequest(start_time=at(T0), end_time=at(T0 + timedelta(hours=1)))
    )
    assert sorted(e.request_id for e in today.entries) == ["b-1", "c-1"]
    page = await admin.ListUsage(accounting_pb2.ListUsageRequest(page_size=3))
    rest = await admin.ListUsage(
        accounting_pb2.ListUsageRequest(page_size=3, page_token=page.next_page_token)
    )
    assert len(page.entries) == 3 and len(rest.entries) == 1 and not rest.next_page_token

    totals = await admin.SummarizeUsage(accounting_pb2.SummarizeUsageRequest())
    assert [
        (x.user_login, x.print_pages, x.copy_pages, x.scan_pages, x.color_pages, x.sheets)
        for x in totals.totals
    ] == [("bob", 10, 4, 0, 1, 7), ("carol", 1, 0, 7, 0, 1)]
    since = await admin.SummarizeUsage(accounting_pb2.SummarizeUsageRequest(start_time=at(T0)))
    assert [(x.user_login, x.print_pages) for x in since.totals] == [("bob", 10), ("carol", 0)]
