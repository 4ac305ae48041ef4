"""Users by password, PIN and card; devices and nodes by token; refresh, revoke, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import pytest
from printfabric.v1 import auth_pb2, device_pb2, directory_pb2, spool_pb2
from sqlalchemy import update

from cloud.db.models import Session
from cloud.domain.devices import DeviceFields, Devices
from cloud.domain.enums import DeviceKind
from cloud.domain.live_sessions import RECHECK_SECONDS, LiveSessions
from tests.support.fabric import CloudHarness


def cred(**kw: Any) -> auth_pb2.UserCredential:
    if "login" in kw:
        return auth_pb2.UserCredential(
            password=auth_pb2.PasswordCredential(login=kw["login"], password=kw["password"])
        )
    return auth_pb2.UserCredential(**kw)


async def authenticate(
    cloud: CloudHarness, code: str, credential: auth_pb2.UserCredential
) -> auth_pb2.AuthenticateUserResponse:
    anon = await cloud.stubs()
    return await anon.auth.AuthenticateUser(
        auth_pb2.AuthenticateUserRequest(company_code=code, credential=credential)
    )


async def test_user_logs_in_by_password_pin_and_card_in_any_reader_notation(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob", pin="4711", cards=["0004514265"])
    by_pw = await authenticate(cloud, t.company_code, cred(login="BOB", password="pw-bob"))
    assert by_pw.user.login == "bob" and by_pw.user.has_pin and by_pw.user.card_count == 1
    by_pin = await authenticate(cloud, t.company_code.lower(), cred(pin="4711"))
    assert by_pin.user.user_id == by_pw.user.user_id
    # 4514265 decimal is 0x44E1D9: the reader's hex notation finds the same user.
    for notation in ("4514265", "44e1d9", "0x44E1D9", "00 44 E1 D9"):
        by_card = await authenticate(cloud, t.company_code, cred(card=notation))
        assert by_card.user.user_id == by_pw.user.user_id, notation


@pytest.mark.parametrize(
    "credential",
    [
        {"login": "bob", "password": "wrong"},
        {"login": "nobody", "password": "pw-bob"},
        {"pin": "0000"},
        # (A well-formed card nobody has answers UNKNOWN_CARD: tests/test_auth_limits.py.)
        {"card": "not-a-card!"},
    ],
)
async def test_wrong_credentials_are_unauthenticated_with_one_message(
    cloud: CloudHarness, credential: dict[str, str]
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob", pin="4711", cards=["999"])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await authenticate(cloud, t.company_code, cred(**credential))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "wrong company code, login, password, PIN or card"


async def test_disabled_user_is_refused_and_loses_its_sessions(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    bob = await cloud.add_user(t, "bob", "pw-bob")
    me = await bob.directory.GetUser(directory_pb2.GetUserRequest(login="bob"))
    await t.admin.directory.DisableUser(directory_pb2.DisableUserRequest(user_id=me.user.user_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await authenticate(cloud, t.company_code, cred(login="bob", password="pw-bob"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "disabled" in (err.value.details() or "")


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    first = await authenticate(cloud, t.company_code, cred(login="bob", password="pw-bob"))
    anon = await cloud.stubs()
    second = await anon.auth.RefreshToken(
        auth_pb2.RefreshTokenRequest(refresh_token=first.tokens.refresh_token)
    )
    assert second.tokens.refresh_token != first.tokens.refresh_token
    bob = await cloud.stubs(second.tokens.access_token)
    await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await anon.auth.RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=first.tokens.refresh_token)
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The reuse looked like theft: the whole session is gone, also for the new tokens.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_revoked_session_refuses_its_access_token(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    login = await authenticate(cloud, t.company_code, cred(login="bob", password="pw-bob"))
    bob = await cloud.stubs(login.tokens.access_token)
    await bob.auth.RevokeToken(
        auth_pb2.RevokeTokenRequest(refresh_token=login.tokens.refresh_token)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (err.value.details() or "")


async def test_a_session_revoked_by_another_process_is_refused_after_the_recheck(
    cloud: CloudHarness,
) -> None:
    """A session read as live is trusted for RECHECK_SECONDS (one read a second, not one per
    call); a revocation written by another cloud process (here: straight into the database)
    is seen once that time is up."""
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    login = await authenticate(cloud, t.company_code, cred(login="bob", password="pw-bob"))
    bob = await cloud.stubs(login.tokens.access_token)
    await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    session_id = login.tokens.refresh_token.partition(".")[0]
    async with cloud.rt.db.session() as session, session.begin():
        await session.execute(update(Session).where(Session.id == session_id).values(revoked=True))
    await asyncio.sleep(RECHECK_SECONDS + 0.2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await bob.spool.ListJobs(spool_pb2.ListJobsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_live_sessions_are_read_again_after_the_recheck_and_forgotten_on_revocation() -> None:
    now = [100.0]
    live = LiveSessions(recheck_seconds=1.0, max_entries=3, clock=lambda: now[0])
    live.remember("s1", "bob", "t1")
    live.remember("s2", "bob", "t1")
    live.remember("s3", "ann", "t1")
    assert live.tenant_of("s1") == "t1"
    live.forget_principal("bob")  # a disabled user: all of its sessions at once
    assert live.tenant_of("s1") is None and live.tenant_of("s2") is None
    assert live.tenant_of("s3") == "t1"
    now[0] += 1.0
    assert live.tenant_of("s3") is None  # due for a read
    for i in range(5):  # bounded: stale entries go first, then everything
        live.remember(f"x{i}", "carl", "t2")
    assert sum(live.tenant_of(f"x{i}") is not None for i in range(5)) <= 3


async def test_expired_and_forged_and_missing_tokens_are_refused(
    sqlite_cloud: CloudHarness,
) -> None:
    cloud = sqlite_cloud
    t = await cloud.make_tenant("ACME")
    login = await authenticate(cloud, t.company_code, cred(login="admin", password="admin-pass"))
    token = login.tokens.access_token
    real_clock = cloud.rt.clock
    object.__setattr__(cloud.rt, "clock", lambda: real_clock() + timedelta(hours=1))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await (await cloud.stubs(token)).spool.ListJobs(spool_pb2.ListJobsRequest())
    finally:
        object.__setattr__(cloud.rt, "clock", real_clock)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (err.value.details() or "")
    head, payload, sig = token.split(".")
    forged = f"{head}.{payload}.{sig[::-1]}"
    for bad, needle in ((forged, "invalid access token"), ("", "authorization")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await (await cloud.stubs(bad)).spool.ListJobs(spool_pb2.ListJobsRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert needle in (err.value.details() or "")


async def test_device_and_node_authenticate_and_are_revocable(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    created = await t.admin.device.CreateDevice(
        device_pb2.CreateDeviceRequest(
            device=device_pb2.Device(serial_number="MFP-1", printer_id="")
        )
    )
    node = await t.admin.device.CreateNode(
        device_pb2.CreateNodeRequest(node=device_pb2.Node(serial_number="N-1"))
    )
    anon = await cloud.stubs()

    async def device_login(
        serial: str, token: str, kind: Any
    ) -> auth_pb2.AuthenticateDeviceResponse:
        return await anon.auth.AuthenticateDevice(
            auth_pb2.AuthenticateDeviceRequest(
                company_code=t.company_code, serial_number=serial, access_token=token, kind=kind
            )
        )

    mfp = await device_login("MFP-1", created.access_token, auth_pb2.DEVICE_KIND_MFP)
    assert mfp.device_id == created.device.device_id
    n = await device_login("N-1", node.access_token, auth_pb2.DEVICE_KIND_NODE)
    assert n.device_id == node.node.node_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await device_login("MFP-1", node.access_token, auth_pb2.DEVICE_KIND_MFP)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    device_stubs = await cloud.stubs(mfp.tokens.access_token)
    config = await device_stubs.device.GetDeviceConfig(device_pb2.GetDeviceConfigRequest())
    assert config.device.serial_number == "MFP-1" and config.tenant_display_name.endswith("Inc.")
    await t.admin.device.DeleteDevice(
        device_pb2.DeleteDeviceRequest(device_id=created.device.device_id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await device_stubs.device.GetDeviceConfig(device_pb2.GetDeviceConfigRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await device_login("MFP-1", created.access_token, auth_pb2.DEVICE_KIND_MFP)
    assert "revoked" in (err.value.details() or "")
    rotated = await t.admin.device.RotateNodeToken(
        device_pb2.RotateNodeTokenRequest(node_id=node.node.node_id)
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await device_login("N-1", node.access_token, auth_pb2.DEVICE_KIND_NODE)
    assert (
        await device_login("N-1", rotated.access_token, auth_pb2.DEVICE_KIND_NODE)
    ).device_id == node.node.node_id


async def test_sync_agent_created_by_domain_authenticates(sqlite_cloud: CloudHarness) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    _, token = await Devices(sqlite_cloud.rt).create_device(
        None, t.tenant_id, DeviceFields(kind=DeviceKind.SYNC_AGENT, serial_number="sync-1")
    )
    anon = await sqlite_cloud.stubs()
    resp = await anon.auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code,
            serial_number="sync-1",
            access_token=token,
            kind=auth_pb2.DEVICE_KIND_SYNC_AGENT,
        )
    )
    assert resp.kind == auth_pb2.DEVICE_KIND_SYNC_AGENT
