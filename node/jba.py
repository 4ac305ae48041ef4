"""Xerox JBA accounting at the node: fetch each device's job log, parse it strictly, queue it once."""

from __future__ import annotations

import asyncio
import bisect
import csv
import hashlib
import itertools
import logging
import re
import ssl
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import IO

import httpx
from printfabric.tls import client_ssl_context
from printfabric.v1 import accounting_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from node.config import JbaDevice, NodeConfig
from node.convert import timestamp
from node.db import NodeDatabase
from node.errors import NodeError
from node.models import JbaCursor, LpdJob, ReplicaUserRow, SpooledJob
from node.outbox import Outbox
from node.replica import Replica

log = logging.getLogger(__name__)

# New records committed with the cursor per transaction: memory stays flat on a long log.
SLICE = 2000
# A device's log is a few MB; anything near this is not a job log.
MAX_LOG_BYTES = 256 << 20
# Per run, rejected records are logged one by one up to this many, then only counted.
LOGGED_REJECTIONS = 100
# A record is charged to a job the node printed for its user at most this long before it ended.
JOB_MATCH_WINDOW = timedelta(hours=24)
_MAX_INDEX = 2**63 - 1  # JbaCursor.last_index is a BIGINT
_MAX_COUNT = 2**31 - 1  # UsageEntry counts are int32
_MAX_REQUEST_ID = 128  # the cloud's limit


class UsageKind(IntEnum):
    """What a record accounts for; the values of printfabric.v1.UsageKind."""

    PRINT = 1
    COPY = 2
    SCAN = 3
    FAX = 4


class JbaError(NodeError):
    """A device's log cannot be collected at all (HTTP, TLS, header); its cursor stays put."""

    reason = "JBA_FAILED"

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message, reason=reason)


@dataclass(frozen=True)
class JbaRecord:
    """One well-formed record of a JBA log; times are aware UTC, line is where it stands."""

    index: int
    kind: UsageKind
    user: str
    host: str
    job_name: str
    sheets: int
    pages: int
    color_pages: int
    mono_pages: int
    paper_size: str
    duplex: bool
    start: datetime
    end: datetime | None
    status: str
    line: int

    @property
    def counted(self) -> bool:
        """Whether the record goes to the cloud: a deleted job or one without pages does not."""
        return _STATUSES.get(_key(self.status), False) and self.pages > 0

    @property
    def occurred(self) -> datetime:
        return self.end or self.start


@dataclass(frozen=True)
class JbaRejected:
    """A malformed record: skipped, never fatal. index and start are set when they parsed, so
    the collector can tell a record it already passed from a new one."""

    line: int
    reason: str
    message: str
    index: int | None = None
    start: datetime | None = None


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


# -- the log format (docs/jba.md) ---------------------------------------------------------------

_TITLES = {
    "index": "Job Index",
    "kind": "Job Type",
    "user": "User Name",
    "host": "Host Name",
    "job_name": "Job Name",
    "sheets": "Sheets",
    "pages": "Pages",
    "color_pages": "Color Pages",
    "mono_pages": "B&W Pages",
    "paper_size": "Paper Size",
    "duplex": "Duplex",
    "start": "Start Time",
    "end": "End Time",
    "status": "Status",
}
# Header names are matched case-insensitively; Pages counts printed sides and may be headed so.
_COLUMNS = {title.casefold(): field for field, title in _TITLES.items()} | {"sides": "pages"}
_OPTIONAL = frozenset({"host"})
_KINDS = {kind.name.casefold(): kind for kind in UsageKind}
# Status -> whether the record is accounted: what came out of a canceled or aborted job was used.
_STATUSES = {
    "completed": True,
    "canceled": True,
    "cancelled": True,
    "aborted": True,
    "deleted": False,
}
_DUPLEX = {"yes": True, "no": False, "": False}
_TEXT_LIMITS = {"user": 256, "paper_size": 64}
_JOB_NAME_LIMIT = 512

# RFC 4180 without line breaks inside quotes: unquoted fields hold no quote, quoted ones double it.
_FIELD = r'(?:"(?:[^"]|"")*"|[^",]*)'
_RECORD = re.compile(rf"{_FIELD}(?:,{_FIELD})*")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_UNDECODABLE = re.compile(r"[\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?", re.ASCII
)
_CWIS_TIME = re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Invalid(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def parse_jba(lines: Iterable[str]) -> Iterator[JbaRecord | JbaRejected]:
    """Reads a JBA log line by line (line 1 is the header), yielding a record or a rejection for
    each non-blank line after it. Raises JbaError, before yielding anything, on a bad header."""
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise JbaError("the log is empty: not even a header row", "BAD_HEADER")
    columns, width = _header(_content(first[1]).removeprefix("\ufeff"))
    for number, line in numbered:
        text = _content(line)
        if text:
            yield _row(text, columns, width, number)


def _content(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _fields(text: str) -> list[str]:
    if _UNDECODABLE.search(text):
        raise _Invalid("BAD_ENCODING", "not UTF-8")
    if _CONTROL.search(text):
        raise _Invalid("CONTROL_CHARACTER", "a control character (or a lone CR) in the line")
    if not _RECORD.fullmatch(text):
        raise _Invalid(
            "BAD_CSV",
            "not RFC 4180 CSV (a quote inside an unquoted field, text after a closing quote, "
            "or a quote left open)",
        )
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:  # a field over csv's size limit
        raise _Invalid("BAD_CSV", f"not a CSV record ({exc})") from None


def _header(text: str) -> tuple[dict[str, int], int]:
    try:
        names = _fields(text)
    except _Invalid as exc:
        raise JbaError(f"line 1: unreadable header row: {exc.message}", "BAD_HEADER") from None
    columns: dict[str, int] = {}
    for position, name in enumerate(names):
        field = _COLUMNS.get(_key(name))
        if field is None:
            continue
        if field in columns:
            raise JbaError(f"line 1: the column {_TITLES[field]} appears twice", "BAD_HEADER")
        columns[field] = position
    missing = [title for f, title in _TITLES.items() if f not in columns and f not in _OPTIONAL]
    if missing:
        raise JbaError(
            f"line 1: the header lacks {', '.join(missing)}: not a Xerox job accounting export "
            "(see docs/jba.md)",
            "BAD_HEADER",
        )
    return columns, len(names)


def _row(text: str, columns: dict[str, int], width: int, line: int) -> JbaRecord | JbaRejected:
    index: int | None = None
    start: datetime | None = None
    try:
        fields = _fields(text)
        if len(fields) != width:
            raise _Invalid("FIELD_COUNT", f"{len(fields)} fields where the header has {width}")
        value = {field: fields[position].strip() for field, position in columns.items()}
        index = _integer(value, "index", _MAX_INDEX)
        start = _time(value, "start")
        return _record(value, index, start, line)
    except _Invalid as exc:
        return JbaRejected(line, exc.reason, exc.message, index, start)


def _record(value: dict[str, str], index: int, start: datetime, line: int) -> JbaRecord:
    kind = _KINDS.get(_key(value["kind"]))
    if kind is None:
        raise _Invalid(
            "UNKNOWN_JOB_TYPE", f"Job Type {value['kind']!r} is not Print, Copy, Scan or Fax"
        )
    if _key(value["status"]) not in _STATUSES:
        raise _Invalid("UNKNOWN_STATUS", f"Status {value['status']!r} is not one of docs/jba.md")
    end = _time(value, "end") if value["end"] else None
    if end is not None and end < start:
        raise _Invalid("TIME_ORDER", "End Time is before Start Time")
    sheets, pages, color, mono = (
        _integer(value, f, _MAX_COUNT) for f in ("sheets", "pages", "color_pages", "mono_pages")
    )
    if color + mono != pages:
        raise _Invalid(
            "PAGES_MISMATCH", f"Color Pages {color} + B&W Pages {mono} is not Pages {pages}"
        )
    duplex = _DUPLEX.get(_key(value["duplex"]))
    if duplex is None:
        raise _Invalid("BAD_DUPLEX", f"Duplex {value['duplex']!r} is not Yes or No")
    for field, limit in _TEXT_LIMITS.items():
        if len(value[field]) > limit:
            raise _Invalid("TOO_LONG", f"{_TITLES[field]} is longer than {limit} characters")
    return JbaRecord(
        index=index,
        kind=kind,
        user=value["user"],
        host=value.get("host", ""),
        job_name=value["job_name"][:_JOB_NAME_LIMIT],
        sheets=sheets,
        pages=pages,
        color_pages=color,
        mono_pages=mono,
        paper_size=value["paper_size"],
        duplex=duplex,
        start=start,
        end=end,
        status=value["status"],
        line=line,
    )


def _integer(value: dict[str, str], field: str, limit: int) -> int:
    text = value[field]
    if not _DIGITS.fullmatch(text) or int(text) > limit:
        raise _Invalid(
            "BAD_NUMBER", f"{_TITLES[field]} {text!r} is not a whole number from 0 to {limit}"
        )
    return int(text)


def _time(value: dict[str, str], field: str) -> datetime:
    text = value[field]
    bad = _Invalid(
        "BAD_TIME",
        f"{_TITLES[field]} {text!r} is not an ISO 8601 time or YYYY/MM/DD HH:MM:SS from 1970 on",
    )
    if _ISO_TIME.fullmatch(text):
        text = text.replace("Z", "+00:00")
    elif _CWIS_TIME.fullmatch(text):
        text = text.replace("/", "-")
    else:
        raise bad
    try:
        when = datetime.fromisoformat(text)
        # Without an offset the time is UTC (docs/jba.md): set devices to UTC or export offsets.
        when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise bad from None
    if when < _EPOCH:
        raise bad
    return when


def request_id(device: str, record: JbaRecord) -> str:
    """jba:<device>:<index>:<start, UTC>; the start time keeps ids new after an index reset."""
    tail = f"{record.index}:{record.start:%Y%m%dT%H%M%SZ}"
    rid = f"jba:{device}:{tail}"
    if len(rid) > _MAX_REQUEST_ID:
        rid = f"jba:~{hashlib.sha256(device.encode()).hexdigest()[:16]}:{tail}"
    return rid


# -- the collector ------------------------------------------------------------------------------


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
            logins = await _logins(session, {r.user.casefold() for r in records if r.user})
            jobs = await _jobs(session, records)
            entries = [
                _usage_entry(device.name, r, logins.get(r.user.casefold(), r.user), job)
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


def log_lines(body: IO[bytes]) -> Iterator[str]:
    """A log read as bytes, as lines for parse_jba: invalid UTF-8 becomes lone surrogates, which
    reject their line and no other."""
    for raw in body:
        yield raw.decode("utf-8", "surrogateescape")


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


async def _logins(session: AsyncSession, keys: set[str]) -> dict[str, str]:
    """Case-folded user name -> the login as the directory writes it."""
    if not keys:
        return {}
    rows = await session.execute(
        select(ReplicaUserRow.login_key, ReplicaUserRow.login)
        .where(ReplicaUserRow.login_key.in_(keys))
        .order_by(ReplicaUserRow.revision)
    )
    # Two rows share a login only between two deltas; the newest revision is the truth.
    return dict(rows.tuples().all())


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


_PROTO_KINDS = {
    UsageKind.PRINT: accounting_pb2.USAGE_KIND_PRINT,
    UsageKind.COPY: accounting_pb2.USAGE_KIND_COPY,
    UsageKind.SCAN: accounting_pb2.USAGE_KIND_SCAN,
    UsageKind.FAX: accounting_pb2.USAGE_KIND_FAX,
}


def _usage_entry(
    device: str, record: JbaRecord, login: str, job_id: str
) -> accounting_pb2.UsageEntry:
    # device_id stays empty: the cloud fills in the node (a JBA device is not a cloud device).
    return accounting_pb2.UsageEntry(
        request_id=request_id(device, record),
        kind=_PROTO_KINDS[record.kind],
        user_login=login,
        document_name=record.job_name,
        job_id=job_id,
        pages=record.pages,
        sheets=record.sheets,
        color_pages=record.color_pages,
        mono_pages=record.mono_pages,
        duplex=record.duplex,
        paper_size=record.paper_size,
        occur_time=timestamp(record.occurred),
    )


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
