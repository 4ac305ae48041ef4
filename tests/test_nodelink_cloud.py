"""The cloud end of NodeLink spoken to directly with the generated stubs, message by message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from printfabric import credentials
from printfabric.v1 import accounting_pb2, device_pb2, directory_pb2, node_link_pb2_grpc, spool_pb2
from printfabric.v1 import node_link_pb2 as nl
from sqlalchemy import func, select

from cloud.db.models import AccountingEntry
from cloud.domain.devices import Devices, PrinterFields
from cloud.domain.directory_sync import SyncHeader, SyncRecord, sync_users
from cloud.domain.enums import AccessRight, PrincipalKind, QueueModel, UserSource
from cloud.domain.principal import Principal
from cloud.nodelink import session as link_session
from tests.support.fabric import CloudHarness, TenantHandle
from tests.test_spool import submit


class FakeNodeSide:
    """The node's half of the stream, driven by the test: a queue of messages to send."""

    def __init__(
        self,
        cloud: CloudHarness,
        t: TenantHandle,
        token: str,
        serial: str = "N-1",
        revision: int = 0,
    ) -> None:
        self.outgoing: asyncio.Queue[nl.ConnectRequest | None] = asyncio.Queue()
        self.seq = 0
        self.cloud, self.t, self.token, self.serial, self.revision = (
            cloud,
            t,
            token,
            serial,
            revision,
        )

    async def requests(self) -> AsyncIterator[nl.ConnectRequest]:
        while (msg := await self.outgoing.get()) is not None:
            yield msg

    def send(self, **body: Any) -> int:
        self.seq += 1
        self.outgoing.put_nowait(nl.ConnectRequest(seq=self.seq, **body))
        return self.seq

    async def connect(self) -> Any:
        channel = await self.cloud.channel()
        stub = node_link_pb2_grpc.NodeLinkServiceStub(channel)
        self.send(
            hello=nl.NodeHello(
                company_code=self.t.company_code,
                serial_number=self.serial,
                access_token=self.token,
                software_version="test",
                directory_revision=self.revision,
                session_id="s1",
            )
        )
        return stub.Connect(self.requests())


async def next_of(call: Any, kind: str, within: float = 5.0) -> nl.ConnectResponse:
    """The next cloud message with this body, skipping heartbeats and other kinds."""

    async def find() -> nl.ConnectResponse:
        while True:
            msg = await call.read()
            assert msg is not grpc.aio.EOF, "the cloud ended the stream"
            if msg.WhichOneof("body") == kind:
                return msg

    return await asyncio.wait_for(find(), within)


async def node_for(cloud: CloudHarness, t: TenantHandle, serial: str = "N-1") -> tuple[str, str]:
    node, token = await Devices(cloud.rt).create_node(None, t.tenant_id, serial, "Site", "Office")
    return node.id, token


async def test_snapshot_then_live_deltas_carry_users_with_hashed_secrets(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "alice", pin="4242", cards=["0x44E1D9"])
    node_id, token = await node_for(cloud, t)
    side = FakeNodeSide(cloud, t, token)
    call = await side.connect()
    welcome = await next_of(call, "welcome")
    assert welcome.welcome.directory_revision >= 2
    chunk = (await next_of(call, "directory_snapshot")).directory_snapshot
    assert chunk.first and chunk.last and len(chunk.credential_key) == 32
    users = {u.login: u for u in chunk.users}
    assert set(users) == {"admin", "alice"}
    alice = users["alice"]
    assert alice.pin_hash == credentials.pin_hash(chunk.credential_key, "4242")
    assert list(alice.card_hashes) == [credentials.card_hash(chunk.credential_key, "4514265")]
    assert credentials.verify_password("secret-pw", alice.password_hash)
    side.send(directory_applied=nl.DirectoryApplied(revision=chunk.revision))
    node = (await t.admin.device.GetNode(device_pb2.GetNodeRequest(node_id=node_id))).node
    assert node.online, "a node with a link up shows online"
    loop = asyncio.get_running_loop()
    started = loop.time()
    await t.admin.directory.CreateUser(
        directory_pb2.CreateUserRequest(user=directory_pb2.User(login="bob"), pin="9999")
    )
    delta = (await next_of(call, "directory_delta", within=1.0)).directory_delta
    assert loop.time() - started < 1.0
    assert [u.login for u in delta.upserts] == ["bob"] and delta.from_revision == chunk.revision
    side.outgoing.put_nowait(None)
    call.cancel()


async def test_a_node_holding_a_revision_gets_only_what_changed_since(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    await cloud.add_user(t, "alice")
    _, token = await node_for(cloud, t)
    first = FakeNodeSide(cloud, t, token)
    call = await first.connect()
    revision = (await next_of(call, "directory_snapshot")).directory_snapshot.revision
    call.cancel()
    await cloud.add_user(t, "carol")
    again = FakeNodeSide(cloud, t, token, revision=revision)
    call = await again.connect()
    delta = (await next_of(call, "directory_delta")).directory_delta
    assert [u.login for u in delta.upserts] == ["carol"]
    call.cancel()


async def test_accounting_batches_are_stored_once_and_acknowledged_after_commit(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    _, token = await node_for(cloud, t)
    entries = [
        accounting_pb2.UsageEntry(
            request_id=f"jba-{i}", kind=accounting_pb2.USAGE_KIND_PRINT, user_login="alice", pages=2
        )
        for i in range(300)
    ]
    # Entries that are not valid are left out; they never make the node resend the batch.
    entries += [
        accounting_pb2.UsageEntry(request_id="x" * 129, kind=accounting_pb2.USAGE_KIND_PRINT),
        accounting_pb2.UsageEntry(request_id="no-kind"),
        accounting_pb2.UsageEntry(
            request_id="negative", kind=accounting_pb2.USAGE_KIND_COPY, pages=-1
        ),
    ]
    for _ in range(2):  # the second connection resends the same batch, as after a lost ack
        side = FakeNodeSide(cloud, t, token)
        call = await side.connect()
        seq = side.send(accounting_batch=nl.AccountingBatch(batch_id="b-1", entries=entries))
        ack = await next_of(call, "batch_ack")
        assert list(ack.batch_ack.batch_ids) == ["b-1"] and ack.ack >= seq
        call.cancel()
    async with cloud.rt.db.session() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(AccountingEntry)
                .where(AccountingEntry.tenant_id == t.tenant_id)
            )
        ).scalar_one()
    assert count == 300


@pytest.mark.parametrize(
    ("messages", "code", "needle"),
    [
        (
            [{"heartbeat": nl.Heartbeat()}],
            grpc.StatusCode.INVALID_ARGUMENT,
            "first NodeLink message must be hello",
        ),
        (
            [{"hello": None}, {"heartbeat": nl.Heartbeat(), "seq": 1}],
            grpc.StatusCode.INVALID_ARGUMENT,
            "out of order",
        ),
        ([{"hello": None}, {}], grpc.StatusCode.INVALID_ARGUMENT, "unknown message type"),
        (
            [{"hello": None}, {"hello": None}],
            grpc.StatusCode.INVALID_ARGUMENT,
            "hello is sent once",
        ),
    ],
)
async def test_bad_messages_end_the_link_with_a_clear_status(
    sqlite_cloud: CloudHarness, messages: list[dict[str, Any]], code: grpc.StatusCode, needle: str
) -> None:
    cloud = sqlite_cloud
    t = await cloud.make_tenant("ACME")
    _, token = await node_for(cloud, t)
    hello = nl.NodeHello(company_code=t.company_code, serial_number="N-1", access_token=token)

    async def requests() -> AsyncIterator[nl.ConnectRequest]:
        for i, body in enumerate(messages, start=1):
            body = dict(body)
            seq = body.pop("seq", i)
            if "hello" in body:
                body["hello"] = hello
            yield nl.ConnectRequest(seq=seq, **body)
        await asyncio.sleep(30)

    stub = node_link_pb2_grpc.NodeLinkServiceStub(await cloud.channel())
    call = stub.Connect(requests())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    assert err.value.code() == code and needle in (err.value.details() or "")


async def test_wrong_and_revoked_node_tokens_are_unauthenticated(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    node_id, token = await node_for(cloud, t)
    for bad in ("wrong-token", token):
        if bad == token:
            await Devices(cloud.rt).delete_node(
                Principal(
                    PrincipalKind.USER, t.tenant_id, "x", "s", frozenset({AccessRight.ADMIN})
                ),
                node_id,
            )
        side = FakeNodeSide(cloud, t, bad)
        call = await side.connect()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await next_of(call, "welcome")
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_remote_auth_and_released_jobs_reach_the_node(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    alice = await cloud.add_user(t, "alice", cards=["777"])
    node_id, token = await node_for(cloud, t)
    await Devices(cloud.rt).create_printer(
        None, t.tenant_id, PrinterFields(name="lobby", node_id=node_id, model=QueueModel.SECURE)
    )
    side = FakeNodeSide(cloud, t, token)
    call = await side.connect()
    await next_of(call, "directory_snapshot")
    side.send(remote_auth_request=nl.RemoteAuthRequest(request_id="r1", card="0x309"))
    answer = (await next_of(call, "remote_auth_response")).remote_auth_response
    assert answer.request_id == "r1" and answer.accepted and answer.user.login == "alice"
    side.send(remote_auth_request=nl.RemoteAuthRequest(request_id="r2", pin="0000"))
    answer = (await next_of(call, "remote_auth_response")).remote_auth_response
    assert not answer.accepted and "unknown" in answer.reason
    job = await submit(alice, b"%!PS\nshowpage\n")
    await alice.spool.ReleaseJobs(
        spool_pb2.ReleaseJobsRequest(job_ids=[job.job_id], printer_id="lobby")
    )
    released = (await next_of(call, "job_released")).job_released
    assert released.job.job_id == job.job_id
    side.send(job_status=nl.JobStatusReport(job_id=job.job_id, state=spool_pb2.JOB_STATE_COMPLETED))
    await next_of(call, "batch_ack")
    got = (await alice.spool.GetJob(spool_pb2.GetJobRequest(job_id=job.job_id))).job
    assert got.state == spool_pb2.JOB_STATE_COMPLETED
    # A resent report of the same state is harmless.
    side.send(job_status=nl.JobStatusReport(job_id=job.job_id, state=spool_pb2.JOB_STATE_COMPLETED))
    await next_of(call, "batch_ack")
    call.cancel()


async def test_a_node_that_stops_reading_is_cut_off_not_buffered(
    sqlite_cloud: CloudHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = sqlite_cloud
    monkeypatch.setattr(link_session, "SEND_QUEUE", 2)
    monkeypatch.setattr(link_session, "SEND_TIMEOUT", 1.0)
    t = await cloud.make_tenant("ACME")

    async def records() -> AsyncIterator[SyncRecord]:
        for i in range(12000):
            yield SyncRecord(
                login=f"user{i:05d}",
                full_name="x" * 256,
                department="d" * 256,
                email=f"u{i}@x.test",
            )

    await sync_users(
        cloud.rt,
        Principal(PrincipalKind.SYNC_AGENT, t.tenant_id, "s", "s"),
        t.tenant_id,
        SyncHeader(UserSource.LDAP),
        records(),
    )
    _, token = await node_for(cloud, t)
    side = FakeNodeSide(cloud, t, token)
    call = await side.connect()
    await asyncio.sleep(4)  # not reading: ~7 MB of snapshot waits for us
    with pytest.raises(grpc.aio.AioRpcError) as err:
        while (await call.read()) is not grpc.aio.EOF:
            pass
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "stopped reading" in (err.value.details() or "")
