"""A real node against a real cloud over NodeLink: replication, offline log-in, accounting, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.lpd import LpdError, send_job
from printfabric.v1 import device_pb2, directory_pb2, spool_pb2
from sqlalchemy import func, select

from cloud.db.models import AccountingEntry, Job, Tenant
from cloud.db.models import Node as CloudNode
from cloud.domain.devices import Devices, PrinterFields
from cloud.domain.enums import QueueModel
from node.app import Node, open_node, running_node
from node.config import NodeConfig
from node.credential import Card, LoginPassword, Pin
from node.delivery import SpoolFile, deliver_to_folder
from node.errors import AuthRefused, DeliveryFailed
from node.link import backoff_delay
from node.models import LpdJob, OutboxRecord
from tests.support.fabric import CloudHarness, TenantHandle, cloud_harness
from tests.test_node_outbox import entries
from tests.test_spool import submit

ROOT = Path(__file__).resolve().parents[1]
CARD = "0x44E1D9"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> float:
    """Waits until check() holds; returns how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > within:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.02)
    return loop.time() - started


@dataclass
class Site:
    """A tenant in a running cloud with one registered node (not started)."""

    home: Path
    cloud: CloudHarness
    tenant: TenantHandle
    node_id: str
    config: NodeConfig


@contextlib.asynccontextmanager
async def cloud_at(home: Path, port: int = 0) -> AsyncIterator[CloudHarness]:
    # A 1 s heartbeat keeps silence detection and the tests quick.
    async with cloud_harness(
        home, listen=f"127.0.0.1:{port}", node_heartbeat=timedelta(seconds=1)
    ) as harness:
        yield harness


def node_config(
    tmp_path: Path, cloud: CloudHarness, code: str, serial: str, token: str
) -> NodeConfig:
    return NodeConfig(
        home=tmp_path / "node",
        cloud_target=f"localhost:{cloud.running.port}",
        cloud_ca=cloud.running.tls.ca_cert,
        company_code=code,
        serial_number=serial,
        access_token=token,
        heartbeat_seconds=1.0,
        backoff_initial=0.05,
        backoff_max=0.3,
        outbox_poll_seconds=0.05,
        remote_auth_timeout=3.0,
    )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    home = tmp_path / "cloud-home"
    async with cloud_at(home) as cloud:
        tenant = await cloud.make_tenant("ACME")
        await cloud.add_user(tenant, "alice", pin="4242", cards=[CARD])
        node, token = await Devices(cloud.rt).create_node(
            None, tenant.tenant_id, "NODE-PRG-1", "Prague office", "Floor 2"
        )
        config = node_config(tmp_path, cloud, tenant.company_code, "NODE-PRG-1", token)
        yield Site(home, cloud, tenant, node.id, config)


async def linked(node: Node) -> None:
    await asyncio.wait_for(node.link.connected.wait(), 10)


async def in_sync(node: Node, cloud: CloudHarness, tenant_id: str) -> bool:
    async with cloud.rt.db.session() as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return node.link.connected.is_set() and await node.replica.revision() == (
        tenant.directory_revision
    )


async def test_the_node_gets_its_directory_and_every_change_within_a_second(site: Site) -> None:
    admin = site.tenant.admin.directory
    async with running_node(site.config) as node:
        await eventually(lambda: in_sync(node, site.cloud, site.tenant.tenant_id))
        alice = await node.replica.authenticate(Pin("4242"))
        assert alice is not None and alice.login == "alice"
        state = await node.replica.state()
        assert (state.users, state.node_id) == (2, site.node_id)

        created = await admin.CreateUser(
            directory_pb2.CreateUserRequest(
                user=directory_pb2.User(login="bob", full_name="Bob Builder"), pin="8642"
            )
        )

        async def bob_known() -> bool:
            return await node.replica.user(created.user.user_id) is not None

        assert await eventually(bob_known, within=1.0) < 1.0

        await admin.DisableUser(directory_pb2.DisableUserRequest(user_id=alice.user_id))

        async def alice_disabled() -> bool:
            found = await node.replica.user(alice.user_id)
            return found is not None and found.disabled

        assert await eventually(alice_disabled, within=1.0) < 1.0
        with pytest.raises(AuthRefused, match="alice is disabled"):
            await node.replica.authenticate(Card(CARD))

        # The node told the cloud what it applied.
        async def cloud_knows_revision() -> bool:
            async with site.cloud.rt.db.session() as session:
                row = await session.get(CloudNode, site.node_id)
            return row is not None and row.directory_revision == await node.replica.revision()

        await eventually(cloud_knows_revision)
        assert node.link.connects == 1


async def test_the_node_announces_its_lpd_address_in_its_hello(site: Site) -> None:
    config = replace(site.config, lpd_uri="lpr://prague-node.acme.lan")
    async with running_node(config) as node:
        await linked(node)
        async with site.cloud.rt.db.session() as session:
            row = await session.get(CloudNode, site.node_id)
        assert row is not None and row.lpd_uri == "lpr://prague-node.acme.lan"


async def node_cli(
    config: NodeConfig, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Runs the node's command line in a thread: the node under test shares this event loop, and
    blocking the loop would freeze it mid-transaction, holding the database lock the CLI needs."""
    return await asyncio.to_thread(_node_cli, config, *args, stdin=stdin)


def _node_cli(config: NodeConfig, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PF_NODE_HOME": str(config.home)}
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


async def test_users_log_in_at_the_node_by_pin_and_card_while_the_cloud_is_down(
    tmp_path: Path,
) -> None:
    async with cloud_at(tmp_path / "cloud-home") as cloud:
        tenant = await cloud.make_tenant("ACME")
        await cloud.add_user(tenant, "alice", pin="4242", cards=[CARD])
        await cloud.add_user(tenant, "bob", password="bob-pass-1")
        _, token = await Devices(cloud.rt).create_node(None, tenant.tenant_id, "N-1", "Site", "")
        config = node_config(tmp_path, cloud, tenant.company_code, "N-1", token)
        async with running_node(config) as node:
            await eventually(lambda: in_sync(node, cloud, tenant.tenant_id))
            remote = await node.link.remote_authenticate(Pin("4242"), "mfp-1")
            assert remote.accepted and remote.user is not None and remote.user.login == "alice"
            wrong = await node.link.remote_authenticate(Pin("0000"), "mfp-1")
            assert not wrong.accepted and wrong.reason
    # The cloud is gone (stopped, its port closed); the node runs on.
    async with running_node(config) as node:
        for credential in (Pin("4242"), Card(CARD), Card("4514265"), Card("44 e1 d9")):
            found = await node.replica.authenticate(credential)
            assert found is not None and found.login == "alice", credential
        bob = await node.replica.authenticate(LoginPassword("BOB", "bob-pass-1"))
        assert bob is not None and bob.login == "bob"
        offline = await node.link.remote_authenticate(Card("0x1234"), "mfp-1")
        assert not offline.accepted and "unreachable" in offline.reason

        # The command line reads the same replica beside the running node.
        by_pin = await node_cli(config, "auth", "--pin-stdin", stdin="4242\n")
        assert by_pin.returncode == 0, by_pin.stderr
        assert json.loads(by_pin.stdout)["login"] == "alice"
        by_card = await node_cli(config, "auth", "--card", "4514265")
        assert by_card.returncode == 0, by_card.stderr
        assert json.loads(by_card.stdout)["rights"] == ["PRINT", "COPY", "SCAN", "COLOR"]
        unknown = await node_cli(config, "auth", "--card", "0x1234")
        assert unknown.returncode == 1 and "unknown here" in unknown.stderr
        status = json.loads((await node_cli(config, "status", "--json")).stdout)
        assert status["users"] == 3 and status["directory_revision"] > 0


async def accounting_rows(cloud: CloudHarness, tenant_id: str) -> tuple[int, int]:
    async with cloud.rt.db.session() as session:
        total = await session.scalar(
            select(func.count()).where(AccountingEntry.tenant_id == tenant_id)
        )
        distinct = await session.scalar(
            select(func.count(func.distinct(AccountingEntry.request_id))).where(
                AccountingEntry.tenant_id == tenant_id
            )
        )
    return int(total or 0), int(distinct or 0)


async def test_accounting_reaches_the_cloud_exactly_once_across_a_reconnect(
    tmp_path: Path,
) -> None:
    home = tmp_path / "cloud-home"
    async with cloud_at(home) as cloud:
        port = cloud.running.port
        tenant = await cloud.make_tenant("ACME")
        node_row, token = await Devices(cloud.rt).create_node(
            None, tenant.tenant_id, "N-1", "Site", ""
        )
        config = node_config(tmp_path, cloud, tenant.company_code, "N-1", token)
    async with running_node(config) as node:
        async with cloud_at(home, port) as cloud:
            await linked(node)
            await node.outbox.enqueue_usage(entries(700, "first"))

            async def first_stored() -> bool:
                return await accounting_rows(cloud, tenant.tenant_id) == (700, 700)

            await eventually(first_stored)
            await eventually(lambda: _outbox_empty(node))

        # The cloud restarts; meanwhile the node collects more, and a JBA log read twice
        # queues 100 entries the cloud already has.
        await node.outbox.enqueue_usage(entries(300, "second") + entries(100, "first"))
        assert await node.outbox.counts() == {"accounting": 1}

        async with cloud_at(home, port) as cloud:

            async def all_stored() -> bool:
                return await _outbox_empty(node) and await accounting_rows(
                    cloud, tenant.tenant_id
                ) == (1000, 1000)

            await eventually(all_stored)
            assert node.link.connects == 2
            async with cloud.rt.db.session() as session:
                devices = set(
                    (
                        await session.scalars(
                            select(AccountingEntry.device_id).where(
                                AccountingEntry.tenant_id == tenant.tenant_id
                            )
                        )
                    ).all()
                )
            assert devices == {node_row.id}

    # The node stops after the cloud committed a batch and before the ack deleted it (the
    # record is put back as it was): the same batch goes up again and counts once.
    async with open_node(config) as idle:
        await idle.outbox.enqueue_usage(entries(200, "lost-ack"))
        (record,) = await idle.outbox.pending()
    async with cloud_at(home, port) as cloud:
        async with running_node(config) as node:

            async def lost_ack_stored() -> bool:
                return await _outbox_empty(node) and await accounting_rows(
                    cloud, tenant.tenant_id
                ) == (1200, 1200)

            await eventually(lost_ack_stored)
        async with open_node(config) as idle, idle.db.session() as session, session.begin():
            session.add(
                OutboxRecord(
                    kind=record.kind,
                    batch_id=record.batch_id,
                    payload=record.payload,
                    created_at=record.created_at,
                )
            )
        async with running_node(config) as node:
            await linked(node)
            await eventually(lambda: _outbox_empty(node))
            assert await accounting_rows(cloud, tenant.tenant_id) == (1200, 1200)


async def _outbox_empty(node: Node) -> bool:
    return not await node.outbox.counts()


async def test_a_wrong_token_is_refused_and_the_node_keeps_backing_off(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    config = replace(site.config, access_token="not-the-token")
    with caplog.at_level(logging.ERROR, logger="node.link"):
        async with running_node(config) as node:

            async def refused_thrice() -> bool:
                return node.link.failures >= 3

            await eventually(refused_thrice)
            assert node.link.last_code is grpc.StatusCode.UNAUTHENTICATED
            assert not node.link.connected.is_set() and node.link.connects == 0
    assert "UNAUTHENTICATED" in caplog.text and "PF_NODE_SERIAL" in caplog.text
    # The secret never reaches the log.
    assert "not-the-token" not in caplog.text


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap_with_full_jitter() -> None:
    ceilings = [backoff_delay(n, 1.0, 60.0, lambda: 1.0) for n in range(9)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_delay(3, 1.0, 60.0, lambda: 0.25) == 2.0
    assert backoff_delay(10_000, 1.0, 60.0, lambda: 1.0) == 60


async def cloud_job(cloud: CloudHarness, job_id: str) -> Job:
    async with cloud.rt.db.session() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def test_released_jobs_are_pulled_checked_and_delivered_or_failed_with_a_reason(
    site: Site, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    devices = Devices(site.cloud.rt)
    # Nothing listens on port 1: the plotter refuses the connection at once.
    for name, uri in (("lobby", folder.as_uri()), ("plotter", "socket://127.0.0.1:1")):
        await devices.create_printer(
            None,
            site.tenant.tenant_id,
            PrinterFields(name=name, model=QueueModel.DIRECT, device_uri=uri, node_id=site.node_id),
        )
    alice = await site.cloud.login(site.tenant.company_code, "alice", "secret-pw")
    data = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"
    async with running_node(site.config) as node:
        await linked(node)
        printed = await submit(alice, data, queue="lobby", title="Q3 report / final")
        failing = await submit(alice, data, queue="plotter", title="Site plan")

        async def states() -> bool:
            done = await cloud_job(site.cloud, printed.job_id)
            failed = await cloud_job(site.cloud, failing.job_id)
            return (done.state, failed.state) == (
                spool_pb2.JOB_STATE_COMPLETED,
                spool_pb2.JOB_STATE_FAILED,
            )

        await eventually(states)
        (delivered,) = folder.iterdir()
        assert delivered.name == f"{printed.number}-Q3_report_final"
        assert delivered.read_bytes() == data
        failed = await cloud_job(site.cloud, failing.job_id)
        assert failed.state_message == (
            "Not printed on plotter: the printer at 127.0.0.1:1 refused the connection"
        )
        # Neither job stays spooled on the node once it has its final outcome.
        assert not (site.config.spool_dir / failing.job_id).exists()
        assert not (site.config.spool_dir / printed.job_id).exists()

    # A restart: nothing is sent again and nothing is delivered twice.
    async with running_node(site.config) as node:
        await linked(node)
        await asyncio.sleep(0.5)
        await node.jobs.wait_idle()
        assert await node.outbox.counts() == {}
        assert len(list(folder.iterdir())) == 1


def test_a_spool_file_that_does_not_match_the_job_is_deleted(tmp_path: Path) -> None:
    spool = SpoolFile(tmp_path / "spool", "job-1")
    spool.write(b"not what was printed")
    with pytest.raises(DeliveryFailed) as failed:
        spool.finish(20, hashlib.sha256(b"what was printed!!!!").hexdigest())
    assert failed.value.reason == "CHECKSUM_MISMATCH"
    assert list((tmp_path / "spool").iterdir()) == []


def test_folder_delivery_never_overwrites_and_keeps_names_safe(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"doc")
    first = deliver_to_folder(data, tmp_path, 7, "../../etc/passwd")
    second = deliver_to_folder(data, tmp_path, 7, "../../etc/passwd")
    assert (first.name, second.name) == ("7-etc_passwd", "7-etc_passwd.1")
    assert first.parent == second.parent == tmp_path
    with pytest.raises(DeliveryFailed, match="does not exist"):
        deliver_to_folder(data, tmp_path / "missing", 8, "x")


async def test_printfabric_node_run_links_up_and_stops_cleanly_on_sigterm(
    site: Site, tmp_path: Path
) -> None:
    token_file = tmp_path / "node.token"
    token_file.write_text(site.config.access_token + "\n")
    token_file.chmod(0o600)
    env = {
        **os.environ,
        "PF_NODE_HOME": str(site.config.home),
        "PF_CLOUD_TARGET": site.config.cloud_target,
        "PF_CLOUD_CA": str(site.config.cloud_ca),
        "PF_COMPANY_CODE": site.config.company_code,
        "PF_NODE_SERIAL": site.config.serial_number,
        "PF_NODE_TOKEN_FILE": str(token_file),
        "PF_NODE_HEARTBEAT": "1s",
        "PF_NODE_MFP_LISTEN": "127.0.0.1:0",
        # Not the default 5515: another run on this machine may hold it.
        "PF_NODE_LPD_LISTEN": "127.0.0.1:0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node",
        "run",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def replicated() -> bool:
            async with site.cloud.rt.db.session() as session:
                row = await session.get(CloudNode, site.node_id)
            return row is not None and row.directory_revision > 0

        await eventually(replicated, within=20)
        # Its hello announced its LPD server as the environment derives it (by default
        # lpr://127.0.0.1:5515, from PF_NODE_LPD_LISTEN).
        async with site.cloud.rt.db.session() as session:
            row = await session.get(CloudNode, site.node_id)
        assert row is not None and row.lpd_uri == NodeConfig.from_env(env).lpd_uri
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    log_text = stderr.decode()
    assert process.returncode == 0, log_text
    assert "linked to the cloud" in log_text and "stopping" in log_text
    assert "MFP API at https://127.0.0.1:" in log_text
    assert site.config.access_token not in log_text


async def lpd_takes(node: Node, queue: str, doc: Path) -> bool:
    """Whether the node's LPD server takes jobs for the queue, asked without leaving a job behind:
    a job of a user the directory does not know is refused at its control or data file once the
    queue was taken, and at once for a queue the node does not know."""
    assert node.lpd_port
    try:
        await send_job("127.0.0.1", node.lpd_port, queue, doc, user="nobody", host_name="ws-1")
    except LpdError as exc:
        if exc.reason == "QUEUE_REFUSED":
            return False
        if exc.reason in ("CONTROL_FILE_REFUSED", "DATA_FILE_REFUSED"):
            return True
        raise
    raise AssertionError("the node took a job of a user it does not know")


async def test_queues_and_printers_changed_after_the_node_linked_reach_it_without_a_reconnect(
    site: Site, tmp_path: Path
) -> None:
    admin = site.tenant.admin.device
    old = await Devices(site.cloud.rt).create_printer(
        None, site.tenant.tenant_id, PrinterFields(name="old-annex")
    )
    doc = tmp_path / "memo.txt"
    doc.write_bytes(b"Minutes of the Monday meeting\n")
    folder = tmp_path / "annex-out"
    async with running_node(site.config) as node:
        await linked(node)
        assert node.lpd_port
        assert await lpd_takes(node, "old-annex", doc)
        assert not await lpd_takes(node, "annex", doc)

        # A queue created a minute after the node linked, behind this node.
        annex = (
            await admin.CreatePrinter(
                device_pb2.CreatePrinterRequest(
                    printer=device_pb2.Printer(
                        name="annex", node_id=site.node_id, device_uri=folder.as_uri()
                    )
                )
            )
        ).printer
        assert await eventually(lambda: lpd_takes(node, "annex", doc), within=5.0) < 5.0
        await send_job("127.0.0.1", node.lpd_port, "annex", doc, user="alice", host_name="ws-1")
        (job,) = [j for j in await lpd_jobs(node) if j.queue == "annex"]
        assert (job.owner_login, job.state) == ("alice", "held")
        # The node delivers for it, at the address the cloud gave.
        assert node.jobs.printers[annex.printer_id].device_uri == folder.as_uri()

        # A queue deleted in the cloud is refused from then on.
        await admin.DeletePrinter(device_pb2.DeletePrinterRequest(printer_id=old.id))

        async def old_refused() -> bool:
            return not await lpd_takes(node, "old-annex", doc)

        await eventually(old_refused, within=5.0)
        with pytest.raises(LpdError) as refused:
            await send_job(
                "127.0.0.1", node.lpd_port, "old-annex", doc, user="alice", host_name="ws-1"
            )
        assert refused.value.reason == "QUEUE_REFUSED"

        # Moved to the cloud's own delivery: no longer the node's printer, still a tenant queue.
        await admin.UpdatePrinter(
            device_pb2.UpdatePrinterRequest(
                printer=device_pb2.Printer(printer_id=annex.printer_id, node_id=""),
                update_mask=FieldMask(paths=["node_id"]),
            )
        )

        async def annex_not_ours() -> bool:
            return annex.printer_id not in node.jobs.printers

        await eventually(annex_not_ours, within=5.0)
        assert await lpd_takes(node, "annex", doc)
        assert node.link.connects == 1, "pushed on the link, not learned by reconnecting"


async def lpd_jobs(node: Node) -> list[LpdJob]:
    async with node.db.session() as session, session.begin():
        return list((await session.scalars(select(LpdJob).order_by(LpdJob.received_at))).all())


async def test_a_queue_created_on_one_cloud_replica_reaches_a_node_linked_to_another(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """Two replicas on one PostgreSQL and one Redis: the change's event crosses by Redis."""
    shared = {"node_heartbeat": timedelta(seconds=1), "redis_url": redis_url}
    async with (
        cloud_harness(tmp_path / "a", postgres_url, **shared) as replica_a,
        cloud_harness(tmp_path / "b", postgres_url, **shared) as replica_b,
    ):
        tenant = await replica_a.make_tenant("ACME")
        _, token = await Devices(replica_a.rt).create_node(
            None, tenant.tenant_id, "N-1", "Site", ""
        )
        config = node_config(tmp_path, replica_b, tenant.company_code, "N-1", token)
        doc = tmp_path / "memo.txt"
        doc.write_bytes(b"Minutes\n")
        async with running_node(config) as node:
            await linked(node)
            assert not await lpd_takes(node, "annex", doc)
            await tenant.admin.device.CreatePrinter(
                device_pb2.CreatePrinterRequest(printer=device_pb2.Printer(name="annex"))
            )
            assert await eventually(lambda: lpd_takes(node, "annex", doc), within=5.0) < 5.0
            assert node.link.connects == 1
