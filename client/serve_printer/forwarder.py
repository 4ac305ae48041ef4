"""The forwarder: one background task sending queued jobs to PrintFabric, oldest first.

Every send of a job carries the job's own request id as its idempotency key, so a resend after
a network drop or a crash finds the job the cloud already has instead of making a second.
- cannot reach PrintFabric: every job stays queued; tried again after 1 s, doubling to a minute;
- the login ended: jobs stay queued; tried again when the session file changes;
- the cloud refuses the job (its document, the user's rights, an unknown queue): that job ends
  aborted with the cloud's reason, and the next one goes;
- sent: the job ends completed with the number of its cloud job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from printfabric.formats import FORMATS

from client.api import Account
from client.document import Document
from client.errors import ClientError, DocumentError, LoginRequired, NotFound, Refused, Unreachable
from client.routes.base import PrintJob
from client.routes.ipps import send_ipps
from client.serve_printer.description import DescriptionCache, Destination, QueueDescription
from client.serve_printer.queue import JobQueue, JobState, LocalJob
from client.serve_printer.status import Link, LinkState
from client.session import SessionStore

log = logging.getLogger(__name__)

RETRY_FIRST = 1.0
# A job whose sends fail for other reasons than the above is aborted after this many.
MAX_FAILURES = 5
# How often the session file is looked at while waiting for a new login.
SESSION_POLL_SECONDS = 1.0
# Without a new login, a refused login is tried again after this long.
LOGIN_RETRY_SECONDS = 600.0


@dataclass(frozen=True)
class QueuedDocument(Document):
    """A queued document, named as the local client named it (not by its file in the queue)."""

    given_name: str = ""

    @property
    def name(self) -> str:
        return self.given_name or self.path.name


class _TryLater(Exception):
    """Ends a round of sending after a failure that is worth another try later."""


def print_job(job: LocalJob, data: Path) -> PrintJob:
    """What send_ipps sends for a local job."""
    document = QueuedDocument(data, job.size, FORMATS[job.format.lower()], job.document_name)
    return PrintJob(
        document=document,
        printer=job.printer,
        title=job.title,
        copies=job.copies,
        duplex=job.duplex,
        mono=job.mono,
        media=job.media,
        request_id=job.request_id,
    )


def completed_message(cloud: dict[str, object], printer: str) -> str:
    number, state = cloud.get("number"), str(cloud.get("state") or "")
    if state == "held":
        return f"in PrintFabric as job {number} on {printer}: release it at any printer"
    return f"in PrintFabric as job {number} on {printer} ({state or 'taken'})"


# What identifies one version of the session file (None: there is none).
SessionMark = tuple[int, int, int] | None


def _session_mark(path: Path) -> SessionMark:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class Forwarder:
    def __init__(
        self,
        queue: JobQueue,
        store: SessionStore,
        destination: Destination,
        cache: DescriptionCache,
        link: Link,
        retry_max: float,
    ) -> None:
        self.queue = queue
        self.store = store
        self.destination = destination
        self.cache = cache
        self.link = link
        self.retry_max = retry_max
        self._pause = RETRY_FIRST
        # Descriptions learnt during one round of sending, by queue name.
        self._described: dict[str, QueueDescription] = {}

    async def run(self) -> None:
        """Sends jobs until cancelled."""
        while True:
            waiting = self.queue.waiting()
            if not waiting:
                self.queue.ready.clear()
                await self.queue.ready.wait()
                continue
            try:
                await self._send_round(waiting[0])
            except Exception:
                # A fault of ours, not the job's: keep the jobs and try again later.
                log.exception("forwarding failed; trying again")
                await self._wait(self._next_pause())

    async def _send_round(self, first: LocalJob) -> None:
        mark = _session_mark(self.store.path)
        try:
            async with Account(self.store) as account:
                self._described = {}
                job: LocalJob | None = first
                while job is not None:
                    await self._forward(account, job)
                    self._pause = RETRY_FIRST
                    waiting = self.queue.waiting()
                    job = waiting[0] if waiting else None
        except Unreachable as exc:
            await self._offline(exc)
        except LoginRequired as exc:
            await self._login_required(exc, mark)
        except _TryLater:
            await self._wait(self._next_pause())

    async def _forward(self, account: Account, job: LocalJob) -> None:
        """Sends one job; Unreachable and LoginRequired leave it queued and end the round."""
        # Claimed: it cannot be canceled here from now on until this send ends.
        self.queue.sending = job.id
        try:
            await self._forward_claimed(account, job)
        finally:
            self.queue.sending = None

    async def _forward_claimed(self, account: Account, job: LocalJob) -> None:
        try:
            description = await self._describe(account, job.printer)
            uri = description.ipps_uri
            if not uri:
                raise NotFound(f"PrintFabric lists no IPPS address for {job.printer}")
            was = self.link.state
            if self.link.set(LinkState.ONLINE) and was in (LinkState.OFFLINE, LinkState.LOGIN):
                log.info(
                    "PrintFabric is reachable again: sending %d job(s)", len(self.queue.waiting())
                )
            delivered = await self._send(account, job, uri)
        except (DocumentError, Refused, NotFound) as exc:
            log.warning("job %d (%s) refused: %s", job.id, job.title, exc.message)
            await self.queue.finish(job, JobState.ABORTED, f"PrintFabric refused it: {exc.message}")
            return
        except (Unreachable, LoginRequired):
            raise
        except ClientError as exc:
            await self._failed(job, exc)
            return
        cloud = dict(delivered or {})
        message = completed_message(cloud, job.printer)
        log.info("job %d (%s) sent: %s", job.id, job.title, message)
        await self.queue.finish(job, JobState.COMPLETED, message, cloud)

    async def _describe(self, account: Account, name: str) -> QueueDescription:
        """The queue's description from the cloud (once per round): also the link check."""
        known = self._described.get(name)
        if known is not None:
            return known
        description = QueueDescription.from_api(await account.printer(name))
        self._described[name] = description
        await asyncio.to_thread(self.cache.save, description)
        if name == self.destination.description.name:
            self.destination.description = description
        return description

    async def _send(self, account: Account, job: LocalJob, uri: str) -> dict[str, object] | None:
        if not job.process_time:
            job.process_time = time.time()
        try:
            request = print_job(job, self.queue.data_path(job))
            delivered = await send_ipps(account, uri, request, self._progress(job))
        finally:
            if job.sent:
                await self.queue.save(job)
        return delivered.job

    def _progress(self, job: LocalJob) -> Callable[[int], None]:
        def advance(n: int) -> None:
            if n > 0:
                # Bytes left: from now on the gateway may hold the job.
                job.sent = True

        return advance

    async def _failed(self, job: LocalJob, exc: ClientError) -> None:
        job.failures += 1
        if job.failures >= MAX_FAILURES:
            log.warning("job %d (%s) failed %d times: %s", job.id, job.title, job.failures, exc)
            await self.queue.finish(
                job, JobState.ABORTED, f"sending failed {job.failures} times: {exc.message}"
            )
            return
        job.message = f"sending failed ({exc.message}); trying again"
        await self.queue.save(job)
        log.warning("job %d (%s): %s; trying again", job.id, job.title, exc.message)
        raise _TryLater()

    def _next_pause(self) -> float:
        pause = self._pause
        self._pause = min(self._pause * 2, self.retry_max)
        return pause

    async def _offline(self, exc: ClientError) -> None:
        count = len(self.queue.waiting())
        pause = self._next_pause()
        if self.link.set(LinkState.OFFLINE, exc.message):
            log.warning(
                "PrintFabric is not reachable (%s): %d job(s) kept on this computer, "
                "sent when it is back",
                exc.message,
                count,
            )
        else:
            log.debug("still offline (%s); trying again in %.0f s", exc.message, pause)
        await self._wait(pause, watch=True, mark=_session_mark(self.store.path))

    async def _login_required(self, exc: LoginRequired, mark: SessionMark) -> None:
        count = len(self.queue.waiting())
        if self.link.set(LinkState.LOGIN, exc.message):
            log.warning(
                "log in again with `printfabric login`; %d job(s) wait (%s)", count, exc.message
            )
        # Nothing to do until someone logs in: the session file changes then (polled, as it may
        # be written by another process at any time). Tried again after a while all the same,
        # in case the refusal was the gateway's passing fault.
        await self._wait(LOGIN_RETRY_SECONDS, watch=True, mark=mark)
        self._pause = RETRY_FIRST

    async def _wait(self, seconds: float, watch: bool = False, mark: SessionMark = None) -> None:
        """Sleeps seconds; with watch, cut short when the session file is no longer at mark
        (someone logged in)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, SESSION_POLL_SECONDS))
            if watch and _session_mark(self.store.path) != mark:
                self._pause = RETRY_FIRST
                return


async def housekeeping(queue: JobQueue, create_job_timeout: float) -> None:
    """Ends Create-Jobs whose document did not come in time, and drops finished jobs past the
    retention; runs until cancelled."""
    while True:
        await asyncio.sleep(min(30.0, create_job_timeout / 4))
        with contextlib.suppress(OSError):
            await queue.expire_incoming(time.time() - create_job_timeout)
            await queue.prune()
