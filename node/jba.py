"""Xerox JBA accounting at the node: fetch each device's job log, queue its new records once."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import ssl
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
from printfabric.tls import client_ssl_context
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.config import JbaDevice, NodeConfig
from node.convert import jba_usage_entry
from node.db import NodeDatabase
from node.jba_log import (
    JbaError,
    JbaRecord,
    JbaRejected,
    UsageKind,
    log_lines,
    parse_jba,
    request_id,
)
from node.models import JbaCursor, LpdJob, SpooledJob
from node.outbox import Outbox
from node.replica import Replica

# The log format's names stay importable from here, where the collector always stood.
__all__ = [
    "CollectResult",
    "JbaCollector",
    "JbaError",
    "JbaRecord",
    "JbaRejected",
    "UsageKind",
    "log_lines",
    "parse_jba",
    "request_id",
]

log = logging.getLogger(__name__)

# New records committed with the cursor per transaction: memory stays flat on a long log.
SLICE = 2000
# A device's log is a few MB; anything near this is not a job log.
MAX_LOG_BYTES = 256 << 20
# Per run, rejected records are logged one by one up to this many, then only counted.
LOGGED_REJECTIONS = 100
# A record is charged to a job the node printed for its user at most this long before it ended.
JOB_MATCH_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class CollectResult:
    """One run over one device's log: fetched == new + skipped + rejected."""

    device: str
    # Records in the log (every line after the header but blank ones).
    fetched: int
    # Queued into the outbox by this run.
    new: int
    # Well-formed but not queued: at or before the cursor, or not counted (Deleted, no pages).
    skipped: int
    # Malformed and after the cursor (or of unknown position): logged with their line.
    rejected: int
    # Queued with a user name the replica does not know (sent as written).
    unknown_users: int = 0
    # Queued with the id of a job this node printed.
    jobs_matched: int = 0


class JbaCollector:
    """Collects every configured device's log each config.jba_interval seconds into the outbox.

    Records past a device's cursor are queued in the transaction that moves the cursor past
    them, so each is queued once, whatever fails or restarts in between.
    """

    def __init__(
        self, config: NodeConfig, db: NodeDatabase, outbox: Outbox, replica: Replica
    ) -> None:
        self.config = config
        self.db = db
        self.outbox = outbox
        # User names are looked up in the replica's tables, in the collector's own transaction.
        self.replica = replica
        # Each device's last outcome, for status pages and tests.
        self.outcomes: dict[str, CollectResult | Exception] = {}
        # One collection per device at a time in this process (the cursor check covers others).
        self._busy: dict[str, asyncio.Lock] = {}

    async def run(self) -> None:
        """Collects every device, then again every jba_interval seconds, until cancelled."""
        loop = asyncio.get_running_loop()
        while self.config.jba_devices:
            started = loop.time()
            for device in self.config.jba_devices:
                try:
                    self.outcomes[device.name] = await self.collect(device)
                except JbaError as exc:
                    self.outcomes[device.name] = exc
                    log.error("JBA %s: %s [%s]; its cursor stays", device.name, exc, exc.reason)
                except Exception as exc:
                    # One device's surprise must not stop the others.
                    self.outcomes[device.name] = exc
                    log.exception("JBA %s: collection failed; its cursor stays", device.name)
            await asyncio.sleep(max(0.0, self.config.jba_interval - (loop.time() - started)))

    async def collect(self, device: JbaDevice) -> CollectResult:
        """Fetches the device's log and queues its new records; JbaError when it cannot."""
        started = asyncio.get_running_loop().time()
        async with self._busy.setdefault(device.name, asyncio.Lock()):
            # The body goes to disk first: a cut-off answer commits nothing; memory stays flat.
            body = await asyncio.to_thread(_spool_file, self.config.home)
            try:
                await self._download(device, body)
                await asyncio.to_thread(body.seek, 0)
                result = await self._take(device, body)
            finally:
                await asyncio.to_thread(body.close)
        log.info(
            "JBA %s: %d records, %d new, %d skipped, %d rejected, %d of unknown users, "
            "%d matched to jobs (%.1f s)",
            device.name,
            result.fetched,
            result.new,
            result.skipped,
            result.rejected,
            result.unknown_users,
            result.jobs_matched,
            asyncio.get_running_loop().time() - started,
        )
        return result

    async def _download(self, device: JbaDevice, body: IO[bytes]) -> None:
        context = await asyncio.to_thread(_tls_context, self.config.jba_ca)
        auth = (
            httpx.BasicAuth(self.config.jba_user, self.config.jba_password)
            if self.config.jba_user
            else None
        )
        size = 0
        try:
            # trust_env=False: no proxy or CA from the environment; the config says it all.
            async with (
                httpx.AsyncClient(
                    verify=context, timeout=self.config.jba_timeout, auth=auth, trust_env=False
                ) as client,
                client.stream("GET", device.url) as response,
            ):
                _check_status(device, response)
                async for chunk in response.aiter_bytes(256 * 1024):
                    size += len(chunk)
                    if size > MAX_LOG_BYTES:
                        raise JbaError(
                            f"{device.url} sent more than {MAX_LOG_BYTES >> 20} MiB",
                            "LOG_TOO_LARGE",
                        )
                    await asyncio.to_thread(body.write, chunk)
        except httpx.HTTPError as exc:
            raise _transport_error(device, exc, self.config.jba_timeout) from exc
        await asyncio.to_thread(body.flush)

    async def _take(self, device: JbaDevice, body: IO[bytes]) -> CollectResult:
        async with self.db.session() as session, session.begin():
            row = await session.get(JbaCursor, device.name)
        position = _Position(_cursor_of(row))
        # What the cursor row says now; each commit checks it still does.
        held = _held(row)
        if position.cursor is not None:
            await asyncio.to_thread(position.survey, parse_jba(log_lines(body)))
            await asyncio.to_thread(body.seek, 0)
        items = parse_jba(log_lines(body))
        tally = _Tally(device.name)
        batch: list[JbaRecord] = []
        # The newest record taken, and whether the cursor still has to be moved to it.
        last: JbaRecord | None = None
        moved = False
        # Parsing reads the file: in a thread, a few hundred records at a time.
        while chunk := await asyncio.to_thread(_next, items, 500):
            for item in chunk:
                tally.fetched += 1
                if not position.is_new(item):
                    tally.skipped += 1
                elif isinstance(item, JbaRejected):
                    tally.rejected += 1
                    _report(device, item, tally.rejected)
                else:
                    last, moved = item, True
                    if item.counted:
                        batch.append(item)
                    else:
                        tally.skipped += 1
                if len(batch) >= SLICE and last is not None:
                    held = await self._commit(device, batch, last, held, tally)
                    batch, moved = [], False
        if moved and last is not None:
            await self._commit(device, batch, last, held, tally)
        return tally.result()

    async def _commit(
        self,
        device: JbaDevice,
        records: Sequence[JbaRecord],
        last: JbaRecord,
        held: tuple[int, str] | None,
        tally: _Tally,
    ) -> tuple[int, str]:
        """Queues records and moves the device's cursor from held to last, in one transaction;
        returns the cursor's new value."""
        async with self.db.session() as session, session.begin():
            cursor = await session.get(JbaCursor, device.name)
            if _held(cursor) != held:
                raise JbaError(
                    f"the cursor of {device.name} moved during this run: another process "
                    "collects it too",
                    "CURSOR_MOVED",
                )
            logins = await self.replica.logins((r.user for r in records), session=session)
            jobs = await _jobs(session, records)
            entries = [
                jba_usage_entry(device.name, r, logins.get(r.user.casefold(), r.user), job)
                for r, job in zip(records, jobs, strict=True)
            ]
            await self.outbox.enqueue_usage(entries, session=session)
            if cursor is None:
                cursor = JbaCursor(device=device.name)
                session.add(cursor)
            cursor.last_index, cursor.last_key = last.index, last.start.isoformat()
            cursor.updated_at = datetime.now(UTC)
        tally.new += len(entries)
        tally.unknown_users += sum(1 for r in records if r.user.casefold() not in logins)
        tally.jobs_matched += sum(1 for job in jobs if job)
        return cursor.last_index, cursor.last_key


@dataclass
class _Tally:
    device: str
    fetched: int = 0
    new: int = 0
    skipped: int = 0
    rejected: int = 0
    unknown_users: int = 0
    jobs_matched: int = 0

    def result(self) -> CollectResult:
        return CollectResult(
            self.device,
            self.fetched,
            self.new,
            self.skipped,
            self.rejected,
            self.unknown_users,
            self.jobs_matched,
        )


class _Position:
    """Tells, in log order, which records are past the cursor (docs/jba.md, "Which records are
    new"). A device numbers its records upwards and may start again from 1: the log is a series
    of runs of rising numbers, each judged by where it starts against the cursor."""

    def __init__(self, cursor: tuple[int, datetime] | None) -> None:
        self.cursor = cursor
        # The run holding the cursor's own numbering, once survey has found it.
        self.cursor_run: int | None = None
        self.previous: tuple[int, datetime] | None = None
        self.run = -1
        self.rule = "all"

    def survey(self, items: Iterable[JbaRecord | JbaRejected]) -> None:
        """A first pass over the log: the cursor's numbering is the last run that starts at or
        below the cursor's index and time; runs before it are older numberings."""
        if self.cursor is None:
            return
        for item in items:
            run = self.run
            self.is_new(item)
            if self.run != run and self.rule == "index":
                self.cursor_run = self.run
        self.previous, self.run = None, -1

    def is_new(self, item: JbaRecord | JbaRejected) -> bool:
        if item.index is None or item.start is None:
            return True  # a rejection whose place in the log is unknown
        here = (item.index, item.start)
        if here == self.previous:
            return False  # the same record twice in a row
        if self.previous is None or item.index <= self.previous[0]:
            self.run += 1
            self.rule = self._rule(here)
        self.previous = here
        if self.cursor is None or self.rule == "all":
            return True
        if self.rule == "index":
            return item.index > self.cursor[0]
        return self.rule == "time" and item.start > self.cursor[1]

    def _rule(self, first: tuple[int, datetime]) -> str:
        if self.cursor is None:
            return "all"
        if self.cursor_run is not None and self.run <= self.cursor_run:
            return "index" if self.run == self.cursor_run else "old"
        if first[1] > self.cursor[1]:
            return "all"  # numbered after the cursor: a reset, or the log moved past it
        # Started before the cursor: its own numbering, or one kept from before a reset.
        return "index" if first[0] <= self.cursor[0] else "time"


def _held(row: JbaCursor | None) -> tuple[int, str] | None:
    return None if row is None else (row.last_index, row.last_key)


def _cursor_of(row: JbaCursor | None) -> tuple[int, datetime] | None:
    if row is None or not row.last_key:
        return None
    try:
        return row.last_index, datetime.fromisoformat(row.last_key)
    except ValueError:
        log.warning(
            "JBA %s: the cursor's time %r is unreadable; starting over", row.device, row.last_key
        )
        return None


def _next(items: Iterator[JbaRecord | JbaRejected], count: int) -> list[JbaRecord | JbaRejected]:
    return list(itertools.islice(items, count))


def _spool_file(folder: Path) -> IO[bytes]:
    # Unnamed, in the node's private home: gone when closed, even after a crash.
    return tempfile.TemporaryFile(dir=folder)


def _report(device: JbaDevice, item: JbaRejected, count: int) -> None:
    if count <= LOGGED_REJECTIONS:
        log.warning(
            "JBA %s line %d: %s [%s]; record skipped",
            device.name,
            item.line,
            item.message,
            item.reason,
        )
    elif count == LOGGED_REJECTIONS + 1:
        log.warning("JBA %s: more rejected records in this log, counted only", device.name)


async def _jobs(session: AsyncSession, records: Sequence[JbaRecord]) -> list[str]:
    """For each record, the job this node printed for its user under its job name, received
    last before the record ended and at most JOB_MATCH_WINDOW before; "" for none."""
    titles = {r.job_name for r in records if r.job_name}
    if not titles:
        return [""] * len(records)
    since = min(r.occurred for r in records) - JOB_MATCH_WINDOW
    until = max(r.occurred for r in records)
    spooled = await session.execute(
        select(SpooledJob.owner_login, SpooledJob.title, SpooledJob.received_at, SpooledJob.job_id)
        .where(SpooledJob.state == "completed", SpooledJob.title.in_(titles))
        .where(SpooledJob.received_at.between(since, until))
    )
    lpd = await session.execute(
        select(LpdJob.owner_login, LpdJob.title, LpdJob.received_at, LpdJob.job_id)
        .where(LpdJob.state == "printed", LpdJob.title.in_(titles))
        .where(LpdJob.received_at.between(since, until))
    )
    printed: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for owner, title, received, job_id in itertools.chain(spooled.tuples(), lpd.tuples()):
        printed.setdefault((owner.strip().casefold(), title), []).append((received, job_id))
    for jobs in printed.values():
        jobs.sort()
    found = []
    for record in records:
        jobs = printed.get((record.user.casefold(), record.job_name), [])
        before = bisect.bisect_right(jobs, record.occurred, key=lambda job: job[0])
        recent = before and jobs[before - 1][0] >= record.occurred - JOB_MATCH_WINDOW
        found.append(jobs[before - 1][1] if recent else "")
    return found


def _tls_context(ca: Path | None) -> ssl.SSLContext:
    """Verifies devices against PF_NODE_JBA_CA, else the system's store; there is no way not to."""
    try:
        if ca is not None:
            return client_ssl_context(ca)
        context = ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise JbaError(f"cannot load the CA {ca} (PF_NODE_JBA_CA): {exc}", "BAD_CONFIG") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _check_status(device: JbaDevice, response: httpx.Response) -> None:
    code = response.status_code
    if code in (401, 403):
        raise JbaError(
            f"{device.url} refused the log-in (HTTP {code}): check PF_NODE_JBA_USER and "
            "PF_NODE_JBA_PASSWORD_FILE",
            "UNAUTHORIZED",
        )
    if code != 200:
        raise JbaError(f"{device.url} answered HTTP {code} {response.reason_phrase}", "HTTP_STATUS")


def _transport_error(device: JbaDevice, exc: httpx.HTTPError, timeout: float) -> JbaError:
    if isinstance(exc, httpx.TimeoutException):
        return JbaError(f"{device.url}: no answer within {timeout:g} s", "TIMEOUT")
    tls = _ssl_error(exc)
    if tls is not None:
        detail = getattr(tls, "verify_message", "") or tls.reason or str(tls)
        return JbaError(
            f"{device.url}: TLS failed ({detail}); the device's certificate must name its host "
            "and be issued by PF_NODE_JBA_CA (or a CA the system trusts)",
            "TLS",
        )
    if isinstance(exc, httpx.ConnectError):
        return JbaError(f"{device.url}: cannot connect ({exc})", "UNREACHABLE")
    if isinstance(exc, httpx.RemoteProtocolError):
        return JbaError(f"{device.url}: the answer broke off ({exc})", "INCOMPLETE_ANSWER")
    return JbaError(f"{device.url}: {exc}", "HTTP_ERROR")


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    cause: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl
        if cause is None or isinstance(cause, ssl.SSLError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None
