"""Domain enumerations; values equal the v1 proto enum numbers so conversion is a cast."""

from __future__ import annotations

from enum import IntEnum


class DocumentFormat(IntEnum):
    UNSPECIFIED = 0
    PDF = 1
    POSTSCRIPT = 2
    PCL = 3
    XPS = 4
    PWG_RASTER = 5
    URF = 6
    OCTET_STREAM = 7

    @property
    def mime_type(self) -> str:
        return _MIME[self]


_MIME = {
    DocumentFormat.UNSPECIFIED: "application/octet-stream",
    DocumentFormat.PDF: "application/pdf",
    DocumentFormat.POSTSCRIPT: "application/postscript",
    DocumentFormat.PCL: "application/vnd.hp-PCL",
    DocumentFormat.XPS: "application/oxps",
    DocumentFormat.PWG_RASTER: "image/pwg-raster",
    DocumentFormat.URF: "image/urf",
    DocumentFormat.OCTET_STREAM: "application/octet-stream",
}


class AccessRight(IntEnum):
    PRINT = 1
    COPY = 2
    SCAN = 3
    COLOR = 4
    FAX = 5
    ADMIN = 6


DEFAULT_RIGHTS = frozenset(
    {AccessRight.PRINT, AccessRight.COPY, AccessRight.SCAN, AccessRight.COLOR}
)


class UserSource(IntEnum):
    UNSPECIFIED = 0
    LOCAL = 1
    LDAP = 2
    AZURE_AD = 3


class QueueModel(IntEnum):
    SECURE = 1
    DIRECT = 2


class DeviceKind(IntEnum):
    MFP = 1
    NODE = 2
    SYNC_AGENT = 3


class JobState(IntEnum):
    HELD = 1
    RELEASED = 2
    PRINTING = 3
    COMPLETED = 4
    FAILED = 5
    CANCELED = 6
    EXPIRED = 7
    INCOMING = 8

    @property
    def is_final(self) -> bool:
        return self in {JobState.COMPLETED, JobState.FAILED, JobState.CANCELED, JobState.EXPIRED}


class PrincipalKind(IntEnum):
    """Who is calling: a user, one of the device kinds, or the platform operator."""

    USER = 10
    MFP = DeviceKind.MFP
    NODE = DeviceKind.NODE
    SYNC_AGENT = DeviceKind.SYNC_AGENT
    OPERATOR = 20
