"""The JSON bodies of the MFP API (pydantic models; they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_Strict = ConfigDict(extra="forbid", str_strip_whitespace=False)
Short = Field(min_length=1, max_length=256)


class DeviceLogin(BaseModel):
    """An MFP's own credential, as issued when the device was registered in the cloud."""

    model_config = _Strict
    company_code: str = Field(
        min_length=1, max_length=64, description="Company Identification Code"
    )
    serial_number: str = Field(min_length=1, max_length=128)
    access_token: str = Field(min_length=1, max_length=512)


class PrinterInfo(BaseModel):
    printer_id: str
    name: str
    display_name: str
    location: str
    color: bool
    duplex: bool


class DeviceSession(BaseModel):
    device_token: str = Field(description="Send as 'Authorization: Bearer <device_token>'")
    expires_at: datetime
    device_id: str
    tenant_display_name: str
    printer: PrinterInfo | None


class DeviceConfig(BaseModel):
    device_id: str
    display_name: str
    tenant_display_name: str
    printer: PrinterInfo | None
    settings: dict[str, str]


class UserLogin(BaseModel):
    """How the user identified at the panel: login + password, PIN, or card."""

    model_config = _Strict
    method: Literal["password", "pin", "card"]
    login: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=1024)
    pin: str | None = Field(default=None, max_length=64)
    card: str | None = Field(
        default=None,
        max_length=128,
        description="As the reader delivers it: decimal, or hex with or without 0x; "
        "leading zeros do not count",
    )


class CardRegistration(BaseModel):
    """Binds an unknown card to the user who proves who they are with login and password."""

    model_config = _Strict
    card: str = Field(min_length=1, max_length=128)
    login: str = Short
    password: str = Field(min_length=1, max_length=1024)


class UserInfo(BaseModel):
    login: str
    email: str
    full_name: str
    department: str
    rights: list[str] = Field(description="print, copy, scan, color, fax, admin ...")


class UserSession(BaseModel):
    user_token: str = Field(description="Send as 'X-User-Token' on calls made for this user")
    expires_at: datetime
    user: UserInfo


class JobInfo(BaseModel):
    job_id: str
    number: int
    title: str
    state: str
    state_message: str
    owner: str
    queue: str
    format: str
    pages: int
    size: int
    created_at: datetime | None


class JobList(BaseModel):
    jobs: list[JobInfo]


class ReleaseRequest(BaseModel):
    model_config = _Strict
    job_ids: list[str] = Field(default_factory=list, max_length=500)
    all: bool = Field(default=False, description="Release every held job of the user")


class ScanDestination(BaseModel):
    destination_id: str
    display_name: str
    kind: str
    target: str
    format: str


class ScanProfiles(BaseModel):
    destinations: list[ScanDestination]


class ScanDescription(BaseModel):
    """The description file that comes with a scanned document."""

    model_config = _Strict
    login: str = Short
    file_name: str = Field(min_length=1, max_length=255)
    mime_type: str = Field(default="application/pdf", max_length=128)
    page_count: int = Field(default=0, ge=0, le=100_000)
    size: int = Field(ge=1, description="The document's size in bytes; checked on arrival")
    request_id: str = Field(min_length=1, max_length=128, description="Idempotency key")
    destination_id: str = Field(default="", max_length=128)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=64)


class ScanReceipt(BaseModel):
    scan_id: str
    state: str
    size: int
    sha256: str


class AccountingRecord(BaseModel):
    """One thing the device did, idempotent by the device-supplied id."""

    model_config = _Strict
    id: str = Field(min_length=1, max_length=128, description="Device-supplied unique id")
    login: str = Short
    kind: Literal["print", "copy", "scan", "fax"]
    document_name: str = Field(default="", max_length=512)
    job_id: str = Field(default="", max_length=64)
    pages: int = Field(default=0, ge=0, le=1_000_000)
    sheets: int = Field(default=0, ge=0, le=1_000_000)
    color_pages: int = Field(default=0, ge=0, le=1_000_000)
    mono_pages: int = Field(default=0, ge=0, le=1_000_000)
    duplex: bool = False
    paper_size: str = Field(default="", max_length=64)
    occurred_at: datetime


class AccountingReceipt(BaseModel):
    entry_id: str
    duplicate: bool


class ErrorDetail(BaseModel):
    code: str
    message: str
    retry_after: int | None = None
    self_registration: bool | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
