"""The node's private SQLite schema: directory replica, snapshot staging, outbox, spooled jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """SQLite keeps no time zone: store naive UTC, hand back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class _UserColumns:
    """A replicated user; the live replica and the snapshot being built share these columns."""

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(256))
    # Case-folded login: logins are case-insensitive, as in the cloud. Not unique: a rename
    # swap inside one delta passes through a moment where two rows hold the same login.
    login_key: Mapped[str] = mapped_column(String(256), index=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    full_name: Mapped[str] = mapped_column(String(256), default="")
    department: Mapped[str] = mapped_column(String(256), default="")
    # Comma-separated AccessRight values.
    rights: Mapped[str] = mapped_column(String(64), default="")
    disabled: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    pin_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class _CardColumns:
    card_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)


class ReplicaUserRow(_UserColumns, Base):
    __tablename__ = "replica_users"


class ReplicaCardRow(_CardColumns, Base):
    __tablename__ = "replica_cards"


class StagedUserRow(_UserColumns, Base):
    """A user of a snapshot still arriving; swapped into replica_users when its last chunk lands."""

    __tablename__ = "staged_users"


class StagedCardRow(_CardColumns, Base):
    __tablename__ = "staged_cards"


class ReplicaMeta(Base):
    """One row (id 1): what the replica is a copy of, and the snapshot being built, if any."""

    __tablename__ = "replica_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    # The tenant's key of the PIN/card hashes (arrives with the first snapshot chunk).
    credential_key: Mapped[bytes] = mapped_column(LargeBinary(64), default=b"")
    tenant_id: Mapped[str] = mapped_column(String(64), default="")
    node_id: Mapped[str] = mapped_column(String(64), default="")
    # The company code the replica belongs to: a node moved to another tenant starts over.
    company_code: Mapped[str] = mapped_column(String(64), default="")
    staging_revision: Mapped[int | None] = mapped_column(BigInteger)
    staging_credential_key: Mapped[bytes] = mapped_column(LargeBinary(64), default=b"")


class OutboxRecord(Base):
    """A message for the cloud, kept until the cloud acknowledges it."""

    __tablename__ = "outbox"
    # AUTOINCREMENT: ids are never reused, so "everything after the last id sent" stays true
    # after the newest record is acknowledged and deleted.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # 'accounting' (an AccountingBatch) or 'job_status' (a JobStatusReport).
    kind: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The serialized protobuf body, sent as is.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SpooledJob(Base):
    """A released job this node holds (or held): its data file and how far delivery got."""

    __tablename__ = "spooled_jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(512), default="")
    owner_login: Mapped[str] = mapped_column(String(256), default="")
    printer_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    # Empty once the data is no longer kept (delivered, failed, canceled).
    path: Mapped[str] = mapped_column(String(1024), default="")
    # 'waiting' (spooled, not delivered), 'completed', 'failed', 'canceled'.
    state: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NodeQueue(Base):
    """A print queue of the tenant, as the cloud's welcome last named them: the queues the
    node's LPD server takes jobs for (kept, so it still knows them while the cloud is away)."""

    __tablename__ = "node_queues"

    # Case-folded name: LPD queue names are matched case-insensitively.
    name_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    printer_id: Mapped[str] = mapped_column(String(64))


class LpdJob(Base):
    """A job a workstation sent to the node over LPD: held on the node's disk until released at
    a device, and registered with (then uploaded to) the cloud under the same id."""

    __tablename__ = "lpd_jobs"

    # 32 hex digits, made by the node; the cloud's job has the same id.
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The number the node answered in queue listings (the LPD job number).
    number: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(256))
    owner_login: Mapped[str] = mapped_column(String(256), index=True)
    # Case-folded login (the replica's login_key), for listing a user's jobs.
    owner_key: Mapped[str] = mapped_column(String(256), index=True)
    title: Mapped[str] = mapped_column(String(512), default="")
    # The sending host (control file H line) and its address.
    origin: Mapped[str] = mapped_column(String(512), default="")
    # DocumentFormat (0: unknown; the cloud detects it from the bytes).
    document_format: Mapped[int] = mapped_column(Integer, default=0)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # The data file in the spool folder; empty once the data is gone.
    path: Mapped[str] = mapped_column(String(1024), default="")
    # 'held' (waiting for release), 'parked' (owner unknown to the replica yet), 'printing',
    # 'printed', 'failed', 'deleted', 'expired'.
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_message: Mapped[str] = mapped_column(String(512), default="")
    # The cloud has the data (releasable anywhere in the tenant).
    uploaded: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class JbaCursor(Base):
    """How far the JBA collector got in one device's accounting log: records up to here are in
    the outbox (written in the same transaction as the records they cover)."""

    __tablename__ = "jba_cursors"

    # The device's name in PF_NODE_JBA_DEVICES.
    device: Mapped[str] = mapped_column(String(256), primary_key=True)
    # The highest Job Index taken, and the start time of that record (a device that resets
    # its index is recognised by an older start time).
    last_index: Mapped[int] = mapped_column(BigInteger, default=0)
    last_key: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DevicePrinter(Base):
    """The printer an MFP prints on, as the cloud last said (so the node releases LPD jobs to
    it while the cloud is away)."""

    __tablename__ = "device_printers"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    printer_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(256))
    device_uri: Mapped[str] = mapped_column(String(1024))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
