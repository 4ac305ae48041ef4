"""The durable outbox: messages for the cloud, kept in the node's database until acknowledged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from printfabric.v1 import accounting_pb2, node_link_pb2, spool_pb2
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from node.db import NodeDatabase
from node.models import OutboxRecord

ACCOUNTING = "accounting"
JOB_STATUS = "job_status"
JOB_SPOOLED = "job_spooled"
# NodeLink carries at most 500 usage entries per AccountingBatch.
MAX_BATCH = 500


@dataclass(frozen=True)
class PendingRecord:
    id: int
    # ACCOUNTING (payload: an AccountingBatch), JOB_STATUS (a JobStatusReport) or JOB_SPOOLED
    # (a NodeJobSpooled; batch_id is the job's id).
    kind: str
    batch_id: str
    payload: bytes
    created_at: datetime

    def request(self) -> node_link_pb2.ConnectRequest:
        """The NodeLink message carrying this record (seq and ack are set by the sender)."""
        if self.kind == ACCOUNTING:
            return node_link_pb2.ConnectRequest(
                accounting_batch=node_link_pb2.AccountingBatch.FromString(self.payload)
            )
        if self.kind == JOB_SPOOLED:
            return node_link_pb2.ConnectRequest(
                job_spooled=node_link_pb2.NodeJobSpooled.FromString(self.payload)
            )
        return node_link_pb2.ConnectRequest(
            job_status=node_link_pb2.JobStatusReport.FromString(self.payload)
        )


class Outbox:
    """Records are written in one transaction each and deleted only when the cloud acks them.

    The payload is the serialized protobuf body: what goes up after a restart is byte for
    byte what was recorded, whatever version of the code reads it back.
    """

    def __init__(
        self, db: NodeDatabase, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.db = db
        self.clock = clock
        # Set when this process adds a record, so the link sends it without waiting for a poll.
        self.changed = asyncio.Event()

    async def enqueue_usage(
        self,
        entries: Sequence[accounting_pb2.UsageEntry],
        session: AsyncSession | None = None,
    ) -> list[str]:
        """Queues usage entries in batches of at most 500; returns the new batch ids.

        With a session, the records join the caller's transaction (the JBA collector commits
        them with its cursor, so a record is queued exactly once)."""
        batches = [
            node_link_pb2.AccountingBatch(
                batch_id=uuid.uuid4().hex, entries=entries[i : i + MAX_BATCH]
            )
            for i in range(0, len(entries), MAX_BATCH)
        ]
        await self._add([(ACCOUNTING, b.batch_id, b.SerializeToString()) for b in batches], session)
        return [b.batch_id for b in batches]

    async def enqueue_job_status(
        self,
        job_id: str,
        state: spool_pb2.JobState,
        message: str,
        session: AsyncSession | None = None,
    ) -> str:
        """Queues a job status report; the cloud treats a resend of the same state as done.

        With a session, the record joins the caller's transaction (a job's new state and its
        report are committed together or not at all).
        """
        stamp = Timestamp()
        stamp.FromDatetime(self.clock())
        report = node_link_pb2.JobStatusReport(
            job_id=job_id, state=state, state_message=message, report_time=stamp
        )
        batch_id = uuid.uuid4().hex
        await self._add([(JOB_STATUS, batch_id, report.SerializeToString())], session)
        return batch_id

    async def enqueue_job_spooled(
        self, spooled: node_link_pb2.NodeJobSpooled, session: AsyncSession
    ) -> None:
        """Queues the registration of a job received over LPD, in the caller's transaction (the
        job and its registration are stored together); its batch id is the job's id."""
        await self._add([(JOB_SPOOLED, spooled.node_job_id, spooled.SerializeToString())], session)

    async def has_batch(self, batch_id: str) -> bool:
        """Whether a record is still waiting for the cloud's acknowledgement."""
        async with self.db.session() as session, session.begin():
            found = await session.scalar(
                select(OutboxRecord.id).where(OutboxRecord.batch_id == batch_id).limit(1)
            )
            return found is not None

    async def _add(
        self, records: list[tuple[str, str, bytes]], session: AsyncSession | None = None
    ) -> None:
        if not records:
            return
        now = self.clock()
        rows = [
            OutboxRecord(kind=kind, batch_id=batch_id, payload=payload, created_at=now)
            for kind, batch_id, payload in records
        ]
        if session is not None:
            session.add_all(rows)
        else:
            async with self.db.session() as own, own.begin():
                own.add_all(rows)
        # Before the caller's commit, at worst the link finds nothing and the next poll does.
        self.changed.set()

    async def pending(self, after_id: int = 0, limit: int = 100) -> list[PendingRecord]:
        """Records not yet acknowledged, oldest first, with an id above after_id."""
        async with self.db.session() as session, session.begin():
            rows = (
                await session.scalars(
                    select(OutboxRecord)
                    .where(OutboxRecord.id > after_id)
                    .order_by(OutboxRecord.id)
                    .limit(limit)
                )
            ).all()
            return [PendingRecord(r.id, r.kind, r.batch_id, r.payload, r.created_at) for r in rows]

    async def delete(self, ids: Iterable[int]) -> int:
        """Drops acknowledged records by id; returns how many were still there."""
        ids = list(ids)
        if not ids:
            return 0
        async with self.db.session() as session, session.begin():
            result = await session.execute(delete(OutboxRecord).where(OutboxRecord.id.in_(ids)))
            return int(getattr(result, "rowcount", 0) or 0)

    async def delete_batches(self, batch_ids: Iterable[str]) -> int:
        """Drops records the cloud named in a BatchAck."""
        batch_ids = [b for b in batch_ids if b]
        if not batch_ids:
            return 0
        async with self.db.session() as session, session.begin():
            result = await session.execute(
                delete(OutboxRecord).where(OutboxRecord.batch_id.in_(batch_ids))
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def counts(self) -> dict[str, int]:
        """Pending records by kind."""
        async with self.db.session() as session, session.begin():
            rows = await session.execute(
                select(OutboxRecord.kind, func.count()).group_by(OutboxRecord.kind)
            )
            return {kind: int(n) for kind, n in rows.tuples()}


class SentLog:
    """Which outbox records went up with which seq on the current connection.

    The cloud's `ack` is cumulative: everything sent with a seq at or below it is committed.
    A new connection starts a new SentLog, since seqs start again at 1.
    """

    def __init__(self) -> None:
        self._records: dict[int, int] = {}

    def sent(self, seq: int, record_id: int) -> None:
        self._records[seq] = record_id

    def acknowledged(self, ack: int) -> list[int]:
        """Forgets and returns the record ids sent with a seq up to ack."""
        done = [seq for seq in self._records if seq <= ack]
        return [self._records.pop(seq) for seq in done]

    def __len__(self) -> int:
        return len(self._records)
