"""The cloud end of NodeLink spoken to directly with the generated stubs, message by message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
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
        lpd_uri: str = "",
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
        self.lpd_uri = lpd_uri

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
                lpd_uri=self.lpd_uri,
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


async def test_the_lpd_address_of_each_hello_is_stored_and_offered_with_the_nodes_queues(
    cloud: CloudHarness, caplog: pytest.LogCaptureFixture
) -> None:
    t = await cloud.make_tenant("ACME")
    node_id, token = await node_for(cloud, t)
    await Devices(cloud.rt).create_printer(
        None, t.tenant_id, PrinterFields(name="lobby", node_id=node_id)
    )
    alice = await cloud.add_user(t, "alice")

    async def hello_then_state(lpd_uri: str) -> tuple[str, list[str]]:
        """Links with this announcement; the node's lpd_uri and what alice is offered for lobby."""
        side = FakeNodeSide(cloud, t, token, lpd_uri=lpd_uri)
        call = await side.connect()
        await next_of(call, "welcome")
        call.cancel()
        node = (await t.admin.device.GetNode(device_pb2.GetNodeRequest(node_id=node_id))).node
        listed = await alice.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
        lobby = next(e for e in listed.printers if e.printer.name == "lobby")
        return node.lpd_uri, list(lobby.submit_uris)[1:]

    assert await hello_then_state("lpr://office-node.acme.lan:5515") == (
        "lpr://office-node.acme.lan:5515",
        ["lpr://office-node.acme.lan:5515/lobby"],
    )
    # A node that stops announcing (its LPD server turned off) is no longer offered.
    assert await hello_then_state("") == ("", [])
    assert await hello_then_state("lpr://[fd00::7]") == (
        "lpr://[fd00::7]",
        ["lpr://[fd00::7]/lobby"],
    )
    # What is not lpr://host[:port], or is longer than a column holds, is ignored and logged,
    # and the address announced before is not kept either.
    for bad in ("lpd://x/q", "lpr://office-node/lobby", "lpr://u:pw@x", "lpr://" + "a" * 300):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cloud.domain.replication"):
            assert await hello_then_state(bad) == ("", []), bad
        assert "announced an LPD address that is ignored" in caplog.text, bad


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


async def test_queue_changes_are_pushed_to_the_tenants_nodes_and_to_no_other(
    cloud: CloudHarness,
) -> None:
    acme, other = await cloud.make_tenant("ACME"), await cloud.make_tenant("OTHER")
    acme_node, acme_token = await node_for(cloud, acme)
    _, other_token = await node_for(cloud, other, serial="N-2")
    calls = {}
    for name, t, token, serial in (
        ("acme", acme, acme_token, "N-1"),
        ("other", other, other_token, "N-2"),
    ):
        side = FakeNodeSide(cloud, t, token, serial=serial)
        calls[name] = (side, await side.connect())
        welcome = (await next_of(calls[name][1], "welcome")).welcome
        assert [q.name for q in welcome.config.queues] == ["secure"]
        # The snapshot comes after the link subscribed to changes: none made now is missed.
        await next_of(calls[name][1], "directory_snapshot")
    acme_call, other_call = calls["acme"][1], calls["other"][1]

    def shown(config: nl.NodeConfig) -> tuple[list[str], list[tuple[str, str]]]:
        return [q.name for q in config.queues], [(p.name, p.device_uri) for p in config.printers]

    loop = asyncio.get_running_loop()
    started = loop.time()
    annex = (
        await acme.admin.device.CreatePrinter(
            device_pb2.CreatePrinterRequest(printer=device_pb2.Printer(name="annex"))
        )
    ).printer
    pushed = await next_of(acme_call, "config", within=2.0)
    assert loop.time() - started < 2.0
    assert pushed.seq > 0 and shown(pushed.config) == (["annex", "secure"], [])
    assert pushed.config.display_name == "Site" and pushed.config.heartbeat_seconds > 0

    # Put behind the node with a device URI: the node now delivers for it.
    await acme.admin.device.UpdatePrinter(
        device_pb2.UpdatePrinterRequest(
            printer=device_pb2.Printer(
                printer_id=annex.printer_id, node_id=acme_node, device_uri="lpd://10.0.0.9/raw"
            ),
            update_mask=FieldMask(paths=["node_id", "device_uri"]),
        )
    )
    pushed = await next_of(acme_call, "config")
    assert shown(pushed.config) == (["annex", "secure"], [("annex", "lpd://10.0.0.9/raw")])

    # A change the node does not see sends nothing: the next config is the deletion's.
    await acme.admin.device.UpdatePrinter(
        device_pb2.UpdatePrinterRequest(
            printer=device_pb2.Printer(printer_id=annex.printer_id, location="3rd floor"),
            update_mask=FieldMask(paths=["location"]),
        )
    )
    await acme.admin.device.DeletePrinter(
        device_pb2.DeletePrinterRequest(printer_id=annex.printer_id)
    )
    pushed = await next_of(acme_call, "config")
    assert shown(pushed.config) == (["secure"], [])

    # OTHER's node heard nothing of all that: its first config is its own tenant's change.
    await other.admin.device.CreatePrinter(
        device_pb2.CreatePrinterRequest(printer=device_pb2.Printer(name="lobby"))
    )
    pushed = await next_of(other_call, "config")
    assert shown(pushed.config) == (["lobby", "secure"], [])
    for side, call in calls.values():
        side.outgoing.put_nowait(None)
        call.cancel()
