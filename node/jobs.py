"""Released jobs at the node: pull the data from the cloud, check it, deliver it, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import grpc
from printfabric.delivery import DeliveryError, DeliveryJob, deliver, public_uri
from printfabric.formats import mime_type
from printfabric.v1 import device_pb2, device_pb2_grpc, spool_pb2, spool_pb2_grpc
from sqlalchemy import func, select

from node import lpd
from node.bearer import BearerToken
from node.config import NodeConfig
from node.db import NodeDatabase
from node.delivery import JobOrder, NodePrinter, SpoolFile
from node.errors import DeliveryFailed
from node.models import LpdJob, SpooledJob
from node.outbox import Outbox

log = logging.getLogger(__name__)

WAITING, COMPLETED, FAILED, CANCELED = "waiting", "completed", "failed", "canceled"
# Worth another try on the same connection; anything else is the job's own problem.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAUTHENTICATED,
    # The link's channel closed (the link went down): the job comes again on reconnect.
    grpc.StatusCode.CANCELLED,
}
_ATTEMPTS = 3


class JobDesk:
    """Handles job_released / job_canceled from the link, one task per job."""

    def __init__(
        self, config: NodeConfig, db: NodeDatabase, outbox: Outbox, bearer: BearerToken
    ) -> None:
        self.config = config
        self.db = db
        self.outbox = outbox
        self.bearer = bearer
        self.node_name = config.serial_number
        self.printers: dict[str, NodePrinter] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def configure(self, node_name: str, printers: list[NodePrinter]) -> None:
        """What the cloud's configuration says: the node's name and the printers it delivers
        for (from the welcome, then from each change the cloud pushes)."""
        self.node_name = node_name or self.config.serial_number
        self.printers = {p.printer_id: p for p in printers}

    def print_local(self, job_id: str, printer: NodePrinter) -> bool:
        """Prints a held LPD job from the node's disk on a device's printer, without the cloud
        (released at an MFP of this site while the cloud is away or before the upload ended).
        False if the job is already being handled."""
        if job_id in self._tasks:
            return False
        task = asyncio.create_task(self._print_local(job_id, printer), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))
        return True

    async def _print_local(self, job_id: str, printer: NodePrinter) -> None:
        try:
            claimed = await self._claim(job_id)
            if claimed is None:
                return
            order, path, document_format = claimed
            order = JobOrder(
                order.job_id,
                order.number,
                order.title,
                order.owner_login,
                printer.printer_id,
                order.size,
                order.sha256,
            )
            await self._deliver(order, printer, path, document_format, local=True)
        except Exception:
            log.exception("job %s: local delivery failed; it stays held", job_id)
            await self._unclaim(job_id)

    async def _claim(self, job_id: str) -> tuple[JobOrder, Path, str] | None:
        """Takes a held LPD job for printing (held -> printing, atomically, so one release
        prints it once): its order, data file and MIME type; None if it is not held here."""
        async with self.db.session() as session, session.begin():
            row = await session.get(LpdJob, job_id)
            if row is None or row.state != lpd.HELD or not row.path:
                return None
            row.state, row.updated_at = lpd.PRINTING, datetime.now(UTC)
            order = JobOrder(
                row.job_id, row.number, row.title, row.owner_login, "", row.size, row.sha256
            )
            return order, Path(row.path), mime_type(row.document_format)

    async def _unclaim(self, job_id: str) -> None:
        async with self.db.session() as session, session.begin():
            row = await session.get(LpdJob, job_id)
            if row is not None and row.state == lpd.PRINTING and row.path:
                row.state = lpd.HELD

    def released(self, order: JobOrder, channel: grpc.aio.Channel) -> None:
        """Starts handling a released job unless it is already being handled."""
        if order.job_id in self._tasks:
            return
        task = asyncio.create_task(self._guarded(order, channel), name=f"job-{order.job_id}")
        self._tasks[order.job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(order.job_id, None))

    async def canceled(self, job_id: str) -> None:
        """Drops the node's copy of a job the cloud canceled (and stops its download)."""
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self.db.session() as session, session.begin():
            row = await session.get(SpooledJob, job_id)
            if row is None or row.state != WAITING:
                return
            path, row.path, row.state = row.path, "", CANCELED
        await _remove(path)
        log.info("job %s canceled by the cloud; its data is deleted", job_id)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Waits for the jobs being handled now (for tests and a clean stop)."""
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _guarded(self, order: JobOrder, channel: grpc.aio.Channel) -> None:
        try:
            await self.handle(order, channel)
        except Exception:
            # Nothing recorded: the cloud sends the job again on the next connect.
            log.exception("job %s: handling failed; it is tried again later", order.job_id)

    async def handle(self, order: JobOrder, channel: grpc.aio.Channel) -> None:
        """Fetches, checks and delivers one released job, and queues its status report."""
        async with self.db.session() as session, session.begin():
            if await session.get(SpooledJob, order.job_id) is not None:
                # Sent again on a reconnect: this node already holds (or held) it.
                return
        async with self.db.session() as session, session.begin():
            own = await session.get(LpdJob, order.job_id)
            if own is not None and own.state in (lpd.PRINTING, lpd.PRINTED):
                # Released at a device here already (maybe while the cloud was away): its
                # report goes up through the outbox; printing it again would print it twice.
                return
        local = await self._claim(order.job_id)
        if local is not None:
            # A job this node took over LPD: its data is here already.
            _, path, document_format = local
            try:
                printer = await self._printer(order.printer_id, channel)
            except BaseException:
                await self._unclaim(order.job_id)
                raise
            await self._deliver(order, printer, path, document_format, local=True)
            return
        try:
            printer = await self._printer(order.printer_id, channel)
            path, document_format = await self._download(order, channel)
        except DeliveryFailed as exc:
            await self._record(order, "", FAILED, spool_pb2.JOB_STATE_FAILED, exc.message)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _TRANSIENT:
                # The cloud sends the job again on the next connect; try then.
                log.warning("job %s: download failed for now: %s", order.job_id, exc.details())
                return
            message = f"The node could not fetch the job: {exc.details()}"
            await self._record(order, "", FAILED, spool_pb2.JOB_STATE_FAILED, message)
            return
        except (grpc.aio.UsageError, OSError) as exc:
            # The link's channel closed under us, or the disk is full: not the job's fault.
            log.warning("job %s: not fetched for now: %s", order.job_id, exc)
            return
        await self._deliver(order, printer, path, document_format)

    async def _printer(self, printer_id: str, channel: grpc.aio.Channel) -> NodePrinter:
        known = self.printers.get(printer_id)
        if known is not None:
            return known
        # Assigned to this node after the welcome: ask the cloud.
        stub = device_pb2_grpc.DeviceServiceStub(channel)  # type: ignore[no-untyped-call]
        token = await self.bearer.get(channel)
        response = await stub.GetPrinter(
            device_pb2.GetPrinterRequest(printer_id=printer_id),
            metadata=self.bearer.metadata(token),
        )
        p = response.printer
        printer = NodePrinter(printer_id=p.printer_id, name=p.name, device_uri=p.device_uri)
        self.printers[printer_id] = printer
        return printer

    async def _download(self, order: JobOrder, channel: grpc.aio.Channel) -> tuple[Path, str]:
        """Streams the job's data to the spool folder (never whole in memory) and checks it;
        the file and the document's MIME type (from the stream's job header)."""
        stub = spool_pb2_grpc.SpoolServiceStub(channel)  # type: ignore[no-untyped-call]
        spool = await asyncio.to_thread(SpoolFile, self.config.spool_dir, order.job_id)
        document_format = 0
        try:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    token = await self.bearer.get(channel)
                    call = stub.DownloadJob(
                        spool_pb2.DownloadJobRequest(job_id=order.job_id, offset=spool.size),
                        metadata=self.bearer.metadata(token),
                    )
                    async for message in call:
                        if message.WhichOneof("item") == "job":
                            document_format = message.job.format or document_format
                            continue
                        if message.WhichOneof("item") != "chunk":
                            continue
                        # Writing and hashing a 1 MiB chunk blocks: off the loop.
                        await asyncio.to_thread(spool.write, message.chunk)
                        if spool.size > order.size:
                            raise DeliveryFailed(
                                f"the cloud sent more than the job's {order.size} bytes",
                                reason="SIZE_MISMATCH",
                            )
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        self.bearer.forget()
                    if exc.code() not in _TRANSIENT or attempt == _ATTEMPTS:
                        raise
                    # Resumes at the offset already on disk.
                    await asyncio.sleep(min(self.config.backoff_initial * attempt, 5.0))
            path = await asyncio.to_thread(spool.finish, order.size, order.sha256)
            return path, mime_type(document_format)
        except BaseException:
            await asyncio.to_thread(spool.discard)
            raise

    async def _deliver(
        self,
        order: JobOrder,
        printer: NodePrinter,
        path: Path,
        document_format: str,
        *,
        local: bool = False,
    ) -> None:
        """Sends the spooled job to its printer (lpd, socket, ipp/ipps or file), reports the
        outcome through the outbox and deletes the data."""
        job = DeliveryJob(
            number=order.number,
            title=order.title,
            owner_login=order.owner_login,
            document_format=document_format,
            size=order.size,
        )
        try:
            result = await deliver(
                printer.device_uri, path, job, timeout=self.config.delivery_timeout
            )
        except DeliveryError as exc:
            # Final for now: a printer that is unreachable or stays busy past the timeout
            # fails the job too (the node has no retry queue yet); the message says why, so
            # the user knows to print it again once the printer is back.
            await self._record(
                order,
                "",
                FAILED,
                spool_pb2.JOB_STATE_FAILED,
                f"Not printed on {printer.name}: {exc.message}",
            )
            await _remove(str(path))
            return
        except BaseException:
            # Canceled (job_canceled, or the node stopping) or a bug: nothing recorded, so the
            # cloud sends the job again on the next connect; the data goes, unless it is an
            # LPD job's own copy, which is held again.
            if local:
                await self._unclaim(order.job_id)
            else:
                await _remove(str(path))
            raise
        log.info(
            "job %s delivered to %s: %s",
            order.job_id,
            public_uri(printer.device_uri),
            result.message,
        )
        # Recorded before the data goes: a crash in between leaves a stray file, not a
        # job delivered twice.
        await self._record(order, "", COMPLETED, spool_pb2.JOB_STATE_COMPLETED, result.message)
        await _remove(str(path))

    async def _record(
        self,
        order: JobOrder,
        path: str,
        state: str,
        report: spool_pb2.JobState,
        message: str,
    ) -> None:
        """Stores the job's state and queues its report in one transaction."""
        if state == FAILED:
            log.warning("job %s failed: %s", order.job_id, message)
        async with self.db.session() as session, session.begin():
            row = await session.get(SpooledJob, order.job_id)
            if row is None:
                row = SpooledJob(
                    job_id=order.job_id,
                    number=order.number,
                    title=order.title,
                    owner_login=order.owner_login,
                    printer_id=order.printer_id,
                    sha256=order.sha256,
                    size=order.size,
                    received_at=datetime.now(UTC),
                )
                session.add(row)
            row.path, row.state = path, state
            local = await session.get(LpdJob, order.job_id)
            if local is not None:
                local.path, local.state_message = "", message
                local.state = lpd.PRINTED if state == COMPLETED else lpd.FAILED
                local.updated_at = datetime.now(UTC)
            await self.outbox.enqueue_job_status(order.job_id, report, message, session=session)


async def _remove(path: str) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(Path(path).unlink)


async def spooled_counts(db: NodeDatabase) -> dict[str, int]:
    """Spooled jobs by state ('waiting' ones hold data on disk)."""
    async with db.session() as session, session.begin():
        rows = await session.execute(
            select(SpooledJob.state, func.count()).group_by(SpooledJob.state)
        )
        return {state: int(n) for state, n in rows.tuples()}
