"""NodeLink delta latency (issue 3): single-user changes in the cloud until a node's replica has them.

Uses the cloud and node home nodelink_snapshot leaves (or builds them when run alone). The node
library runs in this process on that home, as a restarted node: it announces the snapshot's
revision and gets deltas only. Its Replica is subclassed so apply_delta notes when each change
is committed. 200 changes go through the gRPC API one at a time, alternating UpdateUser and
SetPin, each timed from just before its call until the replica's commit; a GetTenant round trip
on the same server is the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.v1 import directory_pb2, directory_pb2_grpc, tenant_pb2, tenant_pb2_grpc

from node.db import NodeDatabase
from node.link import NodeLink
from node.outbox import Outbox
from node.replica import DirectoryDelta, Replica
from tests.bench import nodelink
from tests.bench import nodelink_fabric as fab
from tests.bench.spool_1gib import BenchError, Outcome

NAME = "nodelink_delta"
CHANGES = 200
WARM_UP = 20
# Above this the delta latency counts as a problem worth a look.
MAX_P99_SECONDS = 1.0
CHANGE_SECONDS = 10.0
CATCH_UP_SECONDS = 240.0


class TimedReplica(Replica):
    """The node's replica, noting when a user's change has been committed by apply_delta."""

    def __init__(self, db: NodeDatabase) -> None:
        super().__init__(db)
        self.waiting: dict[str, asyncio.Future[tuple[float, DirectoryDelta]]] = {}

    async def apply_delta(self, delta: DirectoryDelta) -> int:
        revision = await super().apply_delta(delta)
        now = time.perf_counter()
        for user in delta.upserts:
            waiter = self.waiting.pop(user.user_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result((now, delta))
        return revision


@dataclass(frozen=True)
class Figures:
    applied: list[float]
    calls: list[float]
    get_tenant: list[float]
    missing: int


async def _caught_up(replica: Replica, link: NodeLink, revision: int) -> None:
    deadline = time.perf_counter() + CATCH_UP_SECONDS
    while await replica.revision() < revision:
        if time.perf_counter() > deadline:
            raise BenchError(f"the node did not reach revision {revision}: {link.last_error}")
        await asyncio.sleep(0.1)


async def _change(
    directory: directory_pb2_grpc.DirectoryServiceStub, md: fab.Metadata, user_id: str, i: int
) -> str:
    """Change i of the run; returns the full name the replica must show ("" for a PIN)."""
    if i % 2:
        # Unique in the tenant, and outside the synced users' PINs.
        pin = f"{90_000_000 + i}"
        request = directory_pb2.SetPinRequest(user_id=user_id, pin=pin)
        await directory.SetPin(request, metadata=md, timeout=10)
        return ""
    name = f"Moved {time.monotonic_ns()}"
    await directory.UpdateUser(
        directory_pb2.UpdateUserRequest(
            user=directory_pb2.User(user_id=user_id, full_name=name),
            update_mask=FieldMask(paths=["full_name"]),
        ),
        metadata=md,
        timeout=10,
    )
    return name


async def _measure(fabric: nodelink.Fabric) -> Figures:
    config = fabric.node_config()
    db = await NodeDatabase.open(config.db_path)
    replica = TimedReplica(db)
    link = NodeLink(config, replica, Outbox(db))
    task = asyncio.create_task(link.run(), name="bench-nodelink")
    try:
        await _caught_up(replica, link, fabric.revision)
        async with fab.aio_channel(fabric.cloud.target, fabric.cloud.ca) as channel:
            md = await fab.login_admin(channel, fabric.tenant)
            tenants = tenant_pb2_grpc.TenantServiceStub(channel)
            directory = directory_pb2_grpc.DirectoryServiceStub(channel)
            get_tenant = []
            for i in range(WARM_UP + CHANGES):
                started = time.perf_counter()
                await tenants.GetTenant(tenant_pb2.GetTenantRequest(), metadata=md, timeout=10)
                if i >= WARM_UP:  # the first ones warm up the channel and the server
                    get_tenant.append(time.perf_counter() - started)
            listed = await directory.ListUsers(
                directory_pb2.ListUsersRequest(page_size=CHANGES + 1), metadata=md, timeout=30
            )
            users = [u.user_id for u in listed.users if u.login != fabric.tenant.admin_login]
            applied: list[float] = []
            calls: list[float] = []
            loop = asyncio.get_running_loop()
            for i, user_id in enumerate(users[:CHANGES]):
                waiter: asyncio.Future[tuple[float, DirectoryDelta]] = loop.create_future()
                replica.waiting[user_id] = waiter
                started = time.perf_counter()
                name = await _change(directory, md, user_id, i)
                calls.append(time.perf_counter() - started)
                try:
                    at, delta = await asyncio.wait_for(waiter, CHANGE_SECONDS)
                except TimeoutError:
                    replica.waiting.pop(user_id, None)
                    continue
                seen = next(u for u in delta.upserts if u.user_id == user_id)
                if not name or seen.full_name == name:
                    applied.append(at - started)
        return Figures(applied, calls, get_tenant, CHANGES - len(applied))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.close()


def run() -> Outcome:
    fabric = nodelink.shared(NAME)
    try:
        fab.say(NAME, f"node library in process on {fabric.node_home}; {CHANGES} changes")
        figures = asyncio.run(_measure(fabric))
    finally:
        nodelink.shutdown()  # the last user of the shared cloud
    if not figures.applied:
        raise BenchError("no change reached the node's replica")
    p99 = fab.percentile(figures.applied, 99)
    fast = p99 <= MAX_P99_SECONDS
    ratio = fab.percentile(figures.applied, 50) / fab.percentile(figures.get_tenant, 50)
    rows = (
        ("directory", f"{fabric.users} users; changes alternate UpdateUser and SetPin"),
        ("baseline: GetTenant round trip", fab.spread(figures.get_tenant)),
        ("UpdateUser/SetPin call", fab.spread(figures.calls)),
        ("change -> node replica committed", fab.spread(figures.applied)),
        ("delta p50 / GetTenant p50", f"{ratio:.1f}x"),
        ("changes seen by the node", f"{len(figures.applied)} of {CHANGES}"),
        (
            f"delta p99 <= {MAX_P99_SECONDS * 1000:.0f} ms",
            f"{'PASS' if fast else 'FAIL'} ({p99 * 1000:.1f} ms)",
        ),
    )
    return Outcome(NAME, rows, passed=fast and figures.missing == 0)
