"""Xerox JBA accounting at the node: the log parser, the collector against a device over HTTPS, and
10 000 records collected while the cloud is down arriving exactly once."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printfabric.tls import ensure_dev_pki
from printfabric.v1 import accounting_pb2

from cloud.domain.devices import Devices
from node.app import running_node
from node.config import JbaDevice, NodeConfig
from node.db import NodeDatabase
from node.jba import (
    CollectResult,
    JbaCollector,
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
from node.replica import Replica, ReplicaUser, SnapshotChunk
from tests.support.jba_device import HEADER, XeroxDevice
from tests.test_node_link import accounting_rows, cloud_at, eventually, node_config

DATA = Path(__file__).parent / "data" / "jba"
PASSWORD = "cwis-Reader-7"


def parse_file(name: str) -> list[JbaRecord | JbaRejected]:
    with (DATA / name).open("rb") as body:
        return list(parse_jba(log_lines(body)))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- the parser ---------------------------------------------------------------------------------


def test_a_cwis_export_with_a_bom_and_crlf_parses_into_records_in_utc() -> None:
    records = parse_file("cwis-export.csv")
    assert all(isinstance(r, JbaRecord) for r in records)
    assert [r.index for r in records] == list(range(1041, 1049))
    assert records[0] == JbaRecord(
        index=1041,
        kind=UsageKind.PRINT,
        user="alice",
        host="WS-ALICE",
        job_name="Q3 report, final.pdf",
        sheets=3,
        pages=6,
        color_pages=2,
        mono_pages=4,
        paper_size="A4",
        duplex=True,
        start=utc("2024-03-12T08:15:02Z"),
        end=utc("2024-03-12T08:15:40Z"),
        status="Completed",
        line=2,
    )
    copy, scan, fax, cancelled, deleted, aborted, anonymous = records[1:]
    assert isinstance(copy, JbaRecord) and isinstance(scan, JbaRecord)
    # The CWIS local format carries no offset: it is read as UTC.
    assert (copy.kind, copy.start) == (UsageKind.COPY, utc("2024-03-12T08:20:00Z"))
    assert (scan.kind, scan.job_name, scan.sheets) == (
        UsageKind.SCAN,
        'Scan to Email "Invoices"',
        0,
    )
    assert isinstance(fax, JbaRecord) and fax.kind is UsageKind.FAX
    assert isinstance(cancelled, JbaRecord) and cancelled.user == "Jiří.Novák"
    assert cancelled.counted and cancelled.status == "Cancelled"
    assert isinstance(deleted, JbaRecord) and not deleted.counted and deleted.end is None
    assert isinstance(aborted, JbaRecord) and aborted.counted
    assert aborted.start == datetime(2024, 3, 12, 8, 55, 0, 250_000, tzinfo=UTC)
    assert isinstance(anonymous, JbaRecord)
    assert (anonymous.user, anonymous.status, anonymous.line) == ("", "Completed", 9)


def test_columns_are_found_by_name_in_any_order_and_sides_names_the_pages() -> None:
    first, second = parse_file("reordered-columns.csv")
    assert isinstance(first, JbaRecord) and isinstance(second, JbaRecord)
    assert (first.index, first.host, first.pages, first.duplex) == (7, "", 1, False)
    assert (second.kind, second.pages, second.color_pages, second.end) == (
        UsageKind.SCAN,
        3,
        3,
        None,
    )
    assert second.occurred == second.start


def test_every_bad_record_is_rejected_with_its_line_and_the_others_still_parse() -> None:
    found = [
        (r.line, r.reason if isinstance(r, JbaRejected) else "ok")
        for r in parse_file("bad-records.csv")
    ]
    assert found == [
        (2, "ok"),
        (3, "BAD_NUMBER"),
        (4, "PAGES_MISMATCH"),
        (5, "UNKNOWN_JOB_TYPE"),
        (6, "UNKNOWN_STATUS"),
        (7, "BAD_TIME"),
        (8, "TIME_ORDER"),
        (9, "FIELD_COUNT"),
        (10, "BAD_CSV"),
        (11, "BAD_DUPLEX"),
        (12, "CONTROL_CHARACTER"),
        (13, "BAD_ENCODING"),
        (14, "TOO_LONG"),
        (16, "BAD_NUMBER"),
        (17, "ok"),
    ]


GOOD = {
    "Job Index": "77",
    "Job Type": "Print",
    "User Name": "alice",
    "Host Name": "WS-1",
    "Job Name": "doc.pdf",
    "Account ID": "",
    "Sheets": "1",
    "Pages": "2",
    "Color Pages": "1",
    "B&W Pages": "1",
    "Paper Size": "A4",
    "Duplex": "Yes",
    "Start Time": "2024-03-12T10:00:00+02:00",
    "End Time": "2024-03-12T10:00:30+02:00",
    "Status": "Completed",
}


def log_of(*rows: dict[str, str]) -> list[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([row[name] for name in HEADER])
    # Lines end at LF only, as the collector reads them: a CR inside a field stays in it.
    return [line for line in re.split(r"(?<=\n)", out.getvalue()) if line]


@pytest.mark.parametrize(
    ("change", "reason", "positioned"),
    [
        ({"Job Index": ""}, "BAD_NUMBER", False),
        ({"Job Index": "-3"}, "BAD_NUMBER", False),
        ({"Job Index": "1e3"}, "BAD_NUMBER", False),
        ({"Job Index": "99999999999999999999"}, "BAD_NUMBER", False),
        ({"Start Time": ""}, "BAD_TIME", False),
        ({"Start Time": "2024-03-12"}, "BAD_TIME", False),
        ({"Start Time": "2024-02-30T10:00:00Z"}, "BAD_TIME", False),
        ({"Start Time": "1969-12-31T23:59:59Z", "End Time": ""}, "BAD_TIME", False),
        ({"End Time": "12/03/2024 10:01"}, "BAD_TIME", True),
        ({"End Time": "2024-03-12T09:59:00+02:00"}, "TIME_ORDER", True),
        ({"Pages": "2.0"}, "BAD_NUMBER", True),
        ({"Sheets": " "}, "BAD_NUMBER", True),
        ({"Color Pages": "2147483648"}, "BAD_NUMBER", True),
        ({"B&W Pages": "2"}, "PAGES_MISMATCH", True),
        ({"Job Type": "Report"}, "UNKNOWN_JOB_TYPE", True),
        ({"Status": "Processing"}, "UNKNOWN_STATUS", True),
        ({"Duplex": "2-Sided"}, "BAD_DUPLEX", True),
        ({"User Name": "x" * 257}, "TOO_LONG", True),
        ({"Paper Size": "p" * 65}, "TOO_LONG", True),
        ({"Job Name": "tab\tis fine, a\x1bescape is not"}, "CONTROL_CHARACTER", False),
        ({"Job Name": "split\rline"}, "CONTROL_CHARACTER", False),
        ({"Job Name": "not \udcff UTF-8"}, "BAD_ENCODING", False),
    ],
)
def test_each_rule_rejects_a_record_and_names_why(
    change: dict[str, str], reason: str, positioned: bool
) -> None:
    (rejected,) = parse_jba(log_of({**GOOD, **change}))
    assert isinstance(rejected, JbaRejected), rejected
    assert (rejected.reason, rejected.line) == (reason, 2), rejected.message
    # A rejection after the index and start parsed carries them (old ones are not reported again).
    assert (rejected.index is not None and rejected.start is not None) == positioned


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('77,Print,"alice"x,WS-1', "BAD_CSV"),
        ('77,Print,al"ice,WS-1', "BAD_CSV"),
        ("77,Print,alice", "FIELD_COUNT"),
    ],
)
def test_a_line_that_is_not_rfc_4180_csv_of_the_headers_width_is_rejected(
    line: str, reason: str
) -> None:
    header, *_ = log_of()
    (rejected,) = parse_jba([header, line + "\r\n"])
    assert isinstance(rejected, JbaRejected) and rejected.reason == reason


def test_well_formed_variants_are_accepted() -> None:
    variants = [
        {"Job Type": " COPY ", "Duplex": "no", "Status": "canceled"},
        {"Duplex": "", "End Time": ""},
        {"Start Time": "2024/03/12 08:00:00", "End Time": "2024-03-12 08:00:00.5Z"},
        {"Job Name": "x" * 600, "Tab": "ignored"},
        {"Job Name": "tab\tinside", "Pages": "0", "Color Pages": "0", "B&W Pages": "0"},
    ]
    records = list(parse_jba(log_of(*({**GOOD, **v} for v in variants))))
    assert all(isinstance(r, JbaRecord) for r in records), records
    copy, no_end, cwis, long_name, empty = records
    assert isinstance(copy, JbaRecord) and isinstance(no_end, JbaRecord)
    assert (copy.kind, copy.duplex, copy.counted) == (UsageKind.COPY, False, True)
    assert no_end.end is None and not no_end.duplex
    assert isinstance(cwis, JbaRecord) and cwis.end is not None
    assert (cwis.start, cwis.end - cwis.start) == (
        utc("2024-03-12T08:00:00Z"),
        timedelta(seconds=0.5),
    )
    assert isinstance(long_name, JbaRecord) and len(long_name.job_name) == 512
    # Nothing came out: nothing to account.
    assert isinstance(empty, JbaRecord) and not empty.counted


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([], "empty"),
        (["\r\n", *log_of(GOOD)[1:]], "lacks Job Index"),
        ([";".join(HEADER) + "\r\n"], "lacks Job Index, Job Type"),
        ([",".join(h for h in HEADER if h != "Status") + "\n"], "lacks Status"),
        ([",".join([*HEADER, "Sides"]) + "\n"], "Pages appears twice"),
        (['Job Index,"Job Type\n'], "not RFC 4180"),
        (["Job Index,Job\udcffType\n"], "not UTF-8"),
    ],
)
def test_a_bad_header_fails_the_whole_log(lines: list[str], says: str) -> None:
    with pytest.raises(JbaError, match=says) as failed:
        list(parse_jba(lines))
    assert failed.value.reason == "BAD_HEADER"


def test_the_parser_streams_a_log_of_any_length() -> None:
    header, row = log_of(GOOD)
    endless = itertools.chain([header], itertools.repeat(row))
    assert len(list(itertools.islice(parse_jba(endless), 50_000))) == 50_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_yields_only_records_and_rejections_or_a_header_error(text: str) -> None:
    try:
        items = list(parse_jba(text.splitlines(keepends=True)))
    except JbaError as exc:
        assert exc.reason == "BAD_HEADER"
        return
    assert all(isinstance(i, JbaRecord | JbaRejected) for i in items)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(codec="utf-8") | st.sampled_from(',"\r\t')), max_size=8))
def test_arbitrary_lines_after_a_good_header_never_raise(lines: list[str]) -> None:
    header, good = log_of(GOOD)
    for item in parse_jba([header, *lines, good]):
        if isinstance(item, JbaRecord):
            assert item.color_pages + item.mono_pages == item.pages
            assert item.end is None or item.end >= item.start
            assert item.start.tzinfo is UTC


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=40)
counts = st.integers(0, 2**31 - 1)
times = st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(0, 2**63 - 1),
    kind=st.sampled_from(UsageKind),
    user=names.map(str.strip).filter(lambda s: len(s) <= 256),
    job_name=names.map(str.strip),
    color=st.integers(0, 2**30 - 1),
    mono=st.integers(0, 2**30),
    sheets=counts,
    duplex=st.booleans(),
    start=times,
    took=st.timedeltas(timedelta(0), timedelta(days=1)),
)
def test_a_record_written_as_the_device_writes_it_reads_back_the_same(
    index: int,
    kind: UsageKind,
    user: str,
    job_name: str,
    color: int,
    mono: int,
    sheets: int,
    duplex: bool,
    start: datetime,
    took: timedelta,
) -> None:
    end = start + took
    row = {
        **GOOD,
        "Job Index": str(index),
        "Job Type": kind.name.title(),
        "User Name": user,
        "Job Name": job_name,
        "Sheets": str(sheets),
        "Pages": str(color + mono),
        "Color Pages": str(color),
        "B&W Pages": str(mono),
        "Duplex": "Yes" if duplex else "No",
        "Start Time": start.isoformat(),
        "End Time": end.isoformat(),
    }
    (record,) = parse_jba(log_of(row))
    assert isinstance(record, JbaRecord), record
    assert (record.index, record.kind, record.user, record.job_name) == (
        index,
        kind,
        user,
        job_name,
    )
    assert (record.pages, record.color_pages, record.mono_pages, record.sheets) == (
        color + mono,
        color,
        mono,
        sheets,
    )
    assert (record.duplex, record.start, record.end) == (duplex, start, end)


def test_request_ids_name_device_index_and_start_and_fit_the_clouds_128_characters() -> None:
    (record,) = (r for r in parse_file("cwis-export.csv") if r.line == 2)
    assert isinstance(record, JbaRecord)
    assert request_id("lobby", record) == "jba:lobby:1041:20240312T081502Z"
    later = replace(record, start=record.start + timedelta(days=30))
    assert request_id("lobby", later) != request_id("lobby", record)
    long_a, long_b = request_id("a" * 200, record), request_id("b" * 200, record)
    assert len(long_a) <= 128 and long_a != long_b and long_a == request_id("a" * 200, record)


# -- the collector ------------------------------------------------------------------------------


@dataclass
class Lobby:
    """A node's database, outbox and replica, and one Xerox device it collects from."""

    device: XeroxDevice
    config: NodeConfig
    db: NodeDatabase
    outbox: Outbox
    replica: Replica

    @property
    def jba(self) -> JbaDevice:
        return self.config.jba_devices[0]

    def collector(self, **changes: Any) -> JbaCollector:
        config = replace(self.config, **changes)
        return JbaCollector(config, self.db, self.outbox, self.replica)

    async def collect(self, **changes: Any) -> CollectResult:
        return await self.collector(**changes).collect(self.jba)


@pytest.fixture
async def lobby(tmp_path: Path) -> AsyncIterator[Lobby]:
    with XeroxDevice(tmp_path / "device", user="jba-reader", password=PASSWORD) as device:
        config = NodeConfig(
            home=tmp_path / "node",
            jba_devices=(JbaDevice("lobby", device.url),),
            jba_interval=0.2,
            jba_ca=device.ca_path,
            jba_user="jba-reader",
            jba_password=PASSWORD,
            jba_timeout=5.0,
        )
        db = await NodeDatabase.open(config.db_path)
        try:
            yield Lobby(device, config, db, Outbox(db), Replica(db))
        finally:
            await db.close()


async def queued(outbox: Outbox) -> list[accounting_pb2.UsageEntry]:
    records = await outbox.pending(limit=1_000_000)
    return [e for r in records for e in r.request().accounting_batch.entries]


async def cursor_of(db: NodeDatabase, device: str) -> tuple[int, str] | None:
    async with db.session() as session:
        row = await session.get(JbaCursor, device)
    return None if row is None else (row.last_index, row.last_key)


async def test_a_devices_log_is_queued_once_and_records_logged_later_are_picked_up(
    lobby: Lobby,
) -> None:
    first = lobby.device.add(job_type="Copy", user="bob", pages=3, color_pages=1, mono_pages=2)
    lobby.device.add_records(23)
    lobby.device.add(status="Deleted", pages=0, mono_pages=0)
    assert await lobby.collect() == CollectResult("lobby", 25, 24, 1, 0, 24, 0)
    entries = await queued(lobby.outbox)
    assert entries[0] == accounting_pb2.UsageEntry(
        request_id=f"jba:lobby:1:{first.start:%Y%m%dT%H%M%SZ}",
        kind=accounting_pb2.USAGE_KIND_COPY,
        user_login="bob",
        document_name="report.pdf",
        pages=3,
        sheets=1,
        color_pages=1,
        mono_pages=2,
        duplex=True,
        paper_size="A4",
        occur_time=entries[0].occur_time,
    )
    assert first.end is not None and entries[0].occur_time.ToDatetime(UTC) == first.end
    # The deleted job moved the cursor all the same.
    assert await cursor_of(lobby.db, "lobby") == (25, lobby.device.records[-1].start.isoformat())
    # The device asked for its log-in, and the node gave it.
    assert lobby.device.requests == [("/jba/log.csv", True)]

    assert await lobby.collect() == CollectResult("lobby", 25, 0, 25, 0)
    lobby.device.add_records(5, user="carol")
    assert (await lobby.collect()).new == 5
    ids = [e.request_id for e in await queued(lobby.outbox)]
    assert len(ids) == len(set(ids)) == 29


async def test_a_device_that_resets_its_index_gives_new_records_new_ids(lobby: Lobby) -> None:
    lobby.device.add_records(10)
    await lobby.collect()
    # A service reset: numbering from 1 again, the old log gone.
    lobby.device.reset_index()
    lobby.device.add_records(3)
    assert (await lobby.collect()).new == 3
    assert (await lobby.collect()).new == 0
    lobby.device.add_records(2)
    assert (await lobby.collect()).new == 2
    # A device that keeps the old records across a reset: the log has both numberings.
    lobby.device.reset_index(keep_old=True)
    lobby.device.add_records(4)
    assert [r.index for r in lobby.device.records] == [1, 2, 3, 4, 5, 1, 2, 3, 4]
    assert (await lobby.collect()).new == 4
    assert (await lobby.collect()).new == 0
    lobby.device.add_records(1)
    assert (await lobby.collect()).new == 1
    ids = [e.request_id for e in await queued(lobby.outbox)]
    assert len(ids) == len(set(ids)) == 20
    assert sum(i.startswith("jba:lobby:1:") for i in ids) == 3


async def test_a_wrong_password_fails_clearly_and_leaves_the_cursor_where_it_was(
    lobby: Lobby,
) -> None:
    lobby.device.add_records(5)
    await lobby.collect()
    cursor = await cursor_of(lobby.db, "lobby")
    lobby.device.add_records(5)
    for changes in ({"jba_password": "guess"}, {"jba_user": "", "jba_password": ""}):
        with pytest.raises(JbaError, match="PF_NODE_JBA_USER") as failed:
            await lobby.collect(**changes)
        assert failed.value.reason == "UNAUTHORIZED" and "HTTP 401" in failed.value.message
        assert PASSWORD not in str(failed.value)
    assert await cursor_of(lobby.db, "lobby") == cursor
    assert len(await queued(lobby.outbox)) == 5
    assert (await lobby.collect()).new == 5


async def test_a_device_certificate_the_node_does_not_trust_is_refused(
    lobby: Lobby, tmp_path: Path
) -> None:
    lobby.device.add_records(3)
    another_ca = ensure_dev_pki(tmp_path / "another-ca").ca_cert
    for ca in (another_ca, None):
        with pytest.raises(JbaError, match="unable to get local issuer certificate") as failed:
            await lobby.collect(jba_ca=ca)
        assert failed.value.reason == "TLS" and "PF_NODE_JBA_CA" in failed.value.message
    with pytest.raises(JbaError) as missing:
        await lobby.collect(jba_ca=tmp_path / "nowhere.pem")
    assert missing.value.reason == "BAD_CONFIG"
    assert await cursor_of(lobby.db, "lobby") is None and await lobby.outbox.counts() == {}


@pytest.mark.parametrize(
    ("fault", "reason", "says"),
    [
        ({"malformed_header": True}, "BAD_HEADER", "lacks Job Index"),
        ({"status": 500}, "HTTP_STATUS", "HTTP 500"),
        ({"cut_off": True}, "INCOMPLETE_ANSWER", "broke off"),
    ],
)
async def test_a_log_that_cannot_be_read_whole_changes_nothing(
    lobby: Lobby, fault: dict[str, Any], reason: str, says: str
) -> None:
    lobby.device.add_records(5)
    await lobby.collect()
    cursor = await cursor_of(lobby.db, "lobby")
    lobby.device.add_records(3000)
    for name, value in fault.items():
        setattr(lobby.device, name, value)
    with pytest.raises(JbaError, match=says) as failed:
        await lobby.collect()
    assert failed.value.reason == reason
    assert await cursor_of(lobby.db, "lobby") == cursor
    assert len(await queued(lobby.outbox)) == 5
    lobby.device.malformed_header, lobby.device.status, lobby.device.cut_off = False, 200, False
    assert (await lobby.collect()).new == 3000


async def test_a_malformed_record_is_skipped_logged_with_its_line_and_counted(
    lobby: Lobby, caplog: pytest.LogCaptureFixture
) -> None:
    lobby.device.add_records(10)
    lobby.device.corrupt(5)
    lobby.device.corrupt(7, "7,Print,this line is garbage")
    with caplog.at_level(logging.WARNING, logger="node.jba"):
        result = await lobby.collect()
    assert (result.fetched, result.new, result.rejected) == (10, 8, 2)
    assert "JBA lobby line 6: Color Pages 3 + B&W Pages 2 is not Pages 2 [PAGES_MISMATCH]" in (
        caplog.text
    )
    assert "JBA lobby line 8: 3 fields where the header has 15 [FIELD_COUNT]" in caplog.text
    caplog.clear()
    # Behind the cursor now, the record with a readable place is not reported again.
    again = await lobby.collect()
    assert (again.new, again.skipped, again.rejected) == (0, 9, 1)
    assert "line 6" not in caplog.text


async def test_records_go_to_the_directorys_login_and_to_the_job_the_node_printed(
    lobby: Lobby,
) -> None:
    await lobby.replica.apply_snapshot_chunk(
        SnapshotChunk(
            revision=3,
            users=[ReplicaUser("u-1", "Alice.Smith"), ReplicaUser("u-2", "bob", revision=2)],
            first=True,
            last=True,
        )
    )
    ended = datetime.now(UTC).replace(microsecond=0)
    spooled = {
        "job-old": ("alice.smith", "Q3 report.pdf", ended - timedelta(hours=2)),
        "job-recent": ("Alice.Smith", "Q3 report.pdf", ended - timedelta(minutes=10)),
        "job-after": ("Alice.Smith", "Q3 report.pdf", ended + timedelta(minutes=1)),
        "job-of-carol": ("carol", "Minutes.docx", ended - timedelta(minutes=5)),
        "job-stale": ("alice.smith", "Minutes.docx", ended - timedelta(hours=25)),
    }
    async with lobby.db.session() as session, session.begin():
        for number, (job_id, (owner, title, received)) in enumerate(spooled.items()):
            session.add(
                SpooledJob(
                    job_id=job_id,
                    number=number,
                    title=title,
                    owner_login=owner,
                    printer_id="printer-1",
                    sha256="0" * 64,
                    size=1,
                    state="completed",
                    received_at=received,
                )
            )
        session.add(
            SpooledJob(
                job_id="job-failed",
                number=9,
                title="Budget.xlsx",
                owner_login="bob",
                printer_id="printer-1",
                sha256="0" * 64,
                size=1,
                state="failed",
                received_at=ended - timedelta(minutes=3),
            )
        )
        session.add(
            LpdJob(
                job_id="lpd-job-1",
                number=1,
                queue="secure",
                owner_login="BOB",
                owner_key="bob",
                title="Budget.xlsx",
                size=1,
                sha256="0" * 64,
                state="printed",
                received_at=ended - timedelta(minutes=20),
                updated_at=ended,
            )
        )
    start = ended - timedelta(seconds=30)
    for user, job_name in (
        ("ALICE.SMITH", "Q3 report.pdf"),
        ("bob", "Budget.xlsx"),
        ("alice.smith", "Minutes.docx"),
        ("mallory", "Q3 report.pdf"),
    ):
        lobby.device.add(user=user, job_name=job_name, start=start, end=ended)
    result = await lobby.collect()
    assert (result.new, result.unknown_users, result.jobs_matched) == (4, 1, 2)
    assert [(e.user_login, e.job_id) for e in await queued(lobby.outbox)] == [
        ("Alice.Smith", "job-recent"),
        ("bob", "lpd-job-1"),
        ("Alice.Smith", ""),
        ("mallory", ""),
    ]


async def test_a_crash_between_fetch_and_commit_queues_nothing_twice(
    lobby: Lobby, monkeypatch: pytest.MonkeyPatch
) -> None:
    lobby.device.add_records(5000)
    enqueue = lobby.outbox.enqueue_usage
    calls = 0

    async def crashing(*args: Any, **kwargs: Any) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        return await enqueue(*args, **kwargs)

    monkeypatch.setattr(lobby.outbox, "enqueue_usage", crashing)
    with pytest.raises(OSError, match="disk full"):
        await lobby.collect()
    monkeypatch.undo()
    # The first slice went in with its cursor; the second rolled back with its own.
    assert len(await queued(lobby.outbox)) == 2000
    assert (await cursor_of(lobby.db, "lobby") or (0, ""))[0] == 2000
    assert (await lobby.collect()).new == 3000
    ids = [e.request_id for e in await queued(lobby.outbox)]
    assert len(ids) == len(set(ids)) == 5000


async def test_two_collectors_of_one_device_never_queue_a_record_twice(lobby: Lobby) -> None:
    lobby.device.add_records(5000)
    # Two processes' collectors: separate objects over one database.
    first, second = lobby.collector(), lobby.collector()
    outcomes = await asyncio.gather(
        first.collect(lobby.jba), second.collect(lobby.jba), return_exceptions=True
    )
    for outcome in outcomes:
        assert isinstance(outcome, CollectResult) or (
            isinstance(outcome, JbaError) and outcome.reason == "CURSOR_MOVED"
        ), outcome
    ids = [e.request_id for e in await queued(lobby.outbox)]
    if len(ids) < 5000:  # the loser stopped at its first slice; the next run completes
        await lobby.collect()
        ids = [e.request_id for e in await queued(lobby.outbox)]
    assert len(ids) == len(set(ids)) == 5000


async def test_the_collector_runs_every_interval_and_survives_a_failing_device(
    lobby: Lobby, caplog: pytest.LogCaptureFixture
) -> None:
    broken = JbaDevice("basement", lobby.device.url.replace("log.csv", "nothing.csv"))
    collector = lobby.collector(jba_devices=(broken, lobby.jba))
    lobby.device.add_records(4)
    with caplog.at_level(logging.ERROR, logger="node.jba"):
        task = asyncio.create_task(collector.run())

        async def entries_queued(count: int) -> bool:
            return len(await queued(lobby.outbox)) == count

        await eventually(lambda: entries_queued(4))
        lobby.device.add_records(2)
        await eventually(lambda: entries_queued(6), within=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failure = collector.outcomes["basement"]
    assert isinstance(failure, JbaError) and failure.reason == "HTTP_STATUS"
    assert "JBA basement:" in caplog.text and "HTTP 404" in caplog.text
    assert isinstance(collector.outcomes["lobby"], CollectResult)


# -- the acceptance test ------------------------------------------------------------------------


async def test_10000_records_collected_while_the_cloud_is_down_arrive_exactly_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "cloud-home"
    # The device takes its port first, so that nothing else can take the cloud's while it is down.
    with XeroxDevice(tmp_path / "device", user="jba-reader", password=PASSWORD) as device:
        for kind, user in itertools.islice(
            itertools.cycle([("Print", "alice"), ("Copy", "ALICE"), ("Scan", "visitor")]), 10_000
        ):
            device.add(job_type=kind, user=user)
        async with cloud_at(home) as cloud:
            port = cloud.running.port
            tenant = await cloud.make_tenant("ACME")
            await cloud.add_user(tenant, "alice")
            _, token = await Devices(cloud.rt).create_node(
                None, tenant.tenant_id, "N-1", "Site", ""
            )
            config = node_config(tmp_path, cloud, tenant.company_code, "N-1", token)
        # The cloud is stopped, its port closed.
        jba = JbaDevice("lobby", device.url)
        config = replace(
            config,
            mfp_listen="",
            jba_devices=(jba,),
            jba_ca=device.ca_path,
            jba_user="jba-reader",
            jba_password=PASSWORD,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with running_node(config) as node:
            # The node collects on its own schedule, the first round at once.
            collector = node.jba

            async def collected() -> bool:
                return "lobby" in collector.outcomes

            await eventually(collected, within=20)
            took = loop.time() - started
            result = collector.outcomes["lobby"]
            assert isinstance(result, CollectResult), result
            assert (result.fetched, result.new, result.rejected) == (10_000, 10_000, 0)
            assert took < 20, f"collecting 10 000 records took {took:.1f} s"
            ids = {e.request_id for e in await queued(node.outbox)}
            assert len(ids) == 10_000
            assert not node.link.connected.is_set()

            async with cloud_at(home, port) as cloud:

                async def all_stored() -> bool:
                    return not await node.outbox.counts() and await accounting_rows(
                        cloud, tenant.tenant_id
                    ) == (10_000, 10_000)

                await eventually(all_stored, within=40)
                again = await collector.collect(jba)
                assert (again.fetched, again.new) == (10_000, 0)
                assert await node.outbox.counts() == {}
                await asyncio.sleep(0.3)
                assert await accounting_rows(cloud, tenant.tenant_id) == (10_000, 10_000)
