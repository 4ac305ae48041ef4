"""NodeLink under faults, with real processes (issue 3, "Done when").

- kill -9 the cloud while a node streams 10 000 usage records; restart it: every record is in the
  cloud's database exactly once;
- cut and restore the link 50 times under the same load through a TCP proxy: same result;
- two cloud replicas on one PostgreSQL and one Redis: a user created through replica A reaches a
  node linked to replica B within a second, and a job released through A reaches the node.

The cloud (`printfabric-cloud serve`), the node (`printfabric-node run`), Redis and PostgreSQL
run as processes of their own; the tests read the databases the way an operator would.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from printfabric.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    spool_pb2,
    spool_pb2_grpc,
)

from tests.support.postgres import PostgresUnavailable, postgres_server
from tests.support.processes import (
    CloudProcess,
    NodeProcess,
    RedisServer,
    TcpProxy,
    clean_env,
    cli,
    cli_json,
    free_port,
    peer_missing,
    print_logs,
    read_only_sqlite,
    require_peer,
    wait_until,
)

COMPANY = "FAULTS"
SERIAL = "NODE-FAULTS-1"
RECORDS = 10_000
ADMIN_PASSWORD = "admin-pass-1"
# How long the node may take to drain its outbox after the last fault.
DRAIN_SECONDS = 60.0


# The site: a tenant, an admin and a node, made with the admin CLI -------------------------------


@dataclass(frozen=True)
class Site:
    home: Path
    node_token: str
    node_id: str


def register_site(home: Path, **settings: str) -> Site:
    env = clean_env(PF_HOME=str(home), ADMIN_PW=ADMIN_PASSWORD, **settings)
    cli("printfabric-cloud", "tenant", "create", COMPANY, "--name", "Faults Inc.", env=env)
    cli(
        "printfabric-cloud",
        "user",
        "create",
        "--tenant",
        COMPANY,
        "admin",
        "--admin",
        "--password-env",
        "ADMIN_PW",
        env=env,
    )
    node = cli_json(
        "printfabric-cloud", "--json", "node", "create", "--tenant", COMPANY, SERIAL, env=env
    )
    return Site(home, node["access_token"], node["node_id"])


def node_process(tmp_path: Path, site: Site, target: str, **settings: str) -> NodeProcess:
    knobs = {
        "PF_CLOUD_TARGET": target,
        "PF_CLOUD_CA": str(site.home / "tls" / "ca.pem"),
        "PF_COMPANY_CODE": COMPANY,
        "PF_NODE_SERIAL": SERIAL,
        "PF_NODE_TOKEN": site.node_token,
        "PF_NODE_HEARTBEAT": "1s",
        "PF_NODE_BACKOFF_INITIAL": "100ms",
        "PF_NODE_BACKOFF_MAX": "2s",
        "PF_NODE_OUTBOX_POLL": "50ms",
        **settings,
    }
    return NodeProcess("node", tmp_path / "node", tmp_path / "node.log", **knobs)


def usage_file(path: Path, prefix: str, count: int) -> set[str]:
    """A JBA-style JSONL file of count usage records with unique request ids."""
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    lines = (
        json.dumps(
            {
                "request_id": request_id,
                "kind": "PRINT",
                "user_login": "admin",
                "document_name": f"report {i}.pdf",
                "pages": 2,
                "sheets": 1,
                "color_pages": 0,
                "mono_pages": 2,
                "duplex": True,
                "paper_size": "A4",
                "occur_time": "2024-05-01T09:30:00Z",
            }
        )
        for i, request_id in enumerate(ids)
    )
    path.write_text("\n".join(lines) + "\n")
    return set(ids)


def cloud_db(site: Site) -> Path:
    return site.home / "cloud" / "cloud.db"


def stored_count(db: Path) -> int:
    with read_only_sqlite(db) as conn:
        return int(conn.execute("SELECT count(*) FROM accounting_entries").fetchone()[0])


def assert_exactly_once(db: Path, expected: set[str]) -> None:
    with read_only_sqlite(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT request_id FROM accounting_entries")]
    counts = collections.Counter(ids)
    twice = sorted(r for r, n in counts.items() if n > 1)
    missing = sorted(expected - counts.keys())
    extra = sorted(counts.keys() - expected)
    assert not twice, f"{len(twice)} records stored more than once, e.g. {twice[:5]}"
    assert not missing, (
        f"{len(missing)} of {len(expected)} records never arrived, e.g. {missing[:5]}"
    )
    assert not extra, f"{len(extra)} records nobody sent, e.g. {extra[:5]}"
    assert len(ids) == len(expected)


def drained(node: NodeProcess, *watch: CloudProcess) -> None:
    """Waits for the node's outbox to empty, then has `status --json` confirm it."""
    wait_until(
        lambda: node.outbox_size() == 0,
        DRAIN_SECONDS,
        "the node's outbox to drain",
        [node, *watch],
    )
    status = node.status()
    assert status["outbox"]["total"] == 0, status
    node.check_alive()


def say(message: str) -> None:
    print(f"[faults] {message}", flush=True)


# 1. kill -9 the cloud mid-stream ---------------------------------------------------------------


def seeded(what: str) -> random.Random:
    seed = int.from_bytes(os.urandom(4), "big")
    say(f"{what} seeded with {seed}")
    return random.Random(seed)


def test_kill_9_the_cloud_mid_stream_then_every_record_is_stored_exactly_once(
    tmp_path: Path,
) -> None:
    # Killed once this many records are stored: one to 15 of the 20 batches in.
    kill_at = seeded("the kill").randrange(500, 8_000, 500)
    site = register_site(tmp_path / "cloud-home")
    cloud = CloudProcess("cloud", site.home, free_port(), tmp_path / "cloud.log")
    node = node_process(tmp_path, site, cloud.target)
    try:
        cloud.start_ready()
        node.start()
        wait_until(lambda: node.links() >= 1, 30, "the node to link up", [node, cloud])

        expected = usage_file(tmp_path / "jba.jsonl", "kill9", RECORDS)
        started = time.monotonic()
        node.command("enqueue-usage", str(tmp_path / "jba.jsonl"))
        db = cloud_db(site)
        before_kill = wait_until(
            lambda: (n := stored_count(db)) >= kill_at and n,
            30,
            f"{kill_at} records in the cloud's database",
            [node, cloud],
            every=0.002,
        )
        cloud.kill9()
        assert before_kill < RECORDS, "all records arrived before the kill: nothing was in flight"
        at_kill = stored_count(db)
        assert at_kill < RECORDS, "all records arrived before the kill: nothing was in flight"
        say(f"killed the cloud (pid {cloud.pid}) with {at_kill} of {RECORDS} records stored")

        time.sleep(0.5)
        cloud.start_ready()
        drained(node, cloud)
        took = time.monotonic() - started
        assert_exactly_once(db, expected)
        assert node.links() >= 2, node.tail()
        say(f"kill -9: {RECORDS} records stored exactly once, {took:.1f} s from enqueue")
        assert node.stop() == 0, node.tail()
        assert cloud.stop() == 0, cloud.tail()
    except BaseException:
        print_logs(node, cloud)
        raise
    finally:
        node.stop()
        cloud.stop()


# 2. cut and restore the link 50 times ----------------------------------------------------------

CUTS = 50
# The link is paced like a branch office's WAN line: the 10 000 records (about 600 kB, 20
# batches) take some 7 s to go up uncut instead of a fraction of a second, so the cuts fall
# while they flow.
LINE_RATE = 80_000
CUTTING_SECONDS = 90.0


def link_lifetime(rng: random.Random) -> float:
    """How long a link lives before its cut: mostly too short for a batch to go up (cut in the
    handshake or mid-batch), now and then long enough for a batch or two to be committed (cut
    before or after their acks)."""
    return rng.uniform(0.4, 1.0) if rng.random() < 0.2 else rng.uniform(0.02, 0.3)


def test_cutting_the_link_50_times_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = seeded("the cuts")
    site = register_site(tmp_path / "cloud-home")
    cloud = CloudProcess("cloud", site.home, free_port(), tmp_path / "cloud.log")
    with TcpProxy(cloud.port, bytes_per_second=LINE_RATE) as proxy:
        node = node_process(
            tmp_path,
            site,
            f"127.0.0.1:{proxy.port}",
            PF_NODE_BACKOFF_INITIAL="50ms",
            PF_NODE_BACKOFF_MAX="500ms",
        )
        try:
            cloud.start_ready()
            node.start()
            wait_until(lambda: node.links() >= 1, 30, "the node to link up", [node, cloud])

            expected = usage_file(tmp_path / "jba.jsonl", "cut", RECORDS)
            started = time.monotonic()
            node.command("enqueue-usage", str(tmp_path / "jba.jsonl"))
            db = cloud_db(site)
            cuts = in_flight = 0
            refills = 0
            deadline = time.monotonic() + CUTTING_SECONDS
            # Half the cuts must fall while records are in flight, however fast this machine
            # drains the outbox: when it runs dry early, more records go in.
            while cuts < CUTS or in_flight < CUTS // 2:
                if node.outbox_size() == 0:
                    refills += 1
                    refill = tmp_path / f"jba-{refills}.jsonl"
                    expected |= usage_file(refill, f"cut{refills}", RECORDS // 10)
                    node.command("enqueue-usage", str(refill))
                wait_until(
                    lambda: proxy.live > 0,
                    10,
                    "the node to reconnect through the proxy",
                    [node, cloud],
                    every=0.005,
                )
                time.sleep(link_lifetime(rng))
                pending = node.outbox_size()
                # Now and then the line stays down a moment and new connections are refused.
                if proxy.cut(refuse_for=rng.choice((0.0, 0.0, 0.0, 0.2))):
                    cuts += 1
                    if pending > 0:
                        in_flight += 1
                assert time.monotonic() < deadline, (
                    f"only {cuts} cuts in {CUTTING_SECONDS:.0f} s\n{node.tail()}\n{cloud.tail()}"
                )
            cutting = time.monotonic() - started
            stored_then = stored_count(db)
            drained(node, cloud)
            took = time.monotonic() - started
            say(
                f"{cuts} cuts in {cutting:.1f} s ({proxy.links_cut} links dropped, "
                f"{refills} refills of the outbox, "
                f"{proxy.refused} connections refused), {in_flight} with records in flight, "
                f"{stored_then} stored after the last cut; {proxy.bytes_up} bytes went up"
            )
            assert_exactly_once(db, expected)
            assert node.links() > CUTS // 2, node.tail()
            say(f"cuts: {RECORDS} records stored exactly once, {took:.1f} s from enqueue")
            assert node.stop() == 0, node.tail()
            assert cloud.stop() == 0, cloud.tail()
        except BaseException:
            print_logs(node, cloud)
            raise
        finally:
            node.stop()
            cloud.stop()


# 3. Two replicas, one PostgreSQL, one Redis ----------------------------------------------------


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A fresh, empty database; without a server, fails under CI and skips elsewhere."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            peer_missing(f"PostgreSQL is needed: {exc}")
        yield url


def secure_channel(cloud: CloudProcess) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=cloud.ca.read_bytes())
    return grpc.secure_channel(cloud.target, creds)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_a_user_created_through_replica_a_reaches_a_node_on_replica_b_within_a_second(
    tmp_path: Path, fresh_postgres: str
) -> None:
    redis_program = require_peer("redis-server", "redis-server")
    home = tmp_path / "cloud-home"
    redis = RedisServer(redis_program, tmp_path / "redis", tmp_path / "redis.log")
    shared = {"PF_DATABASE_URL": fresh_postgres}
    replica_a = replica_b = None
    node = None
    try:
        redis.start_ready()
        shared["PF_REDIS_URL"] = redis.url
        site = register_site(home, **shared)
        # One PF_HOME: the same token signing key, TLS identity and blob folder for both.
        replica_a = CloudProcess("cloud-A", home, free_port(), tmp_path / "cloud-a.log", **shared)
        replica_b = CloudProcess("cloud-B", home, free_port(), tmp_path / "cloud-b.log", **shared)
        replica_a.start_ready()
        replica_b.start_ready()
        folder = tmp_path / "printed"
        folder.mkdir()
        node = node_process(tmp_path, site, replica_b.target)
        node.start()
        clouds = [node, replica_a, replica_b, redis]

        def revision() -> int:
            rows = node.query("SELECT revision FROM replica_meta")
            return int(rows[0][0]) if rows else 0

        wait_until(lambda: revision() > 0, 30, "the node's first snapshot from replica B", clouds)
        assert f"linked to the cloud at {replica_b.target}" in node.tail(200)

        with secure_channel(replica_a) as channel:
            login = auth_pb2_grpc.AuthServiceStub(channel).AuthenticateUser(
                auth_pb2.AuthenticateUserRequest(
                    company_code=COMPANY,
                    credential=auth_pb2.UserCredential(
                        password=auth_pb2.PasswordCredential(login="admin", password=ADMIN_PASSWORD)
                    ),
                ),
                timeout=10,
            )
            admin = bearer(login.tokens.access_token)
            directory = directory_pb2_grpc.DirectoryServiceStub(channel)
            created = directory.CreateUser(
                directory_pb2.CreateUserRequest(
                    user=directory_pb2.User(login="bob", full_name="Bob Builder"),
                    password="bob-pass-1",
                    pin="8642",
                ),
                metadata=admin,
                timeout=10,
            )
            answered = time.monotonic()
            user_id = created.user.user_id
            wait_until(
                lambda: node.query("SELECT 1 FROM replica_users WHERE user_id = ?", user_id),
                5,
                "the user created through A in the replica of the node linked to B",
                clouds,
                every=0.002,
            )
            delay = time.monotonic() - answered
            say(f"user created through A reached the node on B in {delay * 1000:.0f} ms")
            assert delay < 1.0, f"the user took {delay:.2f} s to reach the node (limit 1 s)"
            by_pin = json.loads(node.command("auth", "--pin-stdin", stdin="8642\n"))
            assert (by_pin["user_id"], by_pin["login"]) == (user_id, "bob")

            # A job released through A to a printer behind the node reaches the node.
            devices = device_pb2_grpc.DeviceServiceStub(channel)
            for printer in (
                device_pb2.Printer(name="secure", model=device_pb2.QUEUE_MODEL_SECURE),
                device_pb2.Printer(
                    name="office",
                    model=device_pb2.QUEUE_MODEL_DIRECT,
                    device_uri=folder.as_uri(),
                    node_id=site.node_id,
                ),
            ):
                devices.CreatePrinter(
                    device_pb2.CreatePrinterRequest(printer=printer), metadata=admin, timeout=10
                )
            bob = auth_pb2_grpc.AuthServiceStub(channel).AuthenticateUser(
                auth_pb2.AuthenticateUserRequest(
                    company_code=COMPANY, credential=auth_pb2.UserCredential(pin="8642")
                ),
                timeout=10,
            )
            as_bob = bearer(bob.tokens.access_token)
            spool = spool_pb2_grpc.SpoolServiceStub(channel)
            data = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
            job = spool.SubmitJob(
                iter(
                    [
                        spool_pb2.SubmitJobRequest(
                            header=spool_pb2.JobHeader(printer="secure", title="Site plan")
                        ),
                        spool_pb2.SubmitJobRequest(chunk=data),
                    ]
                ),
                metadata=as_bob,
                timeout=30,
            ).job
            assert job.state == spool_pb2.JOB_STATE_HELD
            released = spool.ReleaseJobs(
                spool_pb2.ReleaseJobsRequest(job_ids=[job.job_id], printer_id="office"),
                metadata=as_bob,
                timeout=10,
            )
            assert [j.job_id for j in released.jobs] == [job.job_id]
            started = time.monotonic()

            def completed() -> bool:
                state = spool.GetJob(
                    spool_pb2.GetJobRequest(job_id=job.job_id), metadata=as_bob, timeout=10
                ).job.state
                return state == spool_pb2.JOB_STATE_COMPLETED

            wait_until(completed, 20, "the released job to be delivered by the node", clouds)
            say(
                f"job released through A delivered by the node on B in {time.monotonic() - started:.2f} s"
            )
            (delivered,) = folder.iterdir()
            assert hashlib.sha256(delivered.read_bytes()).hexdigest() == job.sha256
        assert node.stop() == 0, node.tail()
        for replica in (replica_a, replica_b):
            assert replica.stop() == 0, replica.tail()
    except BaseException:
        print_logs(node, replica_a, replica_b, redis)
        raise
    finally:
        for process in (node, replica_b, replica_a):
            if process is not None:
                process.stop()
        redis.stop()
