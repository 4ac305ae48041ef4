"""One node's link: reads its messages in order, replicates the directory, pushes its
configuration and released jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import node_link_pb2 as nl

from cloud.api import convert
from cloud.bus import config_topic, directory_topic, node_topic
from cloud.db.engine import run_to_completion
from cloud.db.models import Node
from cloud.domain import replication
from cloud.domain.accounting import record_usage
from cloud.domain.auth import Auth, Credential
from cloud.domain.enums import JobState, PrincipalKind
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime
from cloud.domain.spool import Spool
from cloud.errors import (
    CloudError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from cloud.nodelink.convert import node_config, replica_user

log = logging.getLogger(__name__)

SEND_QUEUE = 256
# A node that leaves the send queue full this long is not reading: drop it.
SEND_TIMEOUT = 10.0
MAX_REMOTE_AUTH = 32


# Strong references to clean-up tasks so they are not collected before they run.
_BACKGROUND: set[asyncio.Task[None]] = set()


class NodeLink:
    def __init__(
        self, rt: Runtime, auth: Auth, node: Node, hello: nl.ConnectRequest, replica_id: str
    ) -> None:
        self.rt = rt
        self.auth = auth
        self.spool = Spool(rt)
        self.node = node
        self.hello = hello.hello
        self.replica_id = replica_id
        self.principal = Principal(PrincipalKind.NODE, node.tenant_id, node.id, "nodelink")
        self.queue: asyncio.Queue[nl.ConnectResponse] = asyncio.Queue(maxsize=SEND_QUEUE)
        self.seq = 0
        self.last_seq_in = hello.seq
        self.applied = hello.seq
        self.sent_revision = 0
        self.sent_jobs: set[str] = set()
        # The configuration the node holds from us (the welcome's, then the last pushed).
        self.sent_config: nl.NodeConfig | None = None
        self.last_heard = asyncio.get_running_loop().time()
        self.stop = asyncio.Event()
        self.failure: BaseException | None = None
        self.remote_auth: set[asyncio.Task[None]] = set()

    @property
    def period(self) -> float:
        return self.rt.settings.node_heartbeat.total_seconds()

    async def send(self, **body: Any) -> None:
        self.seq += 1
        message = nl.ConnectResponse(seq=self.seq, ack=self.applied, **body)
        try:
            await asyncio.wait_for(self.queue.put(message), SEND_TIMEOUT)
        except TimeoutError as exc:
            raise ResourceExhausted(
                f"node {self.node.serial_number} stopped reading; closing its link",
                reason="NODE_NOT_READING",
            ) from exc

    async def responses(
        self, requests: AsyncIterator[nl.ConnectRequest]
    ) -> AsyncIterator[nl.ConnectResponse]:
        await run_to_completion(
            replication.record_node_state(
                self.rt,
                self.node.id,
                None,
                self.hello.software_version,
                lpd_uri=replication.announced_lpd_uri(self.node, self.hello.lpd_uri),
            )
        )
        await self.send(welcome=await self._welcome())
        await self.rt.bus.set_presence(f"node.{self.node.id}", self.replica_id, 3 * self.period)
        tasks = [
            asyncio.create_task(self._guard(self._read(requests))),
            asyncio.create_task(self._guard(self._watch())),
            asyncio.create_task(self._guard(self._beat())),
        ]
        waiting: list[asyncio.Task[Any]] = []
        try:
            while True:
                getter = asyncio.create_task(self.queue.get())
                stopper = asyncio.create_task(self.stop.wait())
                waiting = [getter, stopper]
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    break
                stopper.cancel()
                yield getter.result()
        finally:
            # No await here: this also runs when the stream is closed under us (aclose), and
            # the tasks end on their own once cancelled.
            for task in [*tasks, *self.remote_auth, *waiting]:
                task.cancel()
            cleanup = asyncio.ensure_future(self._leave())
            _BACKGROUND.add(cleanup)
            cleanup.add_done_callback(_BACKGROUND.discard)
        if self.failure is not None:
            raise self.failure

    async def _leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.rt.bus.clear_presence(f"node.{self.node.id}", self.replica_id)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc
        finally:
            self.stop.set()

    async def _welcome(self) -> nl.CloudWelcome:
        self.sent_config = await self._config()
        directory = await run_to_completion(
            replication.tenant_directory(self.rt, self.node.tenant_id)
        )
        return nl.CloudWelcome(
            node_id=self.node.id,
            tenant_id=self.node.tenant_id,
            config=self.sent_config,
            directory_revision=directory.revision,
        )

    async def _config(self) -> nl.NodeConfig:
        """The node's configuration as the database has it now (the welcome's and pushes')."""
        printers = await run_to_completion(replication.node_printers(self.rt, self.node))
        queues = await run_to_completion(replication.tenant_queues(self.rt, self.node.tenant_id))
        return node_config(self.node, max(1, round(self.period)), printers, queues)

    # Node -> cloud --------------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[nl.ConnectRequest]) -> None:
        async for msg in requests:
            self.last_heard = asyncio.get_running_loop().time()
            if msg.seq <= self.last_seq_in:
                raise InvalidArgument(
                    f"message out of order: seq {msg.seq} after {self.last_seq_in}",
                    reason="OUT_OF_ORDER",
                )
            self.last_seq_in = msg.seq
            kind = msg.WhichOneof("body")
            if kind is None:
                raise InvalidArgument(
                    f"message {msg.seq} has no body this cloud knows (unknown message type)",
                    reason="UNKNOWN_MESSAGE",
                )
            if kind == "hello":
                raise InvalidArgument(
                    "hello is sent once, as the first message", reason="SECOND_HELLO"
                )
            if kind == "directory_applied":
                await run_to_completion(
                    replication.record_node_state(
                        self.rt, self.node.id, msg.directory_applied.revision, None
                    )
                )
            elif kind == "remote_auth_request":
                self._answer_later(msg.remote_auth_request)
            elif kind == "job_status":
                await self._job_status(msg.job_status)
            elif kind == "accounting_batch":
                await self._accounting(msg.accounting_batch)
            elif kind == "job_spooled":
                await self._job_spooled(msg.job_spooled)
            self.applied = msg.seq
            if kind in ("job_status", "accounting_batch", "job_spooled"):
                ids = [msg.accounting_batch.batch_id] if kind == "accounting_batch" else []
                await self.send(batch_ack=nl.BatchAck(batch_ids=ids))

    async def _job_status(self, report: nl.JobStatusReport) -> None:
        try:
            state = JobState(report.state)
        except ValueError as exc:
            raise InvalidArgument(f"job status for {report.job_id} has an unknown state") from exc
        try:
            await run_to_completion(
                self.spool.update_status(self.principal, report.job_id, state, report.state_message)
            )
        except (FailedPrecondition, NotFound) as exc:
            # A resend of a report already applied, or a job canceled meanwhile: nothing to do.
            log.info(
                "node %s: status %s of job %s not applied: %s",
                self.node.id,
                state.name,
                report.job_id,
                exc,
            )

    async def _accounting(self, batch: nl.AccountingBatch) -> None:
        """Stores a batch's entries once each; an entry that is not valid is logged and left
        out (refusing the batch would have the node resend it, and block its link, forever)."""
        received = self.rt.clock()
        records = []
        for entry in batch.entries:
            try:
                records.append(convert.usage_record(entry, self.node.id, received).checked())
            except InvalidArgument as exc:
                log.warning(
                    "node %s: usage entry %r of batch %s left out: %s",
                    self.node.serial_number,
                    entry.request_id[:128],
                    batch.batch_id,
                    exc,
                )
        await run_to_completion(record_usage(self.rt, self.node.tenant_id, records))

    async def _job_spooled(self, spooled: nl.NodeJobSpooled) -> None:
        """Registers a job the node received over LPD; its data follows by SubmitJob."""
        try:
            header = convert.submission(spooled.header)
            info = await run_to_completion(
                self.spool.create_job(self.principal, header, node_job_id=spooled.node_job_id)
            )
        except (InvalidArgument, FailedPrecondition, NotFound, PermissionDenied) as exc:
            # Acknowledged all the same (a resend would be refused again); the node's upload
            # is refused too and the node tells its user why.
            log.warning(
                "node %s: LPD job %s not registered: %s",
                self.node.serial_number,
                spooled.node_job_id,
                exc,
            )
            return
        log.info(
            "node %s registered LPD job %s (%s) for %s",
            self.node.serial_number,
            info.job.id,
            info.printer_name,
            info.owner_login,
        )

    def _answer_later(self, request: nl.RemoteAuthRequest) -> None:
        if len(self.remote_auth) >= MAX_REMOTE_AUTH:
            task = asyncio.create_task(self._refuse(request, "the cloud is busy; try again"))
        else:
            task = asyncio.create_task(self._answer(request))
        self.remote_auth.add(task)
        task.add_done_callback(self.remote_auth.discard)

    async def _refuse(self, request: nl.RemoteAuthRequest, reason: str) -> None:
        await self.send(
            remote_auth_response=nl.RemoteAuthResponse(
                request_id=request.request_id, accepted=False, reason=reason
            )
        )

    async def _answer(self, request: nl.RemoteAuthRequest) -> None:
        which = request.WhichOneof("credential")
        credential = Credential(
            card=request.card if which == "card" else "",
            pin=request.pin if which == "pin" else "",
            login=request.login if which == "login" else "",
            password=request.password if which == "login" else "",
        )
        try:
            user = (
                await run_to_completion(self.auth.find_user(self.node.tenant_id, credential))
                if which
                else None
            )
        except CloudError:
            user = None
        if user is None:
            await self._refuse(request, "unknown card, PIN or password")
        elif user.disabled:
            await self._refuse(request, f"the account {user.login} is disabled")
        else:
            record = await run_to_completion(replication.replica_record(self.rt, user))
            await self.send(
                remote_auth_response=nl.RemoteAuthResponse(
                    request_id=request.request_id, accepted=True, user=replica_user(record)
                )
            )

    # Cloud -> node --------------------------------------------------------------------------

    async def _watch(self) -> None:
        tenant_id = self.node.tenant_id
        tenant_topic, queues_topic = directory_topic(tenant_id), config_topic(tenant_id)
        own_topic = node_topic(self.node.id)
        async with self.rt.bus.subscribe(tenant_topic, queues_topic, own_topic) as events:
            # Subscribed before the first read, so no change can fall between the two (nor
            # between the welcome's configuration and the subscription: _configure compares).
            await self._configure()
            await self._directory(initial=True)
            await self._jobs()
            async for topic in events:
                if topic == tenant_topic:
                    await self._directory(initial=False)
                elif topic == queues_topic:
                    await self._configure()
                else:
                    await self._jobs()

    async def _configure(self) -> None:
        """Pushes the node's configuration if it is not what the node holds: a printer's change
        that the node does not see (its location, say) sends nothing. Not acknowledged: one
        lost with the link is harmless, the next welcome carries the whole configuration."""
        config = await self._config()
        if config != self.sent_config:
            await self.send(config=config)
            self.sent_config = config

    async def _directory(self, initial: bool) -> None:
        tenant_id = self.node.tenant_id
        if initial:
            state = await run_to_completion(replication.tenant_directory(self.rt, tenant_id))
            held = self.hello.directory_revision
            if held <= 0 or held > state.revision:
                await self._snapshot(state)
            else:
                self.sent_revision = held
        while page := await run_to_completion(
            replication.users_since(self.rt, tenant_id, self.sent_revision)
        ):
            to_revision = page[-1].user.revision
            await self.send(
                directory_delta=nl.DirectoryDelta(
                    from_revision=self.sent_revision,
                    to_revision=to_revision,
                    upserts=[replica_user(r) for r in page],
                )
            )
            self.sent_revision = to_revision

    async def _snapshot(self, state: replication.TenantDirectory) -> None:
        after, first = 0, True
        while True:
            page = await run_to_completion(
                replication.users_since(self.rt, self.node.tenant_id, after, up_to=state.revision)
            )
            last = len(page) < replication.PAGE
            await self.send(
                directory_snapshot=nl.DirectorySnapshotChunk(
                    revision=state.revision,
                    users=[replica_user(r) for r in page],
                    first=first,
                    last=last,
                    credential_key=state.credential_key if first else b"",
                )
            )
            first = False
            if page:
                after = page[-1].user.revision
            if last:
                break
        # Changes made while the snapshot was read come next, as deltas since its revision.
        self.sent_revision = state.revision

    async def _jobs(self) -> None:
        for info in await run_to_completion(replication.released_jobs(self.rt, self.node)):
            if info.job.id not in self.sent_jobs:
                await self.send(
                    job_released=nl.JobReleased(
                        job=convert.job(info), printer_id=info.job.release_printer_id or ""
                    )
                )
                self.sent_jobs.add(info.job.id)
        for job_id in await run_to_completion(
            replication.canceled_jobs(self.rt, self.node.tenant_id, self.sent_jobs)
        ):
            await self.send(job_canceled=nl.JobCanceled(job_id=job_id))
            self.sent_jobs.discard(job_id)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.rt.bus.set_presence(f"node.{self.node.id}", self.replica_id, 3 * self.period)
            stamp = Timestamp()
            stamp.FromDatetime(self.rt.clock())
            await self.send(heartbeat=nl.Heartbeat(send_time=stamp))
            await asyncio.sleep(self.period)
            silent = loop.time() - self.last_heard
            if silent > 3 * self.period:
                raise Unavailable(
                    f"no word from node {self.node.serial_number} for {silent:.0f} s; closing its link",
                    reason="NODE_SILENT",
                )
