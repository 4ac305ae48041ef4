"""The Xerox JBA job log format (docs/jba.md): strict parsing into records and rejections."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import IO

from node.errors import NodeError

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


def log_lines(body: IO[bytes]) -> Iterator[str]:
    """A log read as bytes, as lines for parse_jba: invalid UTF-8 becomes lone surrogates, which
    reject their line and no other."""
    for raw in body:
        yield raw.decode("utf-8", "surrogateescape")
