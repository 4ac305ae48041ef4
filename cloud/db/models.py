"""Typed SQLAlchemy 2.0 models; every tenant-scoped table carries tenant_id."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


ID = String(32)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    company_code: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    job_retention_seconds: Mapped[int] = mapped_column(Integer)
    # Bumped on every directory change; node replicas catch up from it.
    directory_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    # Source of the small per-tenant job numbers (IPP job-id, LPD job number).
    job_counter: Mapped[int] = mapped_column(Integer, default=0)
    # Key of the PIN/card hashes; shared with the tenant's nodes over the TLS link only.
    credential_key: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "login_key", name="uq_users_tenant_login"),
        UniqueConstraint("tenant_id", "pin_hash", name="uq_users_tenant_pin"),
        Index("ix_users_tenant_revision", "tenant_id", "revision"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    login: Mapped[str] = mapped_column(String(256))
    # Case-folded login: logins are case-insensitive as in Active Directory.
    login_key: Mapped[str] = mapped_column(String(256))
    email: Mapped[str] = mapped_column(String(320), default="")
    full_name: Mapped[str] = mapped_column(String(256), default="")
    department: Mapped[str] = mapped_column(String(256), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    pin_hash: Mapped[str | None] = mapped_column(String(64))
    # Comma-separated AccessRight values.
    rights: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[int] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Card(Base):
    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("tenant_id", "card_hash", name="uq_cards_tenant_hash"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    card_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("tenant_id", "serial_number", name="uq_nodes_serial"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    serial_number: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    directory_revision: Mapped[int] = mapped_column(BigInteger, default=0)
    software_version: Mapped[str] = mapped_column(String(64), default="")
    # Where workstations reach the node's LPD server (lpr://host[:port]) as its last hello
    # announced it; "" for none.
    lpd_uri: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Printer(Base):
    __tablename__ = "printers"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_printers_tenant_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[int] = mapped_column(Integer)
    device_uri: Mapped[str] = mapped_column(String(1024), default="")
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id"))
    # Comma-separated DocumentFormat values; empty: all formats.
    formats: Mapped[str] = mapped_column(String(64), default="")
    color: Mapped[bool] = mapped_column(Boolean, default=True)
    duplex: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Device(Base):
    """An MFP device or a sync agent: a non-human caller with a revocable access token."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "serial_number", name="uq_devices_serial"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[int] = mapped_column(Integer)
    serial_number: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    printer_id: Mapped[str | None] = mapped_column(ForeignKey("printers.id"))
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id"))
    token_hash: Mapped[str] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Session(Base):
    """A login session: the refresh token's hash; revoking it refuses its access tokens too."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # Null for platform operator sessions.
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    principal_kind: Mapped[int] = mapped_column(Integer)
    principal_id: Mapped[str] = mapped_column(String(32), index=True)
    refresh_hash: Mapped[str] = mapped_column(String(64))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number", name="uq_jobs_tenant_number"),
        UniqueConstraint("tenant_id", "owner_user_id", "request_id", name="uq_jobs_request"),
        Index("ix_jobs_tenant_owner_state", "tenant_id", "owner_user_id", "state"),
        Index("ix_jobs_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    number: Mapped[int] = mapped_column(Integer)
    printer_id: Mapped[str] = mapped_column(ForeignKey("printers.id"))
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(512), default="")
    format: Mapped[int] = mapped_column(Integer)
    # JSON of JobOptions.
    options: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[int] = mapped_column(Integer)
    state_message: Mapped[str] = mapped_column(String(512), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(256), default="")
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Null once the data is gone (expired or purged after completion).
    blob_key: Mapped[str | None] = mapped_column(String(256))
    release_printer_id: Mapped[str | None] = mapped_column(ForeignKey("printers.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Held: when it expires. Final: when its data is purged.
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Upload(Base):
    """A pending direct-to-storage upload (CreateUploadUrl), turned into a job by CommitUpload."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    printer_id: Mapped[str] = mapped_column(ForeignKey("printers.id"))
    # JSON of the JobHeader fields.
    header: Mapped[str] = mapped_column(Text)
    blob_key: Mapped[str] = mapped_column(String(256))
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AccountingEntry(Base):
    __tablename__ = "accounting_entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "request_id", name="uq_accounting_request"),
        Index("ix_accounting_tenant_user_time", "tenant_id", "user_login", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    request_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[int] = mapped_column(Integer)
    user_login: Mapped[str] = mapped_column(String(256))
    document_name: Mapped[str] = mapped_column(String(512), default="")
    device_id: Mapped[str | None] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(32))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    sheets: Mapped[int] = mapped_column(Integer, default=0)
    color_pages: Mapped[int] = mapped_column(Integer, default=0)
    mono_pages: Mapped[int] = mapped_column(Integer, default=0)
    duplex: Mapped[bool] = mapped_column(Boolean, default=False)
    paper_size: Mapped[str] = mapped_column(String(64), default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Scan(Base):
    """A scanned document received from a device (or a user), kept in the blob store."""

    __tablename__ = "scans"
    __table_args__ = (
        UniqueConstraint("tenant_id", "owner_user_id", "request_id", name="uq_scans_request"),
        Index("ix_scans_tenant_owner_time", "tenant_id", "owner_user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The MFP that sent it; null when a user uploaded it themselves.
    device_id: Mapped[str | None] = mapped_column(String(32))
    destination_id: Mapped[str] = mapped_column(String(64), default="")
    file_name: Mapped[str] = mapped_column(String(512), default="")
    mime_type: Mapped[str] = mapped_column(String(128), default="")
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    # JSON object of the description file's free metadata.
    details: Mapped[str] = mapped_column(Text, default="{}")
    request_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[int] = mapped_column(Integer)
    state_message: Mapped[str] = mapped_column(String(512), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ScanDestination(Base):
    """A tenant-wide place scans may go (besides each user's "Email to me")."""

    __tablename__ = "scan_destinations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[int] = mapped_column(Integer)
    # Email address or storage folder.
    target: Mapped[str] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(128), default="application/pdf")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SyncRun(Base):
    """A directory sync run already applied, so a retried run is answered, not re-applied."""

    __tablename__ = "sync_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "request_id", name="uq_sync_runs_request"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    request_id: Mapped[str] = mapped_column(String(128))
    # JSON of the summary returned.
    summary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_tenant_time", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_kind: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class AzureAdConnection(Base):
    """A tenant's Azure AD (Entra ID) sync: where users are read, how they map, when, and the
    state between rounds (the delta link, the last result, the lease of the running replica)."""

    __tablename__ = "azure_ad_connections"
    __table_args__ = (Index("ix_azure_ad_due", "enabled", "next_run_at"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    azure_tenant_id: Mapped[str] = mapped_column(String(128))
    client_id: Mapped[str] = mapped_column(String(128))
    # Sealed (AES-GCM) with the cloud's connector key; never stored in clear.
    client_secret: Mapped[bytes] = mapped_column(LargeBinary(2048))
    authority_host: Mapped[str] = mapped_column(String(300))
    graph_url: Mapped[str] = mapped_column(String(300))
    # PEM file of the CA that issued the authority's and Graph's certificates; "" for the
    # system's trust store.
    ca_file: Mapped[str] = mapped_column(String(1024), default="")
    login_attribute: Mapped[str] = mapped_column(String(200))
    pin_attribute: Mapped[str] = mapped_column(String(200), default="")
    card_attribute: Mapped[str] = mapped_column(String(200), default="")
    interval_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by every change of the settings: a round that started under older settings does
    # not store its state (its delta link carries the old $select).
    generation: Mapped[int] = mapped_column(Integer, default=1)
    # Where the next delta round starts; "" for a full round.
    delta_link: Mapped[str] = mapped_column(Text, default="")
    # Rounds applied under this generation (part of each round's idempotency key).
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The replica running a round now, and until when the others leave the tenant alone.
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # JSON: counts, problems and the error of the last round.
    last_result: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AzureAdUser(Base):
    """One Azure AD user as the rounds so far have read it: delta rounds name removed users by
    object id only and carry only the properties that changed, so the last-known properties and
    the login they were applied under are kept."""

    __tablename__ = "azure_ad_users"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The login the user was applied under; "" when it was not (no login, a duplicate).
    login: Mapped[str] = mapped_column(String(256), default="")
    # JSON object of the selected Graph properties.
    properties: Mapped[str] = mapped_column(Text)
