"""NodeLink memory per connected node: 1 000 simulated nodes on one cloud process.

The nodes are created in the cloud's database with the domain code before the cloud starts;
one client process then opens a NodeLink stream per node, first over a few shared channels,
then (on a restarted cloud) over one channel per node. Each stream sends hello, reads welcome
and a small snapshot, acknowledges it with directory_applied, and trades heartbeats with the
cloud. The cloud's RSS is taken before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import psutil
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import node_link_pb2 as nl
from printfabric.v1 import node_link_pb2_grpc

from cloud.domain.runtime import Runtime
from tests.bench import nodelink_fabric as fab
from tests.bench.spool_1gib import BenchError, Outcome, RssSampler

NAME = "nodelink_memory"
NODES = 1_000
# The streams share a few connections first (the cost of a link alone), then every node has its
# own TLS connection, as real nodes do (the cost of a node).
SHARED_CHANNELS = 8
DIRECTORY_USERS = 50
# Short enough that every stream sees a few in the test, long enough not to flood: 1 000
# nodes at 5 s are 200 heartbeats a second each way.
HEARTBEAT_SECONDS = 5
MAX_KB_PER_NODE = 200.0
KB = 1000
MB = 1_000_000
CONNECT_SECONDS = 180.0
SETTLE_SECONDS = 2.0


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


@dataclass(eq=False)
class SimulatedNode:
    """One node's NodeLink stream: hello, then directory_applied and heartbeats."""

    tenant: fab.SeededTenant
    agent: fab.Agent
    seq: int = 0
    outgoing: asyncio.Queue[nl.ConnectRequest | None] = field(default_factory=asyncio.Queue)
    welcomed: bool = False
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    # Set at the second heartbeat from the cloud (the first comes with the welcome).
    beating: asyncio.Event = field(default_factory=asyncio.Event)
    users: int = 0
    heartbeats: int = 0
    ended: str = ""
    call: grpc.aio.StreamStreamCall[nl.ConnectRequest, nl.ConnectResponse] | None = None

    def send(self, message: nl.ConnectRequest) -> None:
        self.seq += 1
        message.seq = self.seq
        self.outgoing.put_nowait(message)

    async def _requests(self) -> AsyncIterator[nl.ConnectRequest]:
        while (message := await self.outgoing.get()) is not None:
            yield message

    async def run(self, stub: node_link_pb2_grpc.NodeLinkServiceStub) -> None:
        self.send(
            nl.ConnectRequest(
                hello=nl.NodeHello(
                    company_code=self.tenant.company_code,
                    serial_number=self.agent.serial,
                    access_token=self.agent.token,
                    software_version="bench",
                    directory_revision=0,
                    session_id=self.agent.serial,
                )
            )
        )
        self.call = stub.Connect(self._requests())
        try:
            async for message in self.call:
                kind = message.WhichOneof("body")
                if kind == "welcome":
                    self.welcomed = True
                elif kind == "directory_snapshot":
                    chunk = message.directory_snapshot
                    self.users += len(chunk.users)
                    if chunk.last:
                        self.send(
                            nl.ConnectRequest(
                                directory_applied=nl.DirectoryApplied(revision=chunk.revision)
                            )
                        )
                        self.synced.set()
                elif kind == "heartbeat":
                    self.heartbeats += 1
                    if self.heartbeats >= 2:
                        self.beating.set()
            self.ended = "the cloud ended the stream"
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.ended = f"{exc.code().name}: {exc.details()}"
        finally:
            # Unblocks anyone waiting on a stream that ended early.
            self.synced.set()
            self.beating.set()

    def close(self) -> None:
        self.outgoing.put_nowait(None)
        if self.call is not None:
            self.call.cancel()


async def _beat(nodes: list[SimulatedNode]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        stamp = _now()
        for node in nodes:
            node.send(nl.ConnectRequest(heartbeat=nl.Heartbeat(send_time=stamp)))


def _rss(cloud: fab.CloudProcess) -> int:
    """The median of a few samples over half a second (RSS moves a little while idle)."""
    samples = []
    for _ in range(5):
        samples.append(cloud.rss())
        time.sleep(0.1)
    return int(statistics.median(samples))


def _cpu(pid: int | None = None) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class Figures:
    channels: int
    idle: int
    before: int
    after: int
    peak: int
    connect_seconds: float
    # CPU seconds (user + system) the cloud and this client spent while the links came up.
    cloud_cpu: float
    client_cpu: float
    # Share of one core the cloud used while the links only traded heartbeats.
    rest_cpu: float
    synced: int
    users_each: set[int]
    min_heartbeats: int
    ended: list[str]
    alive: bool = True
    stopped: str = ""

    @property
    def per_node(self) -> float:
        return (self.after - self.before) / NODES


async def _warm_up(stub: node_link_pb2_grpc.NodeLinkServiceStub, node: SimulatedNode) -> None:
    """One link first: the cloud's first one loads code and fills caches once, not per node."""
    task = asyncio.create_task(node.run(stub))
    await asyncio.wait_for(node.synced.wait(), 30)
    node.close()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    if node.ended:
        raise BenchError(f"the warm-up link failed: {node.ended}")


async def _connect_all(
    cloud: fab.CloudProcess,
    tenant: fab.SeededTenant,
    agents: list[fab.Agent],
    channels: int,
    sampler: RssSampler,
) -> Figures:
    opened = [fab.aio_channel(cloud.target, cloud.ca, own_connection=True) for _ in range(channels)]
    stubs = [node_link_pb2_grpc.NodeLinkServiceStub(c) for c in opened]
    tasks: list[asyncio.Task[None]] = []
    nodes: list[SimulatedNode] = []
    try:
        idle = await asyncio.to_thread(_rss, cloud)
        await _warm_up(stubs[0], SimulatedNode(tenant, agents[0]))
        await asyncio.sleep(SETTLE_SECONDS)
        before = await asyncio.to_thread(_rss, cloud)

        sampler.phase(f"connect/{channels}")
        fab.say(NAME, f"opening {NODES} NodeLink streams over {channels} channels")
        nodes = [SimulatedNode(tenant, a) for a in agents[1 : NODES + 1]]
        cloud_cpu, client_cpu = _cpu(cloud.pid), _cpu()
        started = time.perf_counter()
        tasks = [asyncio.create_task(n.run(stubs[i % channels])) for i, n in enumerate(nodes)]
        tasks.append(asyncio.create_task(_beat(nodes)))
        with contextlib.suppress(TimeoutError):  # who is missing is counted below
            await asyncio.wait_for(
                asyncio.gather(*(n.synced.wait() for n in nodes)), CONNECT_SECONDS
            )
        connect_seconds = time.perf_counter() - started
        cloud_cpu, client_cpu = _cpu(cloud.pid) - cloud_cpu, _cpu() - client_cpu
        fab.say(NAME, f"all streams answered in {connect_seconds:.1f} s; waiting for heartbeats")
        sampler.phase(f"connected/{channels}")
        with contextlib.suppress(TimeoutError):  # the fewest heard is reported below
            await asyncio.wait_for(
                asyncio.gather(*(n.beating.wait() for n in nodes)), 3 * HEARTBEAT_SECONDS
            )
        await asyncio.sleep(SETTLE_SECONDS)
        after = await asyncio.to_thread(_rss, cloud)
        # Over one heartbeat period once the links are up and the connect backlog is done.
        rest_from, rest_cpu = time.perf_counter(), _cpu(cloud.pid)
        await asyncio.sleep(HEARTBEAT_SECONDS)
        rest = (_cpu(cloud.pid) - rest_cpu) / (time.perf_counter() - rest_from)
        return Figures(
            channels=channels,
            idle=idle,
            before=before,
            after=after,
            peak=sampler.peak,
            connect_seconds=connect_seconds,
            cloud_cpu=cloud_cpu,
            client_cpu=client_cpu,
            rest_cpu=rest,
            synced=sum(1 for n in nodes if n.welcomed and n.synced.is_set() and not n.ended),
            users_each={n.users for n in nodes},
            min_heartbeats=min(n.heartbeats for n in nodes),
            ended=[n.ended for n in nodes if n.ended],
        )
    finally:
        for node in nodes:
            node.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in opened:
            await channel.close()


def _measure(
    home: Path, tenant: fab.SeededTenant, agents: list[fab.Agent], channels: int
) -> Figures:
    """One fresh cloud process over the seeded home, NODES links over `channels` channels."""
    with contextlib.ExitStack() as cleanup:
        cloud = fab.CloudProcess(home, heartbeat=f"{HEARTBEAT_SECONDS}s")
        cleanup.callback(cloud.stop)
        cloud.wait_ready()
        sampler = RssSampler(cloud.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        fab.say(NAME, f"cloud pid {cloud.pid} on {cloud.target}")
        figures = asyncio.run(_connect_all(cloud, tenant, agents, channels, sampler))
        alive = cloud.process.poll() is None
        sampler.stop()
        return replace(figures, alive=alive, stopped=cloud.stop())


def _rows(f: Figures) -> list[tuple[str, str]]:
    how = "shared channels" if f.channels < NODES else "own channels"
    return [
        (f"{how}: streams", f"{NODES} over {f.channels} channels (TCP+TLS connections)"),
        (
            f"{how}: cloud RSS",
            f"idle {f.idle / MB:.1f} MB, after warm-up link {f.before / MB:.1f} MB,"
            f" with {NODES} links {f.after / MB:.1f} MB, peak {f.peak / MB:.1f} MB",
        ),
        (
            f"{how}: all welcomed + snapshot",
            f"{f.connect_seconds:.1f} s ({NODES / f.connect_seconds:.0f} links/s)",
        ),
        (
            f"{how}: CPU while connecting",
            f"cloud {f.cloud_cpu:.1f} s ({f.cloud_cpu / NODES * 1000:.1f} ms per link),"
            f" client {f.client_cpu:.1f} s",
        ),
        (f"{how}: cloud CPU, links at rest", f"{f.rest_cpu * 100:.0f}% of one core"),
        (
            f"{how}: nodes with the directory",
            f"{f.synced} of {NODES} ({'/'.join(str(u) for u in sorted(f.users_each))} users each)",
        ),
        (f"{how}: heartbeats heard (fewest)", f"{f.min_heartbeats}"),
        (f"{how}: streams ended early", "; ".join(sorted(set(f.ended)))[:200] or "none"),
        (f"{how}: cloud", f"{'alive' if f.alive else 'DIED'}; stop: {f.stopped}"),
        (
            f"{how}: RSS per node <= {MAX_KB_PER_NODE:.0f} kB",
            f"{'PASS' if f.per_node <= MAX_KB_PER_NODE * KB else 'FAIL'}"
            f" ({f.per_node / KB:.1f} kB)",
        ),
    ]


def run() -> Outcome:
    home = Path(tempfile.mkdtemp(prefix="pf-bench-fleet-"))
    try:
        fab.say(NAME, f"seeding {DIRECTORY_USERS} users and {NODES + 1} nodes in {home}")
        started = time.perf_counter()

        async def seed_work(rt: Runtime) -> tuple[fab.SeededTenant, list[fab.Agent]]:
            tenant = await fab.create_tenant(rt, "FLEET")
            await fab.sync_directly(rt, tenant, DIRECTORY_USERS)
            return tenant, await fab.create_nodes(rt, tenant, NODES + 1)

        tenant, agents = fab.seed(home, seed_work)
        seeded = time.perf_counter() - started
        passes = [_measure(home, tenant, agents, n) for n in (SHARED_CHANNELS, NODES)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    directory = DIRECTORY_USERS + 1
    rows = [
        (
            "setup",
            f"{NODES + 1} nodes by Devices.create_node, {directory} users by sync_users:"
            f" {seeded:.1f} s",
        ),
        ("heartbeat", f"{HEARTBEAT_SECONDS} s both ways"),
    ]
    passed = True
    for f in passes:
        rows += _rows(f)
        passed &= (
            f.per_node <= MAX_KB_PER_NODE * KB
            and f.synced == NODES
            and f.users_each == {directory}
            and f.min_heartbeats >= 2
            and f.alive
        )
    return Outcome(NAME, tuple(rows), passed=passed)
