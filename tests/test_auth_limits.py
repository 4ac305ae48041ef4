"""Failed log-ins lock a login or a device for a while, visibly; unknown cards; card self-registration."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from printfabric.v1 import auth_pb2
from sqlalchemy import select

from cloud.config import CloudConfig
from cloud.db.models import AuditEvent
from cloud.domain import credentials
from cloud.domain.devices import DeviceFields, Devices
from cloud.domain.enums import AccessRight, DeviceKind
from cloud.domain.ratelimit import say_duration
from cloud.domain.replication import tenant_directory, users_since
from tests.support.fabric import CloudHarness, TenantHandle, cloud_harness

# Small limits keep the tests short; the rules are the same as with the defaults.
LIMITS: dict[str, Any] = {
    "auth_max_failures": 3,
    "auth_device_max_failures": 4,
    "auth_failure_window": timedelta(minutes=5),
    "auth_lockout": timedelta(minutes=5),
}


@pytest.fixture(params=["in-process", "redis"])
async def limited(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[CloudHarness]:
    """A cloud with small limits, counting in this process or in a real Redis."""
    extra = {"redis_url": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    async with cloud_harness(tmp_path / "home", database_url, **LIMITS, **extra) as harness:
        yield harness


def password(login: str, secret: str) -> auth_pb2.UserCredential:
    return auth_pb2.UserCredential(
        password=auth_pb2.PasswordCredential(login=login, password=secret)
    )


async def log_in(
    cloud: CloudHarness,
    code: str,
    credential: auth_pb2.UserCredential,
    device_id: str = "",
    register_card: str = "",
) -> auth_pb2.AuthenticateUserResponse:
    anon = await cloud.stubs()
    return await anon.auth.AuthenticateUser(
        auth_pb2.AuthenticateUserRequest(
            company_code=code,
            credential=credential,
            device_id=device_id,
            register_card=register_card,
        )
    )


async def refused(cloud: CloudHarness, code: str, *args: Any, **kw: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await log_in(cloud, code, *args, **kw)
    return err.value


def trailer(err: grpc.aio.AioRpcError, key: str) -> str:
    return next((str(v) for k, v in err.trailing_metadata() or () if k == key), "")


@contextlib.contextmanager
def later(cloud: CloudHarness, by: timedelta) -> Iterator[None]:
    real = cloud.rt.clock
    object.__setattr__(cloud.rt, "clock", lambda: real() + by)
    try:
        yield
    finally:
        object.__setattr__(cloud.rt, "clock", real)


async def mfp(cloud: CloudHarness, t: TenantHandle, serial: str) -> str:
    device, _ = await Devices(cloud.rt).create_device(
        None, t.tenant_id, DeviceFields(kind=DeviceKind.MFP, serial_number=serial)
    )
    return device.id


def assert_locked(err: grpc.aio.AioRpcError, scope: str, at_most: int) -> int:
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
    assert trailer(err, "pf-error-reason") == "TOO_MANY_ATTEMPTS"
    seconds = int(trailer(err, "pf-retry-after"))
    assert 0 < seconds <= at_most
    assert err.details() == (
        f"too many failed attempts {scope}; try again in {say_duration(seconds)}"
    )
    return seconds


async def test_a_locked_login_refuses_even_the_right_password_until_the_lockout_ends(
    limited: CloudHarness,
) -> None:
    cloud = limited
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    await cloud.add_user(t, "carol", "pw-carol")
    for _ in range(2):
        err = await refused(cloud, t.company_code, password("bob", "guess"))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # The failure that reaches the limit already says so (logins are case-insensitive).
    err = await refused(cloud, t.company_code, password("BOB", "guess"))
    assert assert_locked(err, "for this login", 300) >= 299
    err = await refused(cloud, t.company_code, password("bob", "pw-bob"))
    assert_locked(err, "for this login", 300)
    # Only bob's login is locked.
    assert (await log_in(cloud, t.company_code, password("carol", "pw-carol"))).user.login
    with later(cloud, timedelta(minutes=4)):
        err = await refused(cloud, t.company_code, password("bob", "pw-bob"))
        assert assert_locked(err, "for this login", 60) > 50
    with later(cloud, timedelta(minutes=5, seconds=1)):
        ok = await log_in(cloud, t.company_code, password("bob", "pw-bob"))
        assert ok.user.login == "bob"


async def test_a_success_resets_the_login_count(limited: CloudHarness) -> None:
    cloud = limited
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    for _ in range(2):
        await refused(cloud, t.company_code, password("bob", "guess"))
    await log_in(cloud, t.company_code, password("bob", "pw-bob"))
    for _ in range(2):
        err = await refused(cloud, t.company_code, password("bob", "guess"))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await log_in(cloud, t.company_code, password("bob", "pw-bob"))).user.login == "bob"


async def test_pin_failures_lock_the_device_and_made_up_device_ids_share_one_count(
    limited: CloudHarness,
) -> None:
    cloud = limited
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob", pin="4711")
    hall, lobby = await mfp(cloud, t, "MFP-HALL"), await mfp(cloud, t, "MFP-LOBBY")
    pin = auth_pb2.UserCredential
    for _ in range(3):
        err = await refused(cloud, t.company_code, pin(pin="0000"), device_id=hall)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert_locked(
        await refused(cloud, t.company_code, pin(pin="1111"), device_id=hall), "at this device", 300
    )
    assert_locked(
        await refused(cloud, t.company_code, pin(pin="4711"), device_id=hall), "at this device", 300
    )
    # Another device of the tenant is not locked.
    assert (await log_in(cloud, t.company_code, pin(pin="4711"), device_id=lobby)).user.login
    # Device ids that name no device of the tenant cannot spread the guesses out.
    for n in range(4):
        await refused(cloud, t.company_code, pin(pin="0000"), device_id=f"{n:032x}")
    err = await refused(cloud, t.company_code, pin(pin="4711"))
    assert_locked(err, "with PINs and cards given without a device", 300)
    with later(cloud, timedelta(minutes=5, seconds=1)):
        assert (await log_in(cloud, t.company_code, pin(pin="4711"), device_id=hall)).user.login


async def test_replicas_sharing_redis_share_the_lock(tmp_path: Path, redis_url: str) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
    async with (
        cloud_harness(tmp_path / "a", database, redis_url=redis_url, **LIMITS) as a,
        cloud_harness(tmp_path / "b", database, redis_url=redis_url, **LIMITS) as b,
    ):
        t = await a.make_tenant("ACME")
        await a.add_user(t, "bob", "pw-bob")
        for _ in range(3):
            await refused(a, t.company_code, password("bob", "guess"))
        assert_locked(
            await refused(b, t.company_code, password("bob", "pw-bob")), "for this login", 300
        )


async def test_an_unknown_card_answers_unknown_card_for_self_registration(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob", cards=["999"])
    err = await refused(cloud, t.company_code, auth_pb2.UserCredential(card="0x44E1D9"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert trailer(err, "pf-error-reason") == "UNKNOWN_CARD"
    assert err.details() == (
        "this card is not registered; log in with your login and password to register it"
    )
    # Something no reader delivers is just a wrong credential.
    err = await refused(cloud, t.company_code, auth_pb2.UserCredential(card="not-a-card!"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_card_registered_at_a_device_logs_in_and_reaches_the_replicas(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob")
    device = await mfp(cloud, t, "MFP-1")
    before = await tenant_directory(cloud.rt, t.tenant_id)
    # A wrong password binds nothing.
    err = await refused(
        cloud, t.company_code, password("bob", "wrong"), device_id=device, register_card="44E1D9"
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await tenant_directory(cloud.rt, t.tenant_id)).revision == before.revision
    done = await log_in(
        cloud, t.company_code, password("bob", "pw-bob"), device_id=device, register_card="44E1D9"
    )
    assert done.user.login == "bob" and done.user.card_count == 1 and done.tokens.access_token
    # Any notation of the same card now logs bob in.
    by_card = await log_in(cloud, t.company_code, auth_pb2.UserCredential(card="0004514265"))
    assert by_card.user.user_id == done.user.user_id
    # The nodes' delta since the old revision carries the card's keyed hash.
    changed = await users_since(cloud.rt, t.tenant_id, before.revision)
    digest = credentials.card_hash(before.credential_key, "0x44e1d9")
    assert [(r.user.login, r.card_hashes) for r in changed] == [("bob", [digest])]
    async with cloud.rt.db.reader() as session:
        events = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.tenant_id == t.tenant_id, AuditEvent.action == "user.register_card"
                )
            )
        ).scalars()
        assert [(e.target, e.actor_id, device in e.detail) for e in events] == [
            ("bob", done.user.user_id, True)
        ]
    # Registering it again for bob is harmless.
    await log_in(cloud, t.company_code, password("bob", "pw-bob"), register_card="4514265")


async def test_a_card_of_another_user_is_card_in_use(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "bob", "pw-bob", cards=["0x44E1D9"])
    await cloud.add_user(t, "carol", "pw-carol")
    err = await refused(
        cloud, t.company_code, password("carol", "pw-carol"), register_card="4514265"
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert trailer(err, "pf-error-reason") == "CARD_IN_USE"
    assert "registered to another user" in (err.details() or "")
    by_card = await log_in(cloud, t.company_code, auth_pb2.UserCredential(card="44e1d9"))
    assert by_card.user.login == "bob"


@pytest.mark.parametrize(
    ("credential", "card"),
    [
        (auth_pb2.UserCredential(pin="4711"), "44E1D9"),
        (auth_pb2.UserCredential(card="999"), "44E1D9"),
        (password("bob", "pw-bob"), "not-a-card!"),
    ],
)
async def test_register_card_needs_a_password_and_a_card_number(
    sqlite_cloud: CloudHarness, credential: auth_pb2.UserCredential, card: str
) -> None:
    t = await sqlite_cloud.make_tenant("ACME")
    await sqlite_cloud.add_user(t, "bob", "pw-bob", pin="4711", cards=["999"])
    err = await refused(sqlite_cloud, t.company_code, credential, register_card=card)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_log_in_at_a_device_returns_the_users_rights(sqlite_cloud: CloudHarness) -> None:
    cloud = sqlite_cloud
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(
        t, "bob", "pw-bob", pin="4711", rights=frozenset({AccessRight.PRINT, AccessRight.SCAN})
    )
    device = await mfp(cloud, t, "MFP-1")
    reply = await log_in(cloud, t.company_code, auth_pb2.UserCredential(pin="4711"), device)
    assert sorted(reply.user.rights) == sorted([int(AccessRight.PRINT), int(AccessRight.SCAN)])


def test_limits_are_read_from_the_environment(tmp_path: Path) -> None:
    config = CloudConfig.from_env(
        {
            "PF_HOME": str(tmp_path),
            "PF_AUTH_MAX_FAILURES": "7",
            "PF_AUTH_DEVICE_MAX_FAILURES": "0",
            "PF_AUTH_FAILURE_WINDOW": "10m",
            "PF_AUTH_LOCKOUT": "90s",
        }
    )
    assert (config.auth_max_failures, config.auth_device_max_failures) == (7, 0)
    assert config.auth_failure_window == timedelta(minutes=10)
    assert config.auth_lockout == timedelta(seconds=90)
    defaults = CloudConfig.from_env({"PF_HOME": str(tmp_path)})
    assert (defaults.auth_max_failures, defaults.auth_device_max_failures) == (5, 20)
    assert defaults.auth_lockout == defaults.auth_failure_window == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("seconds", "said"), [(250, "4 min 10 s"), (300, "5 min"), (45, "45 s"), (0, "1 s")]
)
def test_waits_are_said_in_minutes_and_seconds(seconds: int, said: str) -> None:
    assert say_duration(seconds) == said
