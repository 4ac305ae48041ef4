"""Users, PINs, cards, rights and the bulk SyncUsers stream; the revision only moves forward."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.v1 import auth_pb2, common_pb2, directory_pb2, tenant_pb2

from cloud.domain.devices import DeviceFields, Devices
from cloud.domain.enums import DeviceKind
from tests.support.fabric import CloudHarness, Stubs, TenantHandle


async def revision(stubs: Stubs) -> int:
    return (await stubs.tenant.GetTenant(tenant_pb2.GetTenantRequest())).tenant.directory_revision


async def test_admin_manages_users_and_every_change_bumps_the_revision(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    r0 = await revision(t.admin)
    created = await t.admin.directory.CreateUser(
        directory_pb2.CreateUserRequest(
            user=directory_pb2.User(
                login="Carol", email="carol@acme.test", full_name="Carol C", department="Sales"
            ),
            password="pw-carol",
            pin="24680",
            cards=["0x1F2E3D"],
        )
    )
    u = created.user
    assert (u.login, u.has_password, u.has_pin, u.card_count) == ("Carol", True, True, 1)
    assert set(u.rights) == {
        common_pb2.ACCESS_RIGHT_PRINT,
        common_pb2.ACCESS_RIGHT_COPY,
        common_pb2.ACCESS_RIGHT_SCAN,
        common_pb2.ACCESS_RIGHT_COLOR,
    }
    r1 = await revision(t.admin)
    assert r1 > r0
    updated = await t.admin.directory.UpdateUser(
        directory_pb2.UpdateUserRequest(
            user=directory_pb2.User(
                user_id=u.user_id, department="Support", rights=[common_pb2.ACCESS_RIGHT_PRINT]
            ),
            update_mask=FieldMask(paths=["department", "rights"]),
        )
    )
    assert updated.user.department == "Support" and list(updated.user.rights) == [
        common_pb2.ACCESS_RIGHT_PRINT
    ]
    assert updated.user.email == "carol@acme.test"
    await t.admin.directory.AddCard(directory_pb2.AddCardRequest(user_id=u.user_id, card="777"))
    await t.admin.directory.RemoveCard(
        directory_pb2.RemoveCardRequest(user_id=u.user_id, card="2043453")
    )  # = 0x1F2E3D
    got = (await t.admin.directory.GetUser(directory_pb2.GetUserRequest(user_id=u.user_id))).user
    assert got.card_count == 1
    assert await revision(t.admin) > r1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.directory.CreateUser(
            directory_pb2.CreateUserRequest(user=directory_pb2.User(login="carol"))
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (directory_pb2.SetPinRequest(pin="12"), grpc.StatusCode.INVALID_ARGUMENT),
        (directory_pb2.SetPinRequest(pin="12ab"), grpc.StatusCode.INVALID_ARGUMENT),
        (directory_pb2.SetPinRequest(pin="1111"), grpc.StatusCode.ALREADY_EXISTS),
    ],
)
async def test_pins_are_digits_and_unique_in_the_tenant(
    cloud: CloudHarness, request_: directory_pb2.SetPinRequest, code: grpc.StatusCode
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "first", pin="1111")
    second = await cloud.add_user(t, "second")
    me = (await second.directory.GetUser(directory_pb2.GetUserRequest(login="second"))).user
    request_.user_id = me.user_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await second.directory.SetPin(request_)
    assert err.value.code() == code


async def sync_stream(
    header: directory_pb2.SyncUsersHeader, records: list[directory_pb2.SyncUserRecord]
) -> AsyncIterator[directory_pb2.SyncUsersRequest]:
    yield directory_pb2.SyncUsersRequest(header=header)
    for r in records:
        yield directory_pb2.SyncUsersRequest(record=r)


async def sync_agent(cloud: CloudHarness, t: TenantHandle) -> Stubs:
    _, token = await Devices(cloud.rt).create_device(
        None, t.tenant_id, DeviceFields(kind=DeviceKind.SYNC_AGENT, serial_number="ad-sync")
    )
    anon = await cloud.stubs()
    resp = await anon.auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code,
            serial_number="ad-sync",
            access_token=token,
            kind=auth_pb2.DEVICE_KIND_SYNC_AGENT,
        )
    )
    return await cloud.stubs(resp.tokens.access_token)


async def test_sync_creates_updates_disables_and_reports_problems_per_user(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    agent = await sync_agent(cloud, t)
    ldap = directory_pb2.SyncUsersHeader(
        source=common_pb2.USER_SOURCE_LDAP, full=True, request_id="run-1"
    )
    records = [
        directory_pb2.SyncUserRecord(
            login=f"user{i:03d}", email=f"u{i}@acme.test", full_name=f"User {i}", pin=f"{5000 + i}"
        )
        for i in range(50)
    ]
    records += [
        directory_pb2.SyncUserRecord(login="user001", email="dupe@acme.test"),
        directory_pb2.SyncUserRecord(login="badpin", pin="12x4"),
        directory_pb2.SyncUserRecord(login="samepin", pin="5000"),
        directory_pb2.SyncUserRecord(login=" ", email="nologin@acme.test"),
    ]
    first = await agent.directory.SyncUsers(sync_stream(ldap, records))
    assert (first.created, first.updated, first.disabled) == (52, 0, 0)
    reasons = {p.login: p.reason for p in first.problems}
    assert set(reasons) == {"user001", "badpin", "samepin", " "}
    assert (
        "twice" in reasons["user001"]
        and "PIN" in reasons["badpin"]
        and "same PIN" in reasons["samepin"]
    )
    # The same run id again is answered from its record, not applied twice.
    again = await agent.directory.SyncUsers(sync_stream(ldap, records))
    assert (again.created, again.directory_revision) == (52, first.directory_revision)
    # Next run: 5 changed, 10 gone (disabled, not deleted), the rest unchanged.
    second_records = [
        directory_pb2.SyncUserRecord(login=r.login, email=r.email, full_name=r.full_name, pin=r.pin)
        for r in records[10:50]
    ]
    for r in second_records[:5]:
        r.department = "Moved"
    second = await agent.directory.SyncUsers(
        sync_stream(
            directory_pb2.SyncUsersHeader(
                source=common_pb2.USER_SOURCE_LDAP, full=True, request_id="run-2"
            ),
            second_records,
        )
    )
    assert (second.created, second.updated, second.unchanged) == (0, 5, 35)
    assert second.disabled == 12  # user000..user009 plus badpin and samepin
    assert second.directory_revision > first.directory_revision
    users = await t.admin.directory.ListUsers(
        directory_pb2.ListUsersRequest(include_disabled=True, page_size=1000)
    )
    by_login = {u.login: u for u in users.users}
    assert by_login["user000"].disabled and not by_login["user010"].disabled
    assert (
        by_login["admin"].source == common_pb2.USER_SOURCE_LOCAL and not by_login["admin"].disabled
    )
    assert by_login["user010"].department == "Moved"


async def test_sync_needs_a_sync_agent_or_admin_and_a_header_first(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.directory.SyncUsers(
            sync_stream(directory_pb2.SyncUsersHeader(source=common_pb2.USER_SOURCE_LDAP), [])
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def no_header() -> AsyncIterator[directory_pb2.SyncUsersRequest]:
        yield directory_pb2.SyncUsersRequest(record=directory_pb2.SyncUserRecord(login="x"))

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.directory.SyncUsers(no_header())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_sync_binds_cards_to_new_and_existing_users_and_replaces_them(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    agent = await sync_agent(cloud, t)
    header = directory_pb2.SyncUsersHeader(source=common_pb2.USER_SOURCE_LDAP)
    first = [directory_pb2.SyncUserRecord(login=f"u{i}", cards=[f"{1000 + i}"]) for i in range(3)]
    done = await agent.directory.SyncUsers(sync_stream(header, first))
    assert (done.created, list(done.problems)) == (3, [])
    moved = [
        directory_pb2.SyncUserRecord(login="u0", cards=["0x3E8", "2000"], replace_cards=True),
        directory_pb2.SyncUserRecord(login="u1", cards=["1000"]),  # u0's card: refused
    ]
    again = await agent.directory.SyncUsers(sync_stream(header, moved))
    assert [p.login for p in again.problems] == ["u1"]
    anon = await cloud.stubs()
    by_card = await anon.auth.AuthenticateUser(
        auth_pb2.AuthenticateUserRequest(
            company_code=t.company_code, credential=auth_pb2.UserCredential(card="2000")
        )
    )
    assert by_card.user.login == "u0" and by_card.user.card_count == 2
