"""The durable local queue: every job's document and metadata in serve-printer's queue folder.

A job exists only once its whole document arrived: the body streams into a hidden part file
(memory stays flat whatever its size) that is fsynced and renamed to `{id}.data` at the end,
then the metadata `{id}.json` is written atomically (temporary file, fsync, os.replace). A body
that breaks off leaves nothing; a crash at any point leaves either a whole job or none (part
files and data without metadata are swept at the next start). The IPP job-id is a local
counter kept in the folder, so numbers are never reused across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from client.paths import private_dir

log = logging.getLogger(__name__)

# Written to disk in blocks of this size (from a worker thread, off the event loop).
WRITE_BLOCK = 1 << 20
_COUNTER = "next-job-id"
_PART_PREFIX = ".incoming-"


class JobState(StrEnum):
    # Made by Create-Job; its document has not come yet.
    INCOMING = "incoming"
    # Whole, waiting to be (or being) forwarded.
    QUEUED = "queued"
    # In PrintFabric: `cloud` says as which job.
    COMPLETED = "completed"
    # The cloud refused it, or its document never came; `message` says why.
    ABORTED = "aborted"
    CANCELED = "canceled"


FINAL = frozenset({JobState.COMPLETED, JobState.ABORTED, JobState.CANCELED})


@dataclass
class LocalJob:
    id: int
    # The idempotency key of every send of this job: a resend never makes a second cloud job.
    request_id: str
    # The cloud queue it goes to.
    printer: str
    title: str
    document_name: str
    # The user the local IPP client named (requesting-user-name); the cloud job is the
    # logged-in user's whatever this says.
    user: str
    create_time: float
    # MIME type; "" until the document of a Create-Job came.
    format: str = ""
    copies: int = 1
    duplex: bool = False
    mono: bool = False
    media: str = ""
    size: int = 0
    state: JobState = JobState.QUEUED
    message: str = ""
    process_time: float = 0.0
    complete_time: float = 0.0
    # A send of it began, so the gateway may hold it: it can no longer be canceled here.
    sent: bool = False
    # Failures that were neither "offline" nor a refusal (the job is aborted after a few).
    failures: int = 0
    # The cloud's job once forwarded: id, number, printer, state, state_message, page_count...
    cloud: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def cloud_number(self) -> int:
        return int(self.cloud.get("number") or 0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LocalJob:
        names = {f.name for f in fields(cls)}
        job = cls(**{k: v for k, v in data.items() if k in names})
        job.state = JobState(job.state)
        return job


class Part:
    """A document being received: a hidden file in the queue folder, gone unless taken."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self._file = file
        self._buffer = bytearray()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= WRITE_BLOCK:
            await self._flush()

    async def _flush(self) -> None:
        if self._buffer:
            block, self._buffer = bytes(self._buffer), bytearray()
            await asyncio.to_thread(self._file.write, block)

    async def close(self) -> None:
        """Writes what is buffered and makes it durable."""
        await self._flush()
        await asyncio.to_thread(_sync_close, self._file)

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _sync_close(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _write_json(path: Path, data: Any) -> None:
    """path holds data or what it held before, never half of it, also after a crash."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".meta-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JobQueue:
    """Local jobs by IPP job-id, on disk in folder; one process at a time (see service.lock)."""

    def __init__(self, folder: Path, retention_seconds: float, retention_jobs: int) -> None:
        self.folder = folder
        self.retention_seconds = retention_seconds
        self.retention_jobs = retention_jobs
        self.jobs: dict[int, LocalJob] = {}
        # The job the forwarder is sending right now (it cannot be canceled meanwhile).
        self.sending: int | None = None
        # Set whenever a job becomes ready to forward.
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._next_id = 1

    # Start ---------------------------------------------------------------------------------

    def open(self) -> list[LocalJob]:
        """Loads the jobs, sweeps what a crash left, and ends Create-Jobs that lost their document.

        Returns the jobs still to forward. Runs before the server starts (blocking is fine).
        """
        private_dir(self.folder)
        for part in self.folder.glob(f"{_PART_PREFIX}*"):
            part.unlink(missing_ok=True)
        for tmp in self.folder.glob(".meta-*"):
            tmp.unlink(missing_ok=True)
        for meta in self.folder.glob("*.json"):
            try:
                job = LocalJob.from_json(json.loads(meta.read_text()))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("ignoring %s, which cannot be read: %s", meta, exc)
                continue
            self.jobs[job.id] = job
        for data in self.folder.glob("*.data"):
            owner = self.jobs.get(int(data.stem)) if data.stem.isdigit() else None
            # Renamed, then the process died before its metadata; or finished, then it died
            # before the document was deleted.
            if owner is None or owner.state in FINAL:
                data.unlink(missing_ok=True)
        self._next_id = max([self._read_counter(), *(j.id + 1 for j in self.jobs.values())])
        now = time.time()
        for job in self.jobs.values():
            if job.state is JobState.INCOMING:
                self._finish_sync(job, JobState.ABORTED, "its document never came", now)
            elif job.state is JobState.QUEUED and not self.data_path(job).is_file():
                self._finish_sync(job, JobState.ABORTED, "its document was lost", now)
        self._prune(now)
        waiting = self.waiting()
        if waiting:
            self.ready.set()
        return waiting

    def _read_counter(self) -> int:
        try:
            return max(1, int((self.folder / _COUNTER).read_text().strip()))
        except (OSError, ValueError):
            return 1

    # Reading -------------------------------------------------------------------------------

    def data_path(self, job: LocalJob) -> Path:
        return self.folder / f"{job.id:08d}.data"

    def _meta_path(self, job_id: int) -> Path:
        return self.folder / f"{job_id:08d}.json"

    def get(self, job_id: int) -> LocalJob | None:
        return self.jobs.get(job_id)

    def waiting(self) -> list[LocalJob]:
        """Jobs to forward, oldest first."""
        return sorted(
            (j for j in self.jobs.values() if j.state is JobState.QUEUED), key=lambda j: j.id
        )

    def listed(self) -> list[LocalJob]:
        """Every job, newest first."""
        return sorted(self.jobs.values(), key=lambda j: j.id, reverse=True)

    # Receiving -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def part(self) -> AsyncIterator[Part]:
        """A part file for a document; deleted at the end of the block unless a job took it."""
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=_PART_PREFIX)
        part = Part(Path(name), os.fdopen(fd, "wb"))
        try:
            yield part
        finally:
            part.discard()  # after add()/attach() renamed it, there is nothing left to delete

    async def add(self, job: LocalJob, part: Part | None) -> LocalJob:
        """Takes a new job (with its document, or INCOMING without one) under the next job-id."""
        if part is not None:
            await part.close()
            job.size = part.size
        async with self._lock:
            job.id = self._next_id
            self._next_id += 1
            await asyncio.to_thread(self._commit, job, part)
            self.jobs[job.id] = job
        if job.state is JobState.QUEUED:
            self.ready.set()
        log.info("job %d (%s) taken: %d bytes, %s", job.id, job.title, job.size, job.format)
        return job

    def _commit(self, job: LocalJob, part: Part | None) -> None:
        _write_json(self.folder / _COUNTER, self._next_id)
        if part is not None:
            os.replace(part.path, self.data_path(job))
        _write_json(self._meta_path(job.id), job.to_json())

    async def attach(self, job: LocalJob, part: Part, document_format: str) -> bool:
        """The document of a Create-Job's job: queued from now on. False if the job ended
        meanwhile (closed, canceled or timed out): the document is dropped then."""
        await part.close()
        async with self._lock:
            if job.state is not JobState.INCOMING:
                return False
            job.size = part.size
            job.format = document_format
            job.state = JobState.QUEUED
            await asyncio.to_thread(self._attach, job, part)
        self.ready.set()
        log.info("job %d (%s) taken: %d bytes, %s", job.id, job.title, job.size, job.format)
        return True

    def _attach(self, job: LocalJob, part: Part) -> None:
        os.replace(part.path, self.data_path(job))
        _write_json(self._meta_path(job.id), job.to_json())

    # Changing ------------------------------------------------------------------------------

    async def save(self, job: LocalJob) -> None:
        async with self._lock:
            await asyncio.to_thread(_write_json, self._meta_path(job.id), job.to_json())

    async def finish(
        self, job: LocalJob, state: JobState, message: str, cloud: dict[str, Any] | None = None
    ) -> None:
        """Ends job (completed, aborted or canceled): its document is deleted, its record kept."""
        async with self._lock:
            if cloud is not None:
                job.cloud = cloud
            await asyncio.to_thread(self._finish_sync, job, state, message, time.time())
            await asyncio.to_thread(self._prune, time.time())

    def _finish_sync(self, job: LocalJob, state: JobState, message: str, now: float) -> None:
        # The record first (a crash then leaves only a document the next start sweeps), then the
        # document, and only then does the job show as finished to IPP clients.
        done = replace(job, state=state, message=message, complete_time=now)
        _write_json(self._meta_path(job.id), done.to_json())
        self.data_path(job).unlink(missing_ok=True)
        job.state, job.message, job.complete_time = state, message, now

    async def prune(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._prune, time.time())

    def _prune(self, now: float) -> None:
        """Drops finished jobs past the retention time, and beyond the newest retention_jobs."""
        done = sorted((j for j in self.jobs.values() if j.final), key=lambda j: j.complete_time)
        too_many = len(done) - self.retention_jobs
        for index, job in enumerate(done):
            if index < too_many or job.complete_time < now - self.retention_seconds:
                self._meta_path(job.id).unlink(missing_ok=True)
                self.data_path(job).unlink(missing_ok=True)
                del self.jobs[job.id]

    async def expire_incoming(self, older_than: float) -> None:
        """Create-Jobs whose document did not come in time end aborted."""
        for job in list(self.jobs.values()):
            if job.state is JobState.INCOMING and job.create_time < older_than:
                await self.finish(job, JobState.ABORTED, "its document did not come in time")


def new_request_id() -> str:
    return str(uuid.uuid4())
