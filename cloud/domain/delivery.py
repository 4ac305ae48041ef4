"""The cloud's own delivery: released jobs of printers that no node serves.

A node delivers for the printers of its site. A printer without a node is delivered to by the
cloud itself; today that is a folder printer (file:///folder, the embedded demo's `direct`
queue), confined to one root folder so that no tenant writes elsewhere on the cloud's disk.
Jobs are claimed with a conditional update, so several cloud replicas never print one twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from printfabric.folder import FolderError, FolderJob, folder_target
from sqlalchemy import select, update

from cloud.bus import delivery_topic
from cloud.db.models import Job, Printer, Tenant
from cloud.domain.enums import JobState
from cloud.domain.jobs import finish
from cloud.domain.runtime import Runtime, audit

log = logging.getLogger(__name__)

_BATCH = 1 << 20


class CloudDelivery:
    def __init__(self, rt: Runtime, file_root: Path) -> None:
        self.rt = rt
        self.file_root = file_root.resolve()

    async def run(self, poll_seconds: float = 30.0, recover: bool = True) -> None:
        """Delivers on every release event, and every poll_seconds in case one was missed.

        With recover (one cloud process), jobs left printing by a crash are delivered again.
        """
        if recover:
            await self._recover()
        async with self.rt.bus.subscribe(delivery_topic()) as events:
            woken = aiter(events)
            while True:
                try:
                    await self.deliver_pending()
                except Exception:
                    log.exception("cloud delivery failed; retrying")
                try:
                    await asyncio.wait_for(anext(woken), poll_seconds)
                except TimeoutError:
                    pass
                except StopAsyncIteration:
                    # The bus went away (shutting down): keep polling until cancelled.
                    await asyncio.sleep(poll_seconds)

    async def deliver_pending(self) -> int:
        """Delivers every released job this cloud delivers; returns how many it finished."""
        async with self.rt.db.reader() as session:
            job_ids = list(
                (
                    await session.execute(
                        select(Job.id)
                        .join(Printer, Printer.id == Job.release_printer_id)
                        .where(
                            Job.state == int(JobState.RELEASED),
                            Printer.node_id.is_(None),
                            Printer.device_uri.like("file:%"),
                        )
                        .order_by(Job.updated_at)
                        .limit(200)
                    )
                ).scalars()
            )
        done = 0
        for job_id in job_ids:
            if await self._claim(job_id):
                await self._deliver(job_id)
                done += 1
        return done

    async def _recover(self) -> None:
        async with self.rt.db.session() as session, session.begin():
            stuck = select(Printer.id).where(
                Printer.node_id.is_(None), Printer.device_uri.like("file:%")
            )
            await session.execute(
                update(Job)
                .where(Job.state == int(JobState.PRINTING), Job.release_printer_id.in_(stuck))
                .values(state=int(JobState.RELEASED), state_message="Sent to the printer again")
            )

    async def _claim(self, job_id: str) -> bool:
        async with self.rt.db.session() as session, session.begin():
            claimed = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == int(JobState.RELEASED))
                .values(
                    state=int(JobState.PRINTING),
                    state_message="Printing",
                    updated_at=self.rt.clock(),
                )
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def _deliver(self, job_id: str) -> None:
        async with self.rt.db.reader() as session:
            row = (
                await session.execute(
                    select(Job, Printer)
                    .join(Printer, Printer.id == Job.release_printer_id)
                    .where(Job.id == job_id)
                )
            ).one()
        job, printer = row
        try:
            target = await self._write(job, printer)
        except FolderError as exc:
            log.warning("job %s to %s failed: %s", job.number, printer.name, exc.message)
            await self._finish(job_id, JobState.FAILED, exc.message)
            return
        except Exception:
            # Blob store trouble and the like: leave it released for the next round.
            await self._unclaim(job_id)
            raise
        log.info("job %s printed to %s as %s", job.number, printer.name, target.name)
        await self._finish(job_id, JobState.COMPLETED, f"Printed on {printer.name}")

    async def _write(self, job: Job, printer: Printer) -> Path:
        folder = folder_target(printer.device_uri)
        assert folder is not None
        folder = folder.resolve()
        if not folder.is_relative_to(self.file_root):
            raise FolderError(
                f"the cloud writes folder printers only under {self.file_root}, not to {folder}",
                reason="FOLDER_NOT_ALLOWED",
            )
        if not job.blob_key:
            raise FolderError("the job's document is gone", reason="JOB_DATA_GONE")
        out = await asyncio.to_thread(FolderJob, folder, job.number, job.title)
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in self.rt.blobs.read(job.blob_key):
                pending.append(chunk)
                size += len(chunk)
                if size >= _BATCH:
                    await asyncio.to_thread(out.writelines, pending)
                    pending, size = [], 0
            if pending:
                await asyncio.to_thread(out.writelines, pending)
        except BaseException:
            await asyncio.to_thread(out.discard)
            raise
        return await asyncio.to_thread(out.finish)

    async def _finish(self, job_id: str, state: JobState, message: str) -> None:
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            row = (
                await session.execute(
                    select(Job, Tenant.job_retention_seconds)
                    .join(Tenant, Tenant.id == Job.tenant_id)
                    .where(Job.id == job_id)
                )
            ).one()
            job, retention = row
            if job.state != int(JobState.PRINTING):
                return  # canceled meanwhile
            finish(job, state, message, now, timedelta(seconds=retention))
            audit(session, now, None, "job.status", job.id, state.name, tenant_id=job.tenant_id)

    async def _unclaim(self, job_id: str) -> None:
        async with self.rt.db.session() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == int(JobState.PRINTING))
                .values(state=int(JobState.RELEASED), state_message="Sent to the printer")
            )
