"""Jobs from workstations over LPD (RFC 1179): held on the node's disk, registered with the cloud
over NodeLink, uploaded when the cloud can be reached, released at any device of the site.

`NodeLpd` is the LPD server's handler: it checks the queue against the tenant's queues (as the
cloud's configuration last named them) and the P line's login against the replica, moves the data
into the spool folder and stores the job with its registration in one transaction. `LpdUploads`
brings held jobs to the cloud (SpoolService.SubmitJob, as the node, for the job's owner) once
their registration is acknowledged, holds parked jobs until their owner appears in the replica,
and expires jobs nobody released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from printfabric.formats import HEAD_SIZE, detect_format
from printfabric.lpd import LpdRefused, ReceivedJob
from printfabric.v1 import common_pb2, node_link_pb2, spool_pb2, spool_pb2_grpc
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.bearer import BearerToken
from node.config import NodeConfig
from node.db import NodeDatabase
from node.models import LpdJob, NodeQueue, ReplicaUserRow
from node.outbox import Outbox
from node.replica import user_row_by_login

log = logging.getLogger(__name__)

HELD, PARKED, PRINTING, PRINTED = "held", "parked", "printing", "printed"
FAILED, DELETED, EXPIRED = "failed", "deleted", "expired"
# Uploaded, then printed, deleted or released somewhere else: the cloud said so.
DONE_ELSEWHERE = "elsewhere"
# States whose data is still on disk and waiting for a release.
WAITING = (HELD, PARKED)
_CHUNK = 1 << 20
# Upload failures that are the job's own (the cloud refused it): not worth another try.
_REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# LPD data-file types that say what the bytes are.
_TYPE_FORMATS = {"o": common_pb2.DOCUMENT_FORMAT_POSTSCRIPT}
_PRINT_RIGHT = "1"


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(HEAD_SIZE)


def _now() -> datetime:
    return datetime.now(UTC)


async def record_queues(db: NodeDatabase, queues: Sequence[node_link_pb2.NodeQueue]) -> None:
    """Replaces the node's list of the tenant's queues with what the cloud's configuration names
    (its welcome's, or a change it pushed)."""
    async with db.session() as session, session.begin():
        await session.execute(delete(NodeQueue))
        seen: set[str] = set()
        for q in queues:
            key = q.name.casefold()
            if q.name and key not in seen:
                seen.add(key)
                session.add(NodeQueue(name_key=key, name=q.name, printer_id=q.printer_id))


class NodeLpd:
    """The node's LPD handler (printfabric.lpd.LpdHandler)."""

    def __init__(self, config: NodeConfig, db: NodeDatabase, outbox: Outbox) -> None:
        self.config = config
        self.db = db
        self.outbox = outbox
        # Set when a job is stored, so the uploader looks at once.
        self.stored = asyncio.Event()

    async def check_queue(self, queue: str, peer: str) -> None:
        async with self.db.session() as session, session.begin():
            if await _queue(session, queue) is not None:
                return
            known = await session.scalar(select(func.count()).select_from(NodeQueue))
        if not known:
            raise LpdRefused(
                f"queue {queue!r}: this node has not yet learned its queues from the cloud",
                "QUEUES_UNKNOWN",
            )
        raise LpdRefused(f"there is no queue {queue!r}", "UNKNOWN_QUEUE")

    async def accept_job(self, job: ReceivedJob) -> None:
        """Stores each data file of the job as a held (or parked) job of the P line's user."""
        login = job.control.user.strip()
        spool = self.config.lpd_spool_dir
        await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True, mode=0o700)
        moved: list[Path] = []
        try:
            async with self.db.session() as session, session.begin():
                queue = await _queue(session, job.queue)
                if queue is None:
                    raise LpdRefused(f"there is no queue {job.queue!r}", "UNKNOWN_QUEUE")
                user = await _user(session, login)
                state, owner = self._owner_state(user, login)
                now = _now()
                # One stored job per data file (a file printed under two types once).
                files, seen = [], set()
                for print_file, received in job.files:
                    if received.name not in seen:
                        seen.add(received.name)
                        files.append((print_file, received))
                for print_file, received in files:
                    job_id = uuid.uuid4().hex
                    target = spool / job_id
                    await asyncio.to_thread(os.replace, received.path, target)
                    moved.append(target)
                    row = LpdJob(
                        job_id=job_id,
                        number=job.number,
                        queue=queue.name,
                        owner_login=owner,
                        owner_key=owner.casefold(),
                        title=_title(job, print_file.source_name),
                        origin=f"lpd from {job.control.host or '?'} ({job.peer})",
                        # What the bytes are: the local copy goes to printers that want to know.
                        document_format=_TYPE_FORMATS.get(print_file.file_type)
                        or detect_format(await asyncio.to_thread(_head, target)),
                        copies=max(1, min(print_file.copies, 999)),
                        size=received.size,
                        sha256=received.sha256,
                        path=str(target),
                        state=state,
                        state_message=_state_message(state),
                        received_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                    if state == HELD:
                        await self.outbox.enqueue_job_spooled(spooled(row), session)
        except BaseException:
            for path in moved:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(path.unlink)
            raise
        self.stored.set()
        log.info(
            "LPD job from %s (%s) for %s on %s: %d file(s), %d bytes, %s",
            job.control.host,
            job.peer,
            owner,
            queue.name,
            len(files),
            sum(r.size for _, r in files),
            state,
        )

    def _owner_state(self, user: ReplicaUserRow | None, login: str) -> tuple[str, str]:
        if user is None:
            if self.config.lpd_unknown_user == "park" and login:
                return PARKED, login
            raise LpdRefused(f"no user {login!r} in the directory", "UNKNOWN_USER")
        if user.disabled:
            raise LpdRefused(f"the account {user.login} is disabled", "USER_DISABLED")
        if _PRINT_RIGHT not in user.rights.split(","):
            raise LpdRefused(f"{user.login} may not print", "NO_PRINT_RIGHT")
        return HELD, user.login

    async def queue_state(self, queue: str, items: Sequence[str], long: bool, peer: str) -> str:
        """The waiting jobs of the queue, as BSD lpq lists them (filtered by job numbers or
        owners when the client names any)."""
        async with self.db.session() as session, session.begin():
            rows = (
                await session.scalars(
                    select(LpdJob)
                    .where(func.lower(LpdJob.queue) == queue.casefold())
                    .where(LpdJob.state.in_([*WAITING, PRINTING]))
                    .order_by(LpdJob.received_at)
                )
            ).all()
        wanted = {i.casefold() for i in items}
        rows = [
            r
            for r in rows
            if not wanted or str(r.number) in wanted or r.owner_key in wanted or r.job_id in wanted
        ]
        if not rows:
            return "no entries\n"
        lines = [] if long else ["Rank   Owner      Job  Files                       Total Size"]
        for rank, r in enumerate(rows, start=1):
            label = "active" if r.state == PRINTING else _ordinal(rank)
            if long:
                lines.append(f"{r.owner_login}: {label:<10} [job {r.number:03d} {r.state}]")
                lines.append(f"        {r.title:<40} {r.size} bytes")
            else:
                lines.append(
                    f"{label:<6} {r.owner_login[:10]:<10} {r.number:<4} "
                    f"{r.title[:27]:<27} {r.size} bytes"
                )
        return "\n".join(lines) + "\n"

    async def remove_jobs(self, queue: str, agent: str, items: Sequence[str], peer: str) -> None:
        """Deletes the agent's waiting jobs on the queue: those named by number, or all of them
        when no number is named (LPD trusts the agent's name, as every LPD server does)."""
        numbers = {i for i in items if i.isdigit()}
        async with self.db.session() as session, session.begin():
            rows = (
                await session.scalars(
                    select(LpdJob).where(
                        func.lower(LpdJob.queue) == queue.casefold(),
                        LpdJob.owner_key == agent.casefold(),
                        LpdJob.state.in_(WAITING),
                    )
                )
            ).all()
            gone = [r for r in rows if not numbers or str(r.number) in numbers]
            for row in gone:
                await drop(row, DELETED, f"Deleted by {agent} over LPD", self.outbox, session)
        for row in gone:
            log.info("LPD job %s of %s deleted over LPD from %s", row.job_id, agent, peer)

    async def print_waiting(self, queue: str, peer: str) -> None:
        """Nothing to start: jobs wait for their release at a device."""


def spooled(row: LpdJob) -> node_link_pb2.NodeJobSpooled:
    """The registration of a job with the cloud."""
    return node_link_pb2.NodeJobSpooled(
        node_job_id=row.job_id,
        header=spool_pb2.JobHeader(
            printer=row.queue,
            title=row.title,
            format=row.document_format,  # type: ignore[arg-type]
            options=spool_pb2.JobOptions(copies=row.copies),
            origin=row.origin[:256],
            size_hint=row.size,
            owner_login=row.owner_login,
        ),
        size_bytes=row.size,
        sha256=row.sha256,
        format=row.document_format,  # type: ignore[arg-type]
    )


async def drop(
    row: LpdJob, state: str, message: str, outbox: Outbox, session: AsyncSession
) -> None:
    """Ends a waiting job without printing it (deleted or expired): the data goes after the
    commit; a registered job's deletion is reported (the cloud expires its copy itself)."""
    registered = row.state == HELD
    path, row.path, row.state, row.state_message = row.path, "", state, message
    row.updated_at = _now()
    if registered and state == DELETED:
        await outbox.enqueue_job_status(
            row.job_id, spool_pb2.JOB_STATE_CANCELED, message, session=session
        )
    if path:
        # Removed now: a rollback after this leaves a row without data, which the uploader
        # and the release path both treat as gone (never a job printed twice).
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(Path(path).unlink)


@dataclass(frozen=True)
class UploadResult:
    uploaded: int = 0
    refused: int = 0


class LpdUploads:
    """Brings held LPD jobs to the cloud, unparks jobs whose owner arrived, expires old ones."""

    def __init__(
        self,
        config: NodeConfig,
        db: NodeDatabase,
        outbox: Outbox,
        bearer: BearerToken,
        wake: asyncio.Event,
    ) -> None:
        self.config = config
        self.db = db
        self.outbox = outbox
        self.bearer = bearer
        self.wake = wake
        self.poll_seconds = 1.0
        self.reconcile_seconds = 10.0
        # Jobs whose upload failed for now: when to try again, and how often it failed.
        self._retry: dict[str, tuple[float, int]] = {}

    async def run(
        self,
        connected: asyncio.Event,
        channel: Callable[[], grpc.aio.Channel | None],
        ours: Callable[[str], bool],
    ) -> None:
        """Runs until cancelled: a round when a job arrives, the link comes up, or every
        poll_seconds (and a look at what the cloud did with uploaded jobs every
        reconcile_seconds); no failure ends it."""
        loop = asyncio.get_running_loop()
        next_reconcile = 0.0
        while True:
            self.wake.clear()
            try:
                await self.housekeeping()
                current = channel() if connected.is_set() else None
                if current is not None:
                    await self.upload_pending(current)
                    if loop.time() >= next_reconcile:
                        next_reconcile = loop.time() + self.reconcile_seconds
                        await self.reconcile(current, ours)
            except asyncio.CancelledError:
                raise
            except (grpc.aio.UsageError, OSError) as exc:
                log.info("LPD uploads paused: %s", exc)
            except Exception:
                log.exception("LPD uploads: a round failed; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self.wake.wait()

    async def housekeeping(self) -> None:
        """Holds parked jobs whose owner the replica now knows; expires jobs held too long."""
        now = _now()
        cutoff = now - timedelta(seconds=self.config.lpd_hold_seconds)
        async with self.db.session() as session, session.begin():
            old = (
                await session.scalars(
                    select(LpdJob).where(LpdJob.state.in_(WAITING), LpdJob.received_at < cutoff)
                )
            ).all()
            for row in old:
                await drop(row, EXPIRED, "Expired: not released in time", self.outbox, session)
            parked = (await session.scalars(select(LpdJob).where(LpdJob.state == PARKED))).all()
            for row in parked:
                user = await _user(session, row.owner_login)
                if user is None or user.disabled:
                    continue
                row.state, row.owner_login, row.owner_key = HELD, user.login, user.login_key
                row.state_message, row.updated_at = _state_message(HELD), now
                await self.outbox.enqueue_job_spooled(spooled(row), session)
                log.info("LPD job %s: %s is known now; the job is held", row.job_id, user.login)
        if old:
            log.info("%d LPD job(s) expired unreleased", len(old))

    async def reconcile(self, channel: grpc.aio.Channel, ours: Callable[[str], bool]) -> int:
        """Drops the node's copy of uploaded jobs the cloud no longer holds for release here:
        printed or deleted elsewhere, or released to a printer of another site (`ours` tells
        the node's printers). Returns how many it dropped."""
        async with self.db.session() as session, session.begin():
            rows = (
                await session.scalars(
                    select(LpdJob).where(LpdJob.state == HELD, LpdJob.uploaded.is_(True))
                )
            ).all()
        stub = spool_pb2_grpc.SpoolServiceStub(channel)  # type: ignore[no-untyped-call]
        dropped = 0
        for row in rows:
            token = await self.bearer.get(channel)
            try:
                reply = await stub.GetJob(
                    spool_pb2.GetJobRequest(job_id=row.job_id),
                    metadata=self.bearer.metadata(token),
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                why = "The cloud no longer knows the job"
            else:
                job = reply.job
                if job.state == spool_pb2.JOB_STATE_HELD:
                    continue
                if job.state in (spool_pb2.JOB_STATE_RELEASED, spool_pb2.JOB_STATE_PRINTING):
                    if ours(job.release_printer_id):
                        continue  # the job desk delivers it from the node's copy
                    why = "Released at another site"
                else:
                    why = job.state_message or spool_pb2.JobState.Name(job.state)
            async with self.db.session() as session, session.begin():
                current = await session.get(LpdJob, row.job_id)
                if current is not None and current.state == HELD:
                    path, current.path, current.state = current.path, "", DONE_ELSEWHERE
                    current.state_message, current.updated_at = why, _now()
                    with contextlib.suppress(FileNotFoundError):
                        await asyncio.to_thread(Path(path).unlink)
                    dropped += 1
        return dropped

    async def upload_pending(self, channel: grpc.aio.Channel) -> UploadResult:
        """Uploads every held job the cloud registered and does not have yet."""
        async with self.db.session() as session, session.begin():
            rows = (
                await session.scalars(
                    select(LpdJob)
                    .where(LpdJob.state == HELD, LpdJob.uploaded.is_(False), LpdJob.path != "")
                    .order_by(LpdJob.received_at)
                )
            ).all()
        result = UploadResult()
        now = asyncio.get_running_loop().time()
        for row in rows:
            retry_at, failures = self._retry.get(row.job_id, (0.0, 0))
            if now < retry_at or await self.outbox.has_batch(row.job_id):
                continue  # backing off, or not registered yet (the upload would find no job)
            ok = await self._upload(row, channel)
            if ok is None:
                # 1, 2, 4 ... s up to 5 min: a job the cloud keeps failing is not resent
                # in a tight loop.
                delay = min(300.0, 2.0**failures)
                self._retry[row.job_id] = (now + delay, failures + 1)
            else:
                self._retry.pop(row.job_id, None)
            result = UploadResult(result.uploaded + (ok is True), result.refused + (ok is False))
        return result

    async def _upload(self, row: LpdJob, channel: grpc.aio.Channel) -> bool | None:
        """True when the cloud has the job, False when it refused it, None to try later."""
        stub = spool_pb2_grpc.SpoolServiceStub(channel)  # type: ignore[no-untyped-call]
        token = await self.bearer.get(channel)
        header = spool_pb2.JobHeader(
            job_id=row.job_id,
            printer=row.queue,
            owner_login=row.owner_login,
            size_hint=row.size,
            ends_with_marker=True,
        )
        try:
            await stub.SubmitJob(
                _requests(header, Path(row.path), row.size),
                metadata=self.bearer.metadata(token),
            )
        except FileNotFoundError:
            return None  # deleted or printed meanwhile
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                self.bearer.forget()
            if exc.code() not in _REFUSED:
                log.info("LPD job %s: upload failed for now: %s", row.job_id, exc.details())
                return None
            await self._refused(row.job_id, exc.details() or exc.code().name)
            return False
        async with self.db.session() as session, session.begin():
            current = await session.get(LpdJob, row.job_id)
            if current is not None:
                current.uploaded, current.updated_at = True, _now()
        log.info("LPD job %s uploaded (%d bytes)", row.job_id, row.size)
        return True

    async def _refused(self, job_id: str, why: str) -> None:
        async with self.db.session() as session, session.begin():
            row = await session.get(LpdJob, job_id)
            if row is None or row.state != HELD:
                return  # printed or deleted at the node meanwhile: the cloud's answer is moot
            path, row.path, row.state = row.path, "", FAILED
            row.state_message, row.updated_at = f"The cloud refused the job: {why}", _now()
        log.warning("LPD job %s refused by the cloud: %s", job_id, why)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(Path(path).unlink)


async def _requests(
    header: spool_pb2.JobHeader, path: Path, size: int
) -> AsyncIterator[spool_pb2.SubmitJobRequest]:
    yield spool_pb2.SubmitJobRequest(header=header)
    fh = await asyncio.to_thread(path.open, "rb")
    sent = 0
    try:
        while chunk := await asyncio.to_thread(fh.read, _CHUNK):
            sent += len(chunk)
            yield spool_pb2.SubmitJobRequest(chunk=chunk)
    finally:
        await asyncio.to_thread(fh.close)
    yield spool_pb2.SubmitJobRequest(end=spool_pb2.SubmitJobEnd(size=sent))
    del size


async def _queue(session: AsyncSession, name: str) -> NodeQueue | None:
    return await session.get(NodeQueue, name.casefold())


async def _user(session: AsyncSession, login: str) -> ReplicaUserRow | None:
    return await user_row_by_login(session, login)


def _title(job: ReceivedJob, source_name: str) -> str:
    control = job.control
    return (control.job_name or source_name or control.title or "Untitled")[:512]


def _state_message(state: str) -> str:
    if state == PARKED:
        return "Waiting for its owner to appear in the directory"
    return "Held at the node: log in at a printer of this site to print it"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


async def lpd_counts(db: NodeDatabase) -> dict[str, int]:
    """LPD jobs by state ('held' and 'parked' ones hold data on disk)."""
    async with db.session() as session, session.begin():
        rows = await session.execute(select(LpdJob.state, func.count()).group_by(LpdJob.state))
        return {state: int(n) for state, n in rows.tuples()}


async def sweep_strays(db: NodeDatabase, spool: Path) -> int:
    """Deletes data files in the LPD spool folder that no job refers to (a crash between moving
    a received file in and committing its job leaves one; that job was never acknowledged, so
    its client sends it again). Run before the server starts; returns how many went."""
    async with db.session() as session, session.begin():
        kept = set((await session.scalars(select(LpdJob.path).where(LpdJob.path != ""))).all())

    def sweep() -> int:
        if not spool.is_dir():
            return 0
        strays = [p for p in spool.iterdir() if p.is_file() and str(p) not in kept]
        for path in strays:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return len(strays)

    gone = await asyncio.to_thread(sweep)
    if gone:
        log.warning("deleted %d LPD data file(s) no job refers to", gone)
    return gone
