"""The node's outbox: batches of usage entries and job reports, kept until the cloud acks them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import accounting_pb2, node_link_pb2, spool_pb2

from node.db import NodeDatabase
from node.outbox import ACCOUNTING, JOB_STATUS, Outbox, SentLog

ROOT = Path(__file__).resolve().parents[1]


def entries(count: int, prefix: str = "jba") -> list[accounting_pb2.UsageEntry]:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(2024, 5, 1, 9, 30, tzinfo=UTC))
    return [
        accounting_pb2.UsageEntry(
            request_id=f"{prefix}-{i}",
            kind=accounting_pb2.USAGE_KIND_PRINT,
            user_login="alice",
            pages=2,
            occur_time=stamp,
        )
        for i in range(count)
    ]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[NodeDatabase]:
    database = await NodeDatabase.open(tmp_path / "node.db")
    yield database
    await database.close()


async def test_usage_entries_go_in_batches_of_at_most_500_in_order(db: NodeDatabase) -> None:
    outbox = Outbox(db)
    batch_ids = await outbox.enqueue_usage(entries(1201))
    assert len(batch_ids) == len(set(batch_ids)) == 3

    pending = await outbox.pending()
    assert [r.kind for r in pending] == [ACCOUNTING] * 3
    assert [r.batch_id for r in pending] == batch_ids
    assert [r.id for r in pending] == sorted(r.id for r in pending)
    bodies = [r.request().accounting_batch for r in pending]
    assert [len(b.entries) for b in bodies] == [500, 500, 201]
    assert [b.batch_id for b in bodies] == batch_ids
    assert [e.request_id for b in bodies for e in b.entries] == [f"jba-{i}" for i in range(1201)]
    assert await outbox.pending(after_id=pending[1].id) == [pending[2]]
    assert await outbox.counts() == {ACCOUNTING: 3}


async def test_a_cumulative_ack_deletes_what_was_sent_up_to_its_seq(db: NodeDatabase) -> None:
    outbox = Outbox(db)
    await outbox.enqueue_usage(entries(1, "a"))
    await outbox.enqueue_job_status("job-1", spool_pb2.JOB_STATE_COMPLETED, "Delivered")
    await outbox.enqueue_usage(entries(1, "c"))
    first, second, third = await outbox.pending()

    sent = SentLog()
    # Heartbeats and other messages take the seqs in between.
    sent.sent(2, first.id)
    sent.sent(3, second.id)
    sent.sent(6, third.id)
    assert await outbox.delete(sent.acknowledged(4)) == 2
    assert await outbox.pending() == [third]
    assert sent.acknowledged(5) == []
    assert len(sent) == 1
    assert await outbox.delete(sent.acknowledged(6)) == 1
    assert await outbox.pending() == []


async def test_a_batch_ack_deletes_the_named_batches_only(db: NodeDatabase) -> None:
    outbox = Outbox(db)
    first, second = await outbox.enqueue_usage(entries(600))
    assert await outbox.delete_batches([second, "not-a-batch", ""]) == 1
    assert [r.batch_id for r in await outbox.pending()] == [first]
    # A second ack for the same batch (a resend acknowledged twice) is harmless.
    assert await outbox.delete_batches([second]) == 0


async def test_job_status_reports_carry_the_state_and_time(db: NodeDatabase) -> None:
    when = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    outbox = Outbox(db, clock=lambda: when)
    await outbox.enqueue_job_status("job-7", spool_pb2.JOB_STATE_FAILED, "checksum mismatch")
    (record,) = await outbox.pending()
    assert record.kind == JOB_STATUS
    report = record.request().job_status
    assert (report.job_id, report.state, report.state_message) == (
        "job-7",
        spool_pb2.JOB_STATE_FAILED,
        "checksum mismatch",
    )
    assert report.report_time.ToDatetime(tzinfo=UTC) == when


async def test_records_survive_a_restart_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db = await NodeDatabase.open(path)
    outbox = Outbox(db)
    await outbox.enqueue_usage(entries(3))
    await outbox.enqueue_job_status("job-1", spool_pb2.JOB_STATE_PRINTING, "Waiting")
    before = await outbox.pending()
    await db.close()

    db = await NodeDatabase.open(path)
    try:
        outbox = Outbox(db)
        after = await outbox.pending()
        assert after == before
        assert node_link_pb2.AccountingBatch.FromString(after[0].payload).entries == entries(3)

        # The newest record acknowledged and gone: the next one still gets a higher id, so
        # a link that sent "everything after id N" cannot miss it.
        await outbox.delete(r.id for r in after)
        await outbox.enqueue_usage(entries(1, "later"))
        (later,) = await outbox.pending()
        assert later.id > after[-1].id
    finally:
        await db.close()


def _cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PF_NODE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


async def test_enqueue_usage_appends_to_the_outbox_of_a_node_in_use(tmp_path: Path) -> None:
    home = tmp_path / "node"
    db = await NodeDatabase.open(home / "node.db")
    try:
        outbox = Outbox(db)
        await outbox.enqueue_usage(entries(1, "own"))
        lines = [
            {
                "request_id": f"jba-{i}",
                "kind": "copy",
                "user_login": "bob",
                "document_name": "Quarterly.pdf",
                "pages": 4,
                "sheets": 2,
                "color_pages": 1,
                "mono_pages": 3,
                "duplex": True,
                "paper_size": "iso_a4_210x297mm",
                "occur_time": "2024-05-01T10:15:00+02:00",
            }
            for i in range(2)
        ]
        jsonl = tmp_path / "usage.jsonl"
        jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
        done = _cli(home, "enqueue-usage", str(jsonl))
        assert done.returncode == 0, done.stderr
        assert "queued 2 usage entries in 1 batches" in done.stdout

        own, added = await outbox.pending()
        assert own.request().accounting_batch.entries[0].request_id == "own-0"
        (first, _) = added.request().accounting_batch.entries
        assert first.kind == accounting_pb2.USAGE_KIND_COPY
        assert (first.pages, first.sheets, first.color_pages, first.mono_pages) == (4, 2, 1, 3)
        assert first.duplex and first.paper_size == "iso_a4_210x297mm"
        assert first.occur_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, 8, 15, tzinfo=UTC)

        # One bad line refuses the whole file: nothing half-queued.
        good = {"request_id": "x1", "kind": "PRINT", "user_login": "a", "occur_time": "2024-05-01"}
        bad = json.dumps(good) + "\n" + json.dumps({"request_id": "x2", "kind": "STAPLE"}) + "\n"
        refused = _cli(home, "enqueue-usage", "-", stdin=bad)
        assert refused.returncode == 2
        assert "line 2: kind must be one of PRINT, COPY, SCAN, FAX" in refused.stderr
        assert len(await outbox.pending()) == 2

        status = _cli(home, "status", "--json")
        assert json.loads(status.stdout)["outbox"] == {"total": 2, "accounting": 2}
    finally:
        await db.close()
