"""The cloud's own delivery: released jobs of printers that no node serves.

A node delivers for the printers of its site. A printer without a node is delivered to by the
cloud itself, by printfabric.delivery: LPR (lpd://), raw 9100 (socket://), IPP/IPPS, or a
folder (file:///folder, the embedded demo's `direct` queue) confined to one root folder so that
no tenant writes elsewhere on the cloud's disk. Jobs are claimed with a conditional update, so
several cloud replicas never print one twice; a few deliveries run at once, so one slow printer
does not hold up the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from printfabric.delivery import DeliveryError, DeliveryJob, deliver, public_uri
from printfabric.folder import FolderError, folder_target
from printfabric.formats import mime_type
from sqlalchemy import or_, select, update

from cloud.bus import delivery_topic
from cloud.db.models import Job, Printer, Tenant, User
from cloud.domain.enums import JobState
from cloud.domain.jobs import finished
from cloud.domain.runtime import Runtime, audit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claimed:
    """A job this cloud claimed, with what delivering and finishing it takes."""

    id: str
    tenant_id: str
    number: int
    title: str
    format: int
    size: int
    blob_key: str | None
    device_uri: str
    owner_login: str
    retention_seconds: int


_BATCH = 1 << 20
_SCHEMES = ("file:", "lpd:", "socket:", "ipp:", "ipps:")
# Deliveries at once (each may wait minutes for a busy printer).
_PARALLEL = 8


class CloudDelivery:
    def __init__(self, rt: Runtime, file_root: Path, timeout: float = 120.0) -> None:
        self.rt = rt
        self.file_root = file_root.resolve()
        self.timeout = timeout
        self._slots = asyncio.Semaphore(_PARALLEL)

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
        claimed = await self._claim_released()
        results = await asyncio.gather(
            *(self._deliver_slot(job) for job in claimed), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("cloud delivery failed", exc_info=result)
        return sum(1 for r in results if not isinstance(r, BaseException))

    async def _recover(self) -> None:
        async with self.rt.db.session() as session, session.begin():
            stuck = select(Printer.id).where(_cloud_delivered())
            await session.execute(
                update(Job)
                .where(Job.state == int(JobState.PRINTING), Job.release_printer_id.in_(stuck))
                .values(state=int(JobState.RELEASED), state_message="Sent to the printer again")
            )

    async def _claim_released(self) -> list[_Claimed]:
        """Claims (released -> printing) up to 200 released jobs of the cloud's printers, the
        longest waiting first, in one statement, and reads what delivering them takes in the
        same transaction; a job another replica claimed is not among them."""
        waiting = (
            select(Job.id)
            .join(Printer, Printer.id == Job.release_printer_id)
            .where(Job.state == int(JobState.RELEASED), _cloud_delivered())
            .order_by(Job.updated_at)
            .limit(200)
            # PostgreSQL: replicas claiming at once skip each other's rows instead of waiting
            # (SQLite has one writer at a time and no FOR UPDATE).
            .with_for_update(of=Job, skip_locked=True)
        )
        async with self.rt.db.session() as session, session.begin():
            claimed = list(
                (
                    await session.execute(
                        update(Job)
                        .where(
                            Job.id.in_(waiting.scalar_subquery()),
                            Job.state == int(JobState.RELEASED),
                        )
                        .values(
                            state=int(JobState.PRINTING),
                            state_message="Printing",
                            updated_at=self.rt.clock(),
                        )
                        .returning(Job.id)
                        .execution_options(synchronize_session=False)
                    )
                ).scalars()
            )
            if not claimed:
                return []
            rows = await session.execute(
                select(
                    Job.id,
                    Job.tenant_id,
                    Job.number,
                    Job.title,
                    Job.format,
                    Job.size_bytes,
                    Job.blob_key,
                    Printer.device_uri,
                    User.login,
                    Tenant.job_retention_seconds,
                )
                .join(Printer, Printer.id == Job.release_printer_id)
                .join(User, User.id == Job.owner_user_id)
                .join(Tenant, Tenant.id == Job.tenant_id)
                .where(Job.id.in_(claimed))
                .order_by(Job.created_at)
            )
            return [_Claimed(*row) for row in rows]

    async def _deliver_slot(self, job: _Claimed) -> None:
        async with self._slots:
            await self._deliver(job)

    async def _deliver(self, job: _Claimed) -> None:
        where = public_uri(job.device_uri)
        try:
            self._check_folder(job.device_uri)
            if not job.blob_key:
                raise DeliveryError("the job's document is gone", "JOB_DATA_GONE")
            # A blob on this disk is sent from where it lies (delivery only reads it).
            local = self.rt.blobs.local_path(job.blob_key)
            source = local or await self._stage(job.id, job.blob_key)
            try:
                result = await deliver(
                    job.device_uri,
                    source,
                    DeliveryJob(
                        job.number, job.title, job.owner_login, mime_type(job.format), job.size
                    ),
                    timeout=self.timeout,
                )
            finally:
                if local is None:
                    await asyncio.to_thread(source.unlink, missing_ok=True)
        except DeliveryError as exc:
            log.warning("job %s to %s failed: %s", job.number, where, exc.message)
            await self._finish(job, JobState.FAILED, exc.message)
            return
        except Exception:
            # Blob store trouble and the like: leave it released for the next round.
            await self._unclaim(job.id)
            raise
        log.info("job %s: %s", job.number, result.message)
        await self._finish(job, JobState.COMPLETED, result.message)

    def _check_folder(self, device_uri: str) -> None:
        try:
            folder = folder_target(device_uri)
        except FolderError as exc:
            raise DeliveryError(exc.message, exc.reason) from exc
        if folder is not None and not folder.resolve().is_relative_to(self.file_root):
            raise DeliveryError(
                f"the cloud writes folder printers only under {self.file_root}, not to {folder}",
                "FOLDER_NOT_ALLOWED",
            )

    async def _stage(self, job_id: str, blob_key: str) -> Path:
        """The job's document in a staging file (the printer protocols send from a file)."""
        staging = self.rt.blobs.staging_dir
        await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
        path = staging / f"{job_id}.deliver"
        out = await asyncio.to_thread(path.open, "wb")
        try:
            pending: list[bytes] = []
            size = 0
            async for chunk in self.rt.blobs.read(blob_key):
                pending.append(chunk)
                size += len(chunk)
                if size >= _BATCH:
                    await asyncio.to_thread(out.writelines, pending)
                    pending, size = [], 0
            if pending:
                await asyncio.to_thread(out.writelines, pending)
        except BaseException:
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        await asyncio.to_thread(out.close)
        return path

    async def _finish(self, job: _Claimed, state: JobState, message: str) -> None:
        """The job's final state, unless it was canceled while it printed."""
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            done = await session.execute(
                update(Job)
                .where(Job.id == job.id, Job.state == int(JobState.PRINTING))
                .values(finished(state, message, now, timedelta(seconds=job.retention_seconds)))
                .execution_options(synchronize_session=False)
            )
            if getattr(done, "rowcount", 0) == 1:
                audit(session, now, None, "job.status", job.id, state.name, tenant_id=job.tenant_id)

    async def _unclaim(self, job_id: str) -> None:
        async with self.rt.db.session() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == int(JobState.PRINTING))
                .values(state=int(JobState.RELEASED), state_message="Sent to the printer")
            )


def _cloud_delivered() -> Any:
    """Printers the cloud delivers to: no node, and a device URI it can send to."""
    return Printer.node_id.is_(None) & or_(
        *(Printer.device_uri.like(f"{scheme}%") for scheme in _SCHEMES)
    )
