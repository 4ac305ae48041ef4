"""The node's end of NodeLink: one stream to the cloud, kept up for as long as the node runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import node_link_pb2 as nl
from printfabric.v1 import node_link_pb2_grpc

from node import convert
from node.channel import open_channel
from node.config import NodeConfig
from node.credential import Credential
from node.errors import NodeError
from node.jobs import JobDesk
from node.lpd import record_queues
from node.outbox import Outbox, SentLog
from node.replica import Replica, ReplicaUser

log = logging.getLogger(__name__)

# Outbox records put on the wire before waiting for the writer to catch up.
_OUTBOX_PAGE = 50


class LinkDown(NodeError):
    """The current connection ended; `code` is the gRPC status when the cloud gave one."""

    reason = "LINK_DOWN"

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message, reason=code.name if code else "")
        self.code = code


@dataclass(frozen=True)
class RemoteAuthResult:
    accepted: bool
    user: ReplicaUser | None = None
    # Why not, for the device's screen.
    reason: str = ""


def backoff_delay(attempt: int, initial: float, cap: float, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, initial * 2**attempt)]."""
    return rand() * min(cap, initial * (1 << min(attempt, 32)))


class _Connection:
    """One Connect call: its seq counter, what it sent from the outbox, and the writer's queue."""

    def __init__(self, call: Any, channel: grpc.aio.Channel, heartbeat: float) -> None:
        self.call = call
        self.channel = channel
        self.heartbeat = heartbeat
        self.seq = 0
        # Highest cloud seq applied, echoed in our `ack`.
        self.applied = 0
        self.sent = SentLog()
        # Unbounded so the reader never blocks on it; the outbox pump paces itself with join().
        self.queue: asyncio.Queue[tuple[nl.ConnectRequest, int | None]] = asyncio.Queue()
        self.last_heard = asyncio.get_running_loop().time()

    def send(self, message: nl.ConnectRequest, record_id: int | None = None) -> None:
        self.queue.put_nowait((message, record_id))

    async def write(self, message: nl.ConnectRequest, record_id: int | None = None) -> None:
        # seq is given here, in write order, so it always rises on the wire.
        self.seq += 1
        message.seq, message.ack = self.seq, self.applied
        if record_id is not None:
            self.sent.sent(self.seq, record_id)
        await self.call.write(message)


class NodeLink:
    """Connects, replicates, forwards the outbox and reconnects with backoff until cancelled."""

    def __init__(
        self,
        config: NodeConfig,
        replica: Replica,
        outbox: Outbox,
        jobs: JobDesk | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.replica = replica
        self.outbox = outbox
        self.jobs = jobs
        self.rand = rand
        self.connected = asyncio.Event()
        self.connects = 0
        # Consecutive failed attempts (reset by a welcome) and what the last one said.
        self.failures = 0
        self.last_error = ""
        self.last_code: grpc.StatusCode | None = None
        self._conn: _Connection | None = None
        # Whether the current attempt got as far as a welcome.
        self._welcomed = False
        self._auth_waiting: dict[str, asyncio.Future[RemoteAuthResult]] = {}

    @property
    def channel(self) -> grpc.aio.Channel | None:
        """The channel of the link while it is up (for calls beside the stream)."""
        conn = self._conn
        return conn.channel if conn is not None and self.connected.is_set() else None

    async def run(self) -> None:
        """Runs until cancelled; no failure of the cloud or the network ends it."""
        attempt = 0
        while True:
            try:
                await self._connect_once()
            except LinkDown as exc:
                self.last_error, self.last_code = exc.message, exc.code
            except NodeError as exc:
                self.last_error, self.last_code = exc.message, None
            except Exception as exc:
                log.exception("NodeLink failed unexpectedly")
                self.last_error, self.last_code = f"{type(exc).__name__}: {exc}", None
            finally:
                self._disconnected()
            if self._welcomed:
                # A link that was up starts its backoff afresh: a cloud restart is quick to follow.
                attempt = 0
            self.failures += 1
            delay = backoff_delay(
                attempt, self.config.backoff_initial, self.config.backoff_max, self.rand
            )
            attempt += 1
            self._log_down(delay)
            await asyncio.sleep(delay)

    async def remote_authenticate(
        self,
        credential: Credential,
        device_id: str,
        # Also the deadline the cloud is given, not only how long this call waits.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> RemoteAuthResult:
        """Asks the cloud about a credential the replica cannot decide; refused if no answer."""
        conn = self._conn
        if conn is None or not self.connected.is_set():
            return RemoteAuthResult(False, reason="The cloud is unreachable; try again later")
        timeout = self.config.remote_auth_timeout if timeout is None else timeout
        request_id = uuid.uuid4().hex
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        waiter: asyncio.Future[RemoteAuthResult] = asyncio.get_running_loop().create_future()
        self._auth_waiting[request_id] = waiter
        try:
            conn.send(
                nl.ConnectRequest(
                    remote_auth_request=convert.remote_auth_request(
                        request_id, device_id, credential, deadline
                    )
                )
            )
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return RemoteAuthResult(False, reason="No answer from the cloud in time")
        finally:
            self._auth_waiting.pop(request_id, None)

    # One connection -----------------------------------------------------------------------

    async def _connect_once(self) -> None:
        self._welcomed = False
        try:
            # Read on every attempt, so a renewed CA file is picked up without a restart.
            ca_pem = await asyncio.to_thread(self.config.cloud_ca.read_bytes)
        except OSError as exc:
            raise LinkDown(f"cannot read the cloud's CA {self.config.cloud_ca}: {exc}") from exc
        channel = open_channel(self.config, ca_pem)
        call = node_link_pb2_grpc.NodeLinkServiceStub(channel).Connect()  # type: ignore[no-untyped-call]
        try:
            revision = await self.replica.claim(self.config.company_code)
            conn = _Connection(call, channel, self.config.heartbeat_seconds)
            await conn.write(
                nl.ConnectRequest(
                    hello=nl.NodeHello(
                        company_code=self.config.company_code,
                        serial_number=self.config.serial_number,
                        access_token=self.config.access_token,
                        software_version=self.config.software_version,
                        directory_revision=revision,
                        # Seqs restart at 1 on every connection, so every one is a session.
                        session_id=uuid.uuid4().hex,
                        lpd_uri=self.config.lpd_uri,
                    )
                )
            )
            first = await asyncio.wait_for(call.read(), 3 * self.config.heartbeat_seconds)
            if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
                raise LinkDown("the cloud did not answer hello with welcome")
            await self._welcome(conn, first)
            await self._serve(conn)
        except grpc.aio.AioRpcError as exc:
            raise LinkDown(exc.details() or exc.code().name, exc.code()) from exc
        except TimeoutError as exc:
            raise LinkDown("the cloud did not answer hello in time") from exc
        except asyncio.InvalidStateError as exc:
            # A write after the call ended says only that; the call's status says why.
            code, details = await call.code(), await call.details()
            raise LinkDown(details or code.name, code) from exc
        finally:
            call.cancel()
            await channel.close()

    async def _welcome(self, conn: _Connection, message: nl.ConnectResponse) -> None:
        welcome = message.welcome
        conn.applied = message.seq
        if not await self.replica.record_welcome(welcome.tenant_id, welcome.node_id):
            raise LinkDown("this node now belongs to another tenant; its replica starts over")
        await self._configure(conn, welcome.config)
        self._conn = conn
        self.connected.set()
        self._welcomed = True
        self.connects += 1
        self.failures = 0
        log.info(
            "linked to the cloud at %s as node %s (%s); directory revision %d, cloud's %d",
            self.config.cloud_target,
            welcome.node_id,
            welcome.config.display_name or self.config.serial_number,
            await self.replica.revision(),
            welcome.directory_revision,
        )

    async def _configure(self, conn: _Connection, config: nl.NodeConfig) -> None:
        """Takes the node's configuration from the cloud, whole: the welcome's, and each one
        the cloud pushes when it changes (a queue created, changed or deleted)."""
        if config.heartbeat_seconds > 0:
            conn.heartbeat = float(config.heartbeat_seconds)
        if self.jobs is not None:
            self.jobs.configure(
                config.display_name, [convert.node_printer(p) for p in config.printers]
            )
            await record_queues(self.jobs.db, config.queues)

    async def _serve(self, conn: _Connection) -> None:
        """Runs the connection's loops; the first to end (they all end by failing) ends it."""
        loops: list[Coroutine[Any, Any, None]] = [
            self._read(conn),
            self._write(conn),
            self._pump(conn),
            self._beat(conn),
        ]
        tasks = [asyncio.create_task(c) for c in loops]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # The reader knows best why the call ended (the cloud's status); prefer its error.
        errors = [t.exception() for t in (tasks[0], *done) if t.done() and not t.cancelled()]
        for error in errors:
            if isinstance(error, grpc.aio.AioRpcError | LinkDown):
                raise error
        for error in errors:
            if error is not None:
                raise error
        raise LinkDown("the link stopped")

    async def _read(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await conn.call.read()
            if message is grpc.aio.EOF:
                raise LinkDown("the cloud closed the link")
            conn.last_heard = loop.time()
            done = conn.sent.acknowledged(message.ack)
            if done:
                await self.outbox.delete(done)
            await self._handle(conn, message)
            conn.applied = message.seq

    async def _handle(self, conn: _Connection, message: nl.ConnectResponse) -> None:
        kind = message.WhichOneof("body")
        if kind == "directory_snapshot":
            revision = await self.replica.apply_snapshot_chunk(
                convert.snapshot_chunk(message.directory_snapshot)
            )
            if revision is not None:
                log.info("directory snapshot of revision %d applied", revision)
                self._applied(conn, revision)
        elif kind == "directory_delta":
            delta = message.directory_delta
            revision = await self.replica.apply_delta(convert.directory_delta(delta))
            log.debug("directory delta to revision %d applied", delta.to_revision)
            self._applied(conn, revision)
        elif kind == "remote_auth_response":
            await self._auth_answer(message.remote_auth_response)
        elif kind == "job_released" and self.jobs is not None:
            released = message.job_released
            self.jobs.released(convert.job_order(released.job, released.printer_id), conn.channel)
        elif kind == "job_canceled" and self.jobs is not None:
            await self.jobs.canceled(message.job_canceled.job_id)
        elif kind == "batch_ack":
            await self.outbox.delete_batches(message.batch_ack.batch_ids)
        elif kind == "config":
            await self._configure(conn, message.config)
            log.info(
                "the cloud changed this node's configuration: %d queue(s), %d printer(s) here",
                len(message.config.queues),
                len(message.config.printers),
            )
        elif kind == "welcome":
            raise LinkDown("the cloud sent a second welcome")
        # heartbeat: hearing it (last_heard) is all it is for.

    def _applied(self, conn: _Connection, revision: int) -> None:
        conn.send(nl.ConnectRequest(directory_applied=nl.DirectoryApplied(revision=revision)))

    async def _auth_answer(self, response: nl.RemoteAuthResponse) -> None:
        user = convert.replica_user(response.user) if response.HasField("user") else None
        if response.accepted and user is not None:
            # The cloud vouched for this user: keep it, so the next log-in works offline.
            await self.replica.remember(user)
        waiter = self._auth_waiting.get(response.request_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(RemoteAuthResult(response.accepted, user, response.reason))

    async def _write(self, conn: _Connection) -> None:
        while True:
            message, record_id = await conn.queue.get()
            try:
                await conn.write(message, record_id)
            finally:
                conn.queue.task_done()

    async def _pump(self, conn: _Connection) -> None:
        """Sends the whole outbox, then whatever is added, in id order, once per connection."""
        last_id = 0
        while True:
            self.outbox.changed.clear()
            records = await self.outbox.pending(after_id=last_id, limit=_OUTBOX_PAGE)
            for record in records:
                conn.send(record.request(), record.id)
                last_id = record.id
            if records:
                # Flow control: what is queued goes on the wire before more is read.
                await conn.queue.join()
                continue
            with contextlib.suppress(TimeoutError):
                # Other processes (enqueue-usage) cannot set the event: poll as well.
                await asyncio.wait_for(self.outbox.changed.wait(), self.config.outbox_poll_seconds)

    async def _beat(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn.send(nl.ConnectRequest(heartbeat=nl.Heartbeat(send_time=_now())))
            await asyncio.sleep(conn.heartbeat)
            silent = loop.time() - conn.last_heard
            if silent > 3 * conn.heartbeat:
                raise LinkDown(f"no word from the cloud for {silent:.0f} s")

    # Bookkeeping --------------------------------------------------------------------------

    def _disconnected(self) -> None:
        self.connected.clear()
        self._conn = None
        for waiter in self._auth_waiting.values():
            if not waiter.done():
                waiter.set_result(
                    RemoteAuthResult(False, reason="The link to the cloud was lost; try again")
                )

    def _log_down(self, delay: float) -> None:
        code = self.last_code
        where = self.config.cloud_target
        if code is grpc.StatusCode.UNAUTHENTICATED:
            log.error(
                "the cloud at %s refused this node (UNAUTHENTICATED: %s); check PF_COMPANY_CODE, "
                "PF_NODE_SERIAL and the node token; retrying in %.1f s",
                where,
                self.last_error,
                delay,
            )
        elif code is grpc.StatusCode.UNIMPLEMENTED:
            log.error("the cloud at %s does not serve NodeLink; retrying in %.1f s", where, delay)
        else:
            name = f"{code.name}: " if code else ""
            log.warning(
                "link to the cloud at %s down (%s%s); retrying in %.1f s",
                where,
                name,
                self.last_error,
                delay,
            )


def _now() -> Timestamp:
    return convert.timestamp(datetime.now(UTC))
