"""NodeLink directory replication (issue 3): a 100 000-user snapshot to a real node process.

The cloud process is seeded with a tenant whose 100 000 users a sync agent streams in with
DirectoryService.SyncUsers over gRPC (profile fields and a PIN each; no cards or passwords, as
an LDAP sync sends them). `printfabric-node run` then replicates them; the time runs from its
start to its SQLite replica holding the snapshot's revision. The cloud, and the node home with
its replica, stay up for nodelink_delta (tests/bench/nodelink_delta.py); shutdown() ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from printfabric.v1 import auth_pb2, directory_pb2, directory_pb2_grpc

from cloud.domain.runtime import Runtime
from node.config import NodeConfig
from tests.bench import nodelink_fabric as fab
from tests.bench.spool_1gib import BenchError, Outcome

NAME = "nodelink_snapshot"
USERS = 100_000
# Below this the snapshot counts as a problem worth a look.
MIN_USERS_PER_S = 5_000.0
SYNC_SECONDS = 300.0
SNAPSHOT_SECONDS = 240.0
POLL_SECONDS = 0.01
STOP_SECONDS = 20.0
_USER_COLUMNS = (
    "login, login_key, email, full_name, department, rights, disabled, password_hash, pin_hash,"
    " revision"
)


@dataclass
class Fabric:
    """The seeded cloud process both benchmarks use, and the node home they share."""

    home: Path
    tenant: fab.SeededTenant
    node: fab.Agent
    cloud: fab.CloudProcess
    revision: int
    users: int
    sync_seconds: float

    @property
    def node_home(self) -> Path:
        return self.home / "node"

    def node_config(self) -> NodeConfig:
        return NodeConfig(
            home=self.node_home,
            cloud_target=self.cloud.target,
            cloud_ca=self.cloud.ca_file,
            company_code=self.tenant.company_code,
            serial_number=self.node.serial,
            access_token=self.node.token,
        )

    def close(self) -> None:
        try:
            self.cloud.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


_fabric: Fabric | None = None


def shutdown() -> None:
    """Stops the shared cloud and removes its folder (the bench's main calls this at the end)."""
    global _fabric
    if _fabric is not None:
        fabric, _fabric = _fabric, None
        fabric.close()


def _build(name: str) -> Fabric:
    home = Path(tempfile.mkdtemp(prefix="pf-bench-nodelink-"))
    try:
        fab.say(name, f"seeding tenant, sync agent and node in {home}")

        async def seed_work(rt: Runtime) -> tuple[fab.SeededTenant, fab.Agent, fab.Agent]:
            tenant = await fab.create_tenant(rt, "BENCHDIR")
            agent = await fab.create_sync_agent(rt, tenant)
            (node,) = await fab.create_nodes(rt, tenant, 1)
            return tenant, agent, node

        tenant, agent, node = fab.seed(home, seed_work)
        cloud = fab.CloudProcess(home)
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    try:
        cloud.wait_ready()
        fab.say(name, f"cloud pid {cloud.pid} on {cloud.target}; SyncUsers of {USERS} users")
        started = time.perf_counter()
        reply = asyncio.run(_sync(cloud, tenant, agent))
        seconds = time.perf_counter() - started
        if reply.created != USERS or reply.problems:
            raise BenchError(f"SyncUsers created {reply.created}, problems {reply.problems[:3]}")
        fabric = Fabric(home, tenant, node, cloud, reply.directory_revision, USERS + 1, seconds)
        fab.say(name, f"synced in {seconds:.1f} s; directory revision {fabric.revision}")
        return fabric
    except BaseException:
        cloud.stop()
        shutil.rmtree(home, ignore_errors=True)
        raise


def shared(name: str) -> Fabric:
    """The fabric the last benchmark left up, or a new one (seeded and synced, no replica)."""
    global _fabric
    if _fabric is None:
        _fabric = _build(name)
    return _fabric


async def _sync(
    cloud: fab.CloudProcess, tenant: fab.SeededTenant, agent: fab.Agent
) -> directory_pb2.SyncUsersResponse:
    async with fab.aio_channel(cloud.target, cloud.ca) as channel:
        md = await fab.login_agent(channel, tenant, agent, auth_pb2.DEVICE_KIND_SYNC_AGENT)

        async def requests() -> AsyncIterator[directory_pb2.SyncUsersRequest]:
            for message in fab.wire_records(USERS, cards=False):
                yield message

        reply: directory_pb2.SyncUsersResponse = await directory_pb2_grpc.DirectoryServiceStub(
            channel
        ).SyncUsers(requests(), metadata=md, timeout=SYNC_SECONDS)
        return reply


# Snapshot ---------------------------------------------------------------------------------------


def _baseline(fabric: Fabric) -> tuple[float, float, int]:
    """One plain SQL read of the snapshot's rows, and their write into an empty SQLite file."""
    source = fab.cloud_config(fabric.home).state_dir / "cloud.db"
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(source)) as db:
        rows = db.execute(
            f"SELECT id, {_USER_COLUMNS} FROM users WHERE tenant_id = ? AND revision <= ?"
            " ORDER BY revision",
            (fabric.tenant.tenant_id, fabric.revision),
        ).fetchall()
    read = time.perf_counter() - started
    target = fabric.home / "baseline.db"
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(target, isolation_level=None)) as db:
        # The node's own settings: WAL, and a commit that reaches the disk.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"CREATE TABLE users (user_id TEXT PRIMARY KEY, {_USER_COLUMNS})")
        db.execute("BEGIN IMMEDIATE")
        db.executemany(f"INSERT INTO users VALUES ({', '.join('?' * 11)})", rows)
        db.execute("COMMIT")
    write = time.perf_counter() - started
    target.unlink()
    return read, write, len(rows)


@dataclass(frozen=True)
class SnapshotTiming:
    first_chunk: float
    done: float
    users: int
    # CPU seconds (user + system) of the node process until then.
    node_cpu: float


def _watch_replica(
    process: subprocess.Popen[bytes], db_path: Path, revision: int
) -> SnapshotTiming:
    """Polls the node's SQLite until its replica holds `revision`; times from now."""
    started = time.perf_counter()
    deadline = started + SNAPSHOT_SECONDS
    first_chunk = 0.0
    db: sqlite3.Connection | None = None
    try:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise BenchError(f"the node exited with {process.returncode}")
            try:
                if db is None and db_path.exists():
                    db = sqlite3.connect(db_path, timeout=1)
                row = (
                    db.execute(
                        "SELECT revision, staging_revision FROM replica_meta WHERE id = 1"
                    ).fetchone()
                    if db is not None
                    else None
                )
            except sqlite3.OperationalError:
                row = None  # not created yet, or busy for a moment
            now = time.perf_counter()
            if row is not None:
                held, staging = row
                if not first_chunk and (staging is not None or held == revision):
                    first_chunk = now
                if held == revision:
                    assert db is not None
                    (users,) = db.execute("SELECT count(*) FROM replica_users").fetchone()
                    return SnapshotTiming(
                        first_chunk - started, now - started, int(users), _cpu(process.pid)
                    )
            time.sleep(POLL_SECONDS)
    finally:
        if db is not None:
            db.close()
    raise BenchError(
        f"the node's replica did not reach revision {revision} in {SNAPSHOT_SECONDS:.0f} s"
    )


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is not None:
        return f"had already exited with {process.returncode}"
    process.send_signal(signal.SIGTERM)
    try:
        return f"exit {process.wait(STOP_SECONDS)} after SIGTERM"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return f"did not stop within {STOP_SECONDS:.0f} s of SIGTERM: killed"


def _node_process(fabric: Fabric) -> subprocess.Popen[bytes]:
    config = fabric.node_config()
    env = fab.clean_env(
        PF_NODE_HOME=str(config.home),
        PF_CLOUD_TARGET=config.cloud_target,
        PF_CLOUD_CA=str(config.cloud_ca),
        PF_COMPANY_CODE=config.company_code,
        PF_NODE_SERIAL=config.serial_number,
        PF_NODE_TOKEN=config.access_token,
    )
    with (fabric.home / "node.log").open("wb") as out:
        return subprocess.Popen(
            [*fab.console_script("printfabric-node", "node"), "run"],
            cwd=fabric.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def run() -> Outcome:
    shutdown()  # a fabric left by an earlier run would hold a replica already
    fabric = shared(NAME)
    try:
        fab.say(NAME, "baseline: plain SQL read of the rows, then a write into empty SQLite")
        read, write, rows = _baseline(fabric)
        fab.say(NAME, "starting printfabric-node run; polling its replica")
        cloud_cpu = _cpu(fabric.cloud.pid)
        process = _node_process(fabric)
        try:
            timing = _watch_replica(process, fabric.node_home / "node.db", fabric.revision)
            cloud_cpu = _cpu(fabric.cloud.pid) - cloud_cpu
        except BenchError as exc:
            raise BenchError(f"{exc}\n{fab.tail(fabric.home / 'node.log')}") from exc
        finally:
            stopped = _stop(process)
    except BaseException:
        shutdown()
        raise
    rate = fabric.users / timing.done
    complete = timing.users == fabric.users == rows
    fast = rate >= MIN_USERS_PER_S
    rows_out = (
        (
            "setup",
            f"{USERS} users via SyncUsers (gRPC, sync agent) in {fabric.sync_seconds:.1f} s"
            f" ({USERS / fabric.sync_seconds:.0f} users/s)",
        ),
        (
            "directory",
            f"{USERS} synced + admin = {fabric.users} users, PIN each, no cards or passwords,"
            f" revision {fabric.revision}",
        ),
        ("baseline: plain SQL read", f"{read:.2f} s ({rows / read:.0f} rows/s)"),
        ("baseline: write to empty SQLite", f"{write:.2f} s ({rows / write:.0f} rows/s)"),
        ("node start -> first chunk staged", f"{timing.first_chunk:.2f} s"),
        ("node start -> replica at revision", f"{timing.done:.2f} s ({rate:.0f} users/s)"),
        ("snapshot / (read + write) baseline", f"{timing.done / (read + write):.1f}x slower"),
        ("CPU until then", f"cloud {cloud_cpu:.1f} s, node {timing.node_cpu:.1f} s"),
        ("replica users", f"{timing.users} of {fabric.users}: {'ok' if complete else 'MISSING'}"),
        ("node stop", stopped),
        (f">= {MIN_USERS_PER_S:.0f} users/s", f"{'PASS' if fast else 'FAIL'} ({rate:.0f} users/s)"),
    )
    return Outcome(NAME, rows_out, passed=complete and fast)
