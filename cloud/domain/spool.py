"""The virtual spooler: ingest (streamed, hashed, counted), hold, release, cancel, expire."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cloud.blobs import BlobNotFound, SignedUrl
from cloud.bus import delivery_topic, node_topic
from cloud.db.engine import run_to_completion
from cloud.db.models import Device, Job, Printer, Tenant, Upload, User
from cloud.domain.devices import Devices, decode_formats
from cloud.domain.directory import acting_user
from cloud.domain.enums import AccessRight, DocumentFormat, JobState, PrincipalKind, QueueModel
from cloud.domain.formats import StreamSniffer, count_pages, detect_format, stream_to_file
from cloud.domain.jobs import (
    JobInfo,
    JobSubmission,
    finish,
    held_message,
    job_query,
    load_job,
    may_see,
)
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime, audit, new_id, next_page_token, page_window
from cloud.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TooLarge,
)

_UNKNOWN = (DocumentFormat.UNSPECIFIED, DocumentFormat.OCTET_STREAM)
# Who may name the owner of a job: nodes submit for users; MFPs also release for them.
_SUBMITTERS = frozenset({PrincipalKind.NODE})
_RELEASERS = frozenset({PrincipalKind.NODE, PrincipalKind.MFP})


_NODE_JOB_ID = re.compile(r"[0-9a-f]{32}")
_NODE_FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED})


def node_request_id(node_id: str, job_id: str) -> str:
    """The request id of a job a node registered: it names the node, and only that node
    reports on the job before the cloud releases it."""
    return f"node:{node_id}:{job_id}"


def _spooled_by(principal: Principal, job: Job) -> bool:
    return principal.kind is PrincipalKind.NODE and job.request_id == node_request_id(
        principal.subject_id, job.id
    )


class Spool:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.devices = Devices(rt)

    # Ingest -------------------------------------------------------------------------------

    async def submit(
        self, principal: Principal, header: JobSubmission, chunks: AsyncIterator[bytes]
    ) -> JobInfo:
        """Streams a document into a held (or, on a direct queue, released) job.

        Nothing is left behind unless the whole stream arrived and the job row committed.
        """
        header = header.checked()
        owner, printer, existing = await run_to_completion(self._prepare(principal, header))
        if existing is not None:
            return existing
        self._check_size_hint(header)
        self._check_format(printer, header.format)
        return await self._ingest(principal, header, owner, printer, chunks)

    async def _prepare(
        self, principal: Principal, header: JobSubmission
    ) -> tuple[User, Printer, JobInfo | None]:
        """The owner and queue of a submission, or the job an earlier one with its
        request_id made."""
        tenant_id = principal.require_tenant()
        async with self.rt.db.reader() as session:
            owner = await self._owner(session, principal, header.owner_login)
            if header.job_id:
                # The document of a job made by create_job: it goes to that job's queue.
                incoming = await self._incoming(session, tenant_id, owner.id, header.job_id)
                printer = await self.devices.printer_by_ref(session, tenant_id, incoming.printer_id)
                return owner, printer, None
            printer = await self.devices.printer_by_ref(session, tenant_id, header.printer)
            existing = None
            if header.request_id:
                existing = await self._by_request(session, tenant_id, owner.id, header.request_id)
            return owner, printer, existing

    async def create_job(
        self, principal: Principal, header: JobSubmission, node_job_id: str = ""
    ) -> JobInfo:
        """A job without its document yet (IPP Create-Job); submit with header.job_id brings it.

        The job fails if its document does not arrive within incoming_job_timeout. With
        node_job_id (a node registering a job it received over LPD) the job gets that id and
        waits for its upload as long as a held job is kept.
        """
        header = header.checked()
        if header.job_id:
            raise InvalidArgument("a new job has no job_id yet")
        if node_job_id:
            if principal.kind is not PrincipalKind.NODE:
                raise PermissionDenied("only a node registers jobs it spooled")
            if not _NODE_JOB_ID.fullmatch(node_job_id):
                raise InvalidArgument(
                    f"a node's job id is 32 lowercase hex digits, not {node_job_id!r}"
                )
            header = replace(header, request_id=node_request_id(principal.subject_id, node_job_id))
        self._check_size_hint(header)
        tenant_id = principal.require_tenant()
        now = self.rt.clock()
        async with self.rt.db.reader() as session:
            owner = await self._owner(session, principal, header.owner_login)
            printer = await self.devices.printer_by_ref(session, tenant_id, header.printer)
            self._check_format(printer, header.format)
            if header.request_id:
                existing = await self._by_request(session, tenant_id, owner.id, header.request_id)
                if existing is not None:
                    return existing
        timeout = self.rt.settings.incoming_job_timeout
        job_id = node_job_id or new_id()
        waiting = "Waiting for the document"
        try:
            async with self.rt.db.session() as session, session.begin():
                if node_job_id:
                    tenant = await session.get(Tenant, tenant_id)
                    assert tenant is not None
                    timeout = timedelta(seconds=tenant.job_retention_seconds)
                    waiting = "Held at the site's node: release it at a printer there"
                    if await session.get(Job, job_id) is not None:
                        # Another tenant's or node's job under this id: not this one to take.
                        raise FailedPrecondition(f"job id {job_id} is taken", reason="JOB_ID_TAKEN")
                job = Job(
                    id=job_id,
                    tenant_id=tenant_id,
                    number=await self._next_number(session, tenant_id),
                    printer_id=printer.id,
                    owner_user_id=owner.id,
                    title=header.title or "Untitled",
                    format=int(header.format),
                    options=header.options.to_json(),
                    state=int(JobState.INCOMING),
                    state_message=waiting,
                    size_bytes=0,
                    page_count=0,
                    sha256="",
                    origin=header.origin,
                    request_id=header.request_id or None,
                    blob_key=None,
                    release_printer_id=None,
                    created_at=now,
                    updated_at=now,
                    expires_at=now + timeout,
                    completed_at=None,
                )
                session.add(job)
                audit(session, now, principal, "job.create", job_id)
        except IntegrityError:
            async with self.rt.db.reader() as session:
                raced = await self._by_request(session, tenant_id, owner.id, header.request_id)
            if raced is None:
                raise
            return raced
        return JobInfo(job, printer.name, owner.login)

    async def _incoming(
        self, session: AsyncSession, tenant_id: str, owner_id: str, job_id: str
    ) -> Job:
        job = (
            await session.execute(select(Job).where(Job.tenant_id == tenant_id, Job.id == job_id))
        ).scalar_one_or_none()
        if job is None or job.owner_user_id != owner_id:
            raise NotFound(f"job {job_id} not found", reason="UNKNOWN_JOB")
        if job.state != int(JobState.INCOMING):
            raise FailedPrecondition(
                f"job {job.number} already has its document or has ended "
                f"({JobState(job.state).name.lower()})",
                reason="JOB_NOT_INCOMING",
            )
        return job

    def _check_size_hint(self, header: JobSubmission) -> None:
        limit = self.rt.settings.max_job_bytes
        if header.size_hint > limit:
            raise TooLarge(
                f"the document is {header.size_hint} bytes; the limit is {limit}",
                reason="JOB_TOO_LARGE",
            )

    @staticmethod
    async def _next_number(session: AsyncSession, tenant_id: str) -> int:
        number, _ = await Spool._next_number_and_retention(session, tenant_id)
        return number

    @staticmethod
    async def _next_number_and_retention(
        session: AsyncSession, tenant_id: str
    ) -> tuple[int, timedelta]:
        """Takes the tenant's next job number; also says how long its jobs are kept."""
        counter, seconds = (
            await session.execute(
                update(Tenant)
                .where(Tenant.id == tenant_id)
                .values(job_counter=Tenant.job_counter + 1)
                .returning(Tenant.job_counter, Tenant.job_retention_seconds)
            )
        ).one()
        return int(counter) % 2_000_000_000 or 1, timedelta(seconds=seconds)

    @staticmethod
    async def _retention(session: AsyncSession, tenant_id: str) -> timedelta:
        seconds = (
            await session.execute(
                select(Tenant.job_retention_seconds).where(Tenant.id == tenant_id)
            )
        ).scalar_one()
        return timedelta(seconds=seconds)

    async def _ingest(
        self,
        principal: Principal,
        header: JobSubmission,
        owner: User,
        printer: Printer,
        chunks: AsyncIterator[bytes],
    ) -> JobInfo:
        part = self.rt.blobs.staging_dir / f"{new_id()}.part"
        stored = False
        try:
            sniffer = await self._receive(part, chunks)
            if sniffer.size == 0:
                raise InvalidArgument("the document is empty", reason="EMPTY_DOCUMENT")
            fmt = header.format if header.format not in _UNKNOWN else detect_format(sniffer.head)
            self._check_format(printer, fmt)
            pages = await asyncio.to_thread(count_pages, part, fmt)
            # The whole document is here: storing it finishes even if the caller goes now.
            info = await run_to_completion(
                self._store(principal, header, owner, printer, part, fmt, pages, sniffer)
            )
            stored = True  # put_file moved the part into the blob store
            return info
        finally:
            if not stored:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(part.unlink)

    async def _store(
        self,
        principal: Principal,
        header: JobSubmission,
        owner: User,
        printer: Printer,
        part: Path,
        fmt: DocumentFormat,
        pages: int,
        sniffer: StreamSniffer,
    ) -> JobInfo:
        """Moves the received document into the blob store and records the job: both or
        neither."""
        job_id = new_id()
        blob_key = f"{owner.tenant_id}/jobs/{job_id}"
        try:
            await self.rt.blobs.put_file(blob_key, part)
            return await self._record(
                principal, header, owner, printer, job_id, blob_key, fmt, pages, sniffer
            )
        except BaseException:
            # A failed put or commit: leave no blob behind.
            await self.rt.blobs.delete(blob_key)
            raise

    async def _receive(self, part: Path, chunks: AsyncIterator[bytes]) -> StreamSniffer:
        limit = self.rt.settings.max_job_bytes
        return await stream_to_file(
            part,
            chunks,
            limit,
            lambda: TooLarge(
                f"the document is over the limit of {limit} bytes", reason="JOB_TOO_LARGE"
            ),
        )

    async def _record(
        self,
        principal: Principal,
        header: JobSubmission,
        owner: User,
        printer: Printer,
        job_id: str,
        blob_key: str,
        fmt: DocumentFormat,
        pages: int,
        sniffer: StreamSniffer,
    ) -> JobInfo:
        now = self.rt.clock()
        direct = printer.model == int(QueueModel.DIRECT)
        try:
            async with self.rt.db.session() as session, session.begin():
                if header.job_id:
                    number = 0
                    retention = await self._retention(session, owner.tenant_id)
                else:
                    # The new job's number and the tenant's retention in one statement.
                    number, retention = await self._next_number_and_retention(
                        session, owner.tenant_id
                    )
                values = {
                    "format": int(fmt),
                    "state": int(JobState.RELEASED if direct else JobState.HELD),
                    "state_message": "Sent to the printer" if direct else held_message(retention),
                    "size_bytes": sniffer.size,
                    "page_count": pages,
                    "sha256": sniffer.sha256_hex,
                    "blob_key": blob_key,
                    "release_printer_id": printer.id if direct else None,
                    "updated_at": now,
                    "expires_at": now + retention,
                }
                if header.job_id:
                    job_id = header.job_id
                    incoming = (
                        await session.execute(
                            select(Job)
                            .where(Job.id == job_id, Job.state == int(JobState.INCOMING))
                            .with_for_update()
                        )
                    ).scalar_one_or_none()
                    if incoming is None:
                        raise FailedPrecondition(
                            "the job was canceled or timed out while its document arrived",
                            reason="JOB_NOT_INCOMING",
                        )
                    job = incoming
                    for name, value in values.items():
                        setattr(job, name, value)
                else:
                    job = Job(
                        id=job_id,
                        tenant_id=owner.tenant_id,
                        number=number,
                        printer_id=printer.id,
                        owner_user_id=owner.id,
                        title=header.title or "Untitled",
                        options=header.options.to_json(),
                        origin=header.origin,
                        request_id=header.request_id or None,
                        created_at=now,
                        completed_at=None,
                        **values,
                    )
                    session.add(job)
                audit(session, now, principal, "job.submit", job_id, f"{sniffer.size} bytes")
        except IntegrityError:
            # The same request_id won a race: answer with that job, drop this copy.
            await self.rt.blobs.delete(blob_key)
            async with self.rt.db.reader() as session:
                existing = await self._by_request(
                    session, owner.tenant_id, owner.id, header.request_id
                )
            if existing is None:
                raise
            return existing
        if direct:
            await self._wake(printer.node_id)
        # The committed row as written (expire_on_commit is off): no second read.
        return JobInfo(job, printer.name, owner.login)

    async def _wake(self, node_id: str | None) -> None:
        """Tells whoever delivers for a printer (its node, or the cloud's own delivery when it
        has none) to look at its jobs."""
        await self.rt.bus.publish(node_topic(node_id) if node_id else delivery_topic())

    async def _wake_for(self, printer_id: str | None) -> None:
        """_wake for a printer known only by id."""
        if not printer_id:
            return
        async with self.rt.db.reader() as session:
            node_id = (
                await session.execute(select(Printer.node_id).where(Printer.id == printer_id))
            ).scalar_one_or_none()
        await self._wake(node_id)

    async def _owner(
        self,
        session: AsyncSession,
        principal: Principal,
        owner_login: str,
        device_acts_for_user: bool = False,
    ) -> User:
        """The user a job belongs to: the caller, or whom a node, an admin or (when releasing)
        the MFP the user stands at names."""
        naming = _RELEASERS if device_acts_for_user else _SUBMITTERS
        return await acting_user(
            session,
            principal,
            owner_login,
            naming=naming,
            refused="only users, nodes and admins submit jobs",
            missing_login="owner_login is required when a node submits a job",
            right=AccessRight.PRINT,
        )

    def _check_format(self, printer: Printer, fmt: DocumentFormat) -> None:
        allowed = decode_formats(printer.formats)
        if allowed and fmt not in _UNKNOWN and fmt not in allowed:
            raise InvalidArgument(
                f"queue {printer.name} does not take {fmt.mime_type}",
                reason="DOCUMENT_FORMAT_NOT_SUPPORTED",
            )

    async def _by_request(
        self, session: AsyncSession, tenant_id: str, owner_id: str, request_id: str
    ) -> JobInfo | None:
        row = (
            await session.execute(
                job_query().where(
                    Job.tenant_id == tenant_id,
                    Job.owner_user_id == owner_id,
                    Job.request_id == request_id,
                )
            )
        ).first()
        return JobInfo(*row) if row else None

    # Uploads straight to storage ------------------------------------------------------------

    async def create_upload(
        self, principal: Principal, header: JobSubmission
    ) -> tuple[str, SignedUrl]:
        header = header.checked()
        limit = self.rt.settings.max_job_bytes
        if header.size_hint > limit:
            raise TooLarge(
                f"the document is {header.size_hint} bytes; the limit is {limit}",
                reason="JOB_TOO_LARGE",
            )
        now = self.rt.clock()
        upload_id = new_id()
        async with self.rt.db.session() as session, session.begin():
            owner = await self._owner(session, principal, header.owner_login)
            printer = await self.devices.printer_by_ref(session, owner.tenant_id, header.printer)
            self._check_format(printer, header.format)
            key = f"{owner.tenant_id}/uploads/{upload_id}"
            ttl = self.rt.settings.upload_url_ttl
            session.add(
                Upload(
                    id=upload_id,
                    tenant_id=owner.tenant_id,
                    owner_user_id=owner.id,
                    printer_id=printer.id,
                    header=header.to_json(),
                    blob_key=key,
                    max_bytes=limit,
                    job_id=None,
                    expires_at=now + ttl,
                    created_at=now,
                )
            )
            url = await self.rt.blobs.upload_url(key, ttl, limit)
        return upload_id, url

    async def commit_upload(self, principal: Principal, upload_id: str) -> JobInfo:
        tenant_id = principal.require_tenant()
        async with self.rt.db.session() as session:
            upload = (
                await session.execute(
                    select(Upload).where(Upload.tenant_id == tenant_id, Upload.id == upload_id)
                )
            ).scalar_one_or_none()
            if upload is None or (
                principal.is_user and upload.owner_user_id != principal.subject_id
            ):
                raise NotFound(f"upload {upload_id} not found", reason="UNKNOWN_UPLOAD")
            if upload.job_id:
                return await load_job(session, principal, upload.job_id)
            owner = await session.get(User, upload.owner_user_id)
            printer = await session.get(Printer, upload.printer_id)
        assert owner is not None and printer is not None
        try:
            size = await self.rt.blobs.size(upload.blob_key)
        except BlobNotFound as exc:
            raise FailedPrecondition(
                "nothing was uploaded to this upload's URL", reason="UPLOAD_MISSING"
            ) from exc
        if size > upload.max_bytes:
            await self.rt.blobs.delete(upload.blob_key)
            raise TooLarge(
                f"the upload is over the limit of {upload.max_bytes} bytes", reason="JOB_TOO_LARGE"
            )
        header = JobSubmission.from_json(upload.header)
        info = await self._ingest(
            principal, header, owner, printer, self.rt.blobs.read(upload.blob_key)
        )
        async with self.rt.db.session() as session, session.begin():
            await session.execute(
                update(Upload).where(Upload.id == upload.id).values(job_id=info.job.id)
            )
        await self.rt.blobs.delete(upload.blob_key)
        return info

    # Reading ------------------------------------------------------------------------------

    async def get(self, principal: Principal, job_id: str) -> JobInfo:
        async with self.rt.db.reader() as session:
            return await load_job(session, principal, job_id)

    async def list_jobs(
        self,
        principal: Principal,
        page_size: int,
        page_token: str,
        states: frozenset[JobState] = frozenset(),
        all_users: bool = False,
        owner_login: str = "",
        printer_id: str = "",
        number: int = 0,
    ) -> tuple[list[JobInfo], str]:
        tenant_id = principal.require_tenant()
        offset, limit = page_window(page_size, page_token)
        query = job_query().where(Job.tenant_id == tenant_id)
        if principal.is_user and not (principal.is_admin and (all_users or owner_login)):
            query = query.where(Job.owner_user_id == principal.subject_id)
        elif principal.kind is PrincipalKind.SYNC_AGENT:
            raise PermissionDenied("sync agents do not see jobs")
        if owner_login and not (principal.is_user and not principal.is_admin):
            query = query.where(User.login_key == owner_login.casefold())
        if states:
            query = query.where(Job.state.in_([int(s) for s in states]))
        if printer_id:
            query = query.where(
                (Job.printer_id == printer_id) | (Printer.name == printer_id.strip().lower())
            )
        if number:
            query = query.where(Job.number == number)
        async with self.rt.db.reader() as session:
            rows = (
                await session.execute(
                    query.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
                )
            ).all()
        jobs = [JobInfo(*row) for row in rows]
        return jobs, next_page_token(offset, limit, len(jobs))

    async def download(
        self, principal: Principal, job_id: str, offset: int = 0
    ) -> tuple[JobInfo, AsyncIterator[bytes]]:
        if offset < 0:
            raise InvalidArgument("offset must not be negative")
        info = await self.get(principal, job_id)
        if not info.job.blob_key:
            raise FailedPrecondition(
                f"the data of job {job_id} is gone ({JobState(info.job.state).name.lower()})",
                reason="JOB_DATA_GONE",
            )
        if offset > info.job.size_bytes:
            raise InvalidArgument(
                f"offset {offset} is past the end of the job ({info.job.size_bytes} bytes)"
            )
        return info, self.rt.blobs.read(info.job.blob_key, offset)

    async def download_url(self, principal: Principal, job_id: str) -> SignedUrl:
        info, _ = await self.download(principal, job_id)
        assert info.job.blob_key
        return await self.rt.blobs.download_url(
            info.job.blob_key, self.rt.settings.download_url_ttl
        )

    # State changes ------------------------------------------------------------------------

    async def release(
        self,
        principal: Principal,
        job_ids: list[str],
        all_held: bool,
        printer_ref: str,
        owner_login: str,
    ) -> list[JobInfo]:
        tenant_id = principal.require_tenant()
        if not job_ids and not all_held:
            raise InvalidArgument("name the jobs to release or ask for all held jobs")
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            if principal.is_user:
                owner = await self._owner(session, principal, "")
            elif principal.kind in (PrincipalKind.MFP, PrincipalKind.NODE):
                if not owner_login:
                    raise InvalidArgument("owner_login is required when a device releases jobs")
                owner = await self._owner(
                    session, principal, owner_login, device_acts_for_user=True
                )
            else:
                raise PermissionDenied("only users, devices and nodes release jobs")
            if not printer_ref and principal.kind is PrincipalKind.MFP:
                device = await session.get(Device, principal.subject_id)
                printer_ref = device.printer_id or "" if device else ""
            if not printer_ref:
                raise InvalidArgument("name the printer to release to", reason="NO_PRINTER")
            target = await self.devices.printer_by_ref(session, tenant_id, printer_ref)
            query = job_query().where(Job.tenant_id == tenant_id, Job.owner_user_id == owner.id)
            chosen = Job.id.in_(job_ids) if job_ids else Job.state == int(JobState.HELD)
            query = query.where(chosen)
            rows = [
                JobInfo(*r) for r in (await session.execute(query.order_by(Job.created_at))).all()
            ]
            missing: set[str] = set(job_ids) - {r.job.id for r in rows}
            if missing:
                raise NotFound(f"job {sorted(missing)[0]} not found", reason="UNKNOWN_JOB")
            for info in rows:
                if info.job.state != int(JobState.HELD):
                    raise FailedPrecondition(
                        f"job {info.job.number} is {JobState(info.job.state).name.lower()}, not held",
                        reason="JOB_NOT_HELD",
                    )
                info.job.state = int(JobState.RELEASED)
                info.job.state_message = f"Released to {target.display_name or target.name}"
                info.job.release_printer_id = target.id
                info.job.updated_at = now
                audit(session, now, principal, "job.release", info.job.id, target.name)
        if rows:
            await self._wake(target.node_id)
        return rows

    async def cancel(self, principal: Principal, job_id: str) -> JobInfo:
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            info = await load_job(session, principal, job_id)
            job = info.job
            if JobState(job.state).is_final:
                raise FailedPrecondition(
                    f"job {job.number} is already {JobState(job.state).name.lower()}",
                    reason="JOB_FINAL",
                )
            if (
                principal.is_user
                and not principal.is_admin
                and job.owner_user_id != principal.subject_id
            ):
                raise NotFound(f"job {job_id} not found")
            who = principal.login or PrincipalKind(principal.kind).name.lower()
            finish(job, JobState.CANCELED, f"Canceled by {who}", now, timedelta(0))
            audit(session, now, principal, "job.cancel", job.id)
            key, job.blob_key = job.blob_key, None
        if key:
            await self.rt.blobs.delete(key)
        await self._wake_for(info.job.release_printer_id)
        return info

    async def update_status(
        self, principal: Principal, job_id: str, state: JobState, message: str
    ) -> JobInfo:
        if not (principal.kind in (PrincipalKind.NODE, PrincipalKind.MFP) or principal.is_admin):
            raise PermissionDenied("only the node or device that delivers a job reports its status")
        allowed = {
            JobState.RELEASED: {JobState.PRINTING, JobState.COMPLETED, JobState.FAILED},
            JobState.PRINTING: {JobState.PRINTING, JobState.COMPLETED, JobState.FAILED},
        }
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            info = await load_job(session, principal, job_id)
            job = info.job
            current = JobState(job.state)
            targets = allowed.get(current, set())
            if current in (JobState.INCOMING, JobState.HELD) and _spooled_by(principal, job):
                # A job the node took over LPD and released (or its user deleted) at one of
                # its devices, maybe while the cloud was away.
                targets = {JobState.PRINTING, *_NODE_FINAL}
            if state not in targets:
                raise FailedPrecondition(
                    f"job {job.number} is {current.name.lower()}; it cannot become {state.name.lower()}",
                    reason="BAD_TRANSITION",
                )
            if state.is_final:
                tenant = await session.get(Tenant, job.tenant_id)
                assert tenant is not None
                default = {JobState.COMPLETED: "Printed", JobState.CANCELED: "Deleted"}
                text = message or default.get(state, "Delivery failed")
                finish(job, state, text, now, timedelta(seconds=tenant.job_retention_seconds))
            else:
                job.state, job.state_message, job.updated_at = (
                    int(state),
                    message or "Printing",
                    now,
                )
            audit(session, now, principal, "job.status", job.id, state.name)
        return info

    async def sweep(self, batch: int = 500) -> int:
        """Expires held jobs past retention, fails jobs whose document never came, and purges data
        of old final jobs; returns the number of blobs purged."""
        now = self.rt.clock()
        async with self.rt.db.session() as session, session.begin():
            jobs = list(
                (
                    await session.execute(
                        select(Job)
                        .where(
                            Job.expires_at < now,
                            Job.blob_key.is_not(None),
                            # Released jobs wait for delivery however long it takes.
                            Job.state.not_in([int(JobState.RELEASED), int(JobState.PRINTING)]),
                        )
                        .limit(batch)
                    )
                ).scalars()
            )
            uploads = list(
                (
                    await session.execute(
                        select(Upload)
                        .where(Upload.expires_at < now, Upload.job_id.is_(None))
                        .limit(batch)
                    )
                ).scalars()
            )
            keys = [j.blob_key for j in jobs if j.blob_key] + [u.blob_key for u in uploads]
            for job in jobs:
                if job.state == int(JobState.HELD):
                    finish(
                        job,
                        JobState.EXPIRED,
                        "Not released in time; the document was deleted",
                        now,
                        timedelta(0),
                    )
                    audit(session, now, None, "job.expire", job.id, tenant_id=job.tenant_id)
                job.blob_key = None
            for upload in uploads:
                await session.delete(upload)
            stalled = (
                await session.execute(
                    select(Job, Tenant.job_retention_seconds)
                    .join(Tenant, Tenant.id == Job.tenant_id)
                    .where(Job.state == int(JobState.INCOMING), Job.expires_at < now)
                    .limit(batch)
                )
            ).all()
            minutes = self.rt.settings.incoming_job_timeout.total_seconds() / 60
            for job, retention in stalled:
                finish(
                    job,
                    JobState.FAILED,
                    f"No document arrived within {minutes:g} minutes of Create-Job"
                    if not (job.request_id or "").startswith("node:")
                    else "Expired: not released while the site's node held it",
                    now,
                    timedelta(seconds=retention),
                )
                audit(session, now, None, "job.abort", job.id, tenant_id=job.tenant_id)
        for key in keys:
            await self.rt.blobs.delete(key)
        return len(keys)


__all__ = ["JobInfo", "JobSubmission", "Spool", "may_see"]
