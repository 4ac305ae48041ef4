import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_KIND_UNSPECIFIED: _ClassVar[UsageKind]
    USAGE_KIND_PRINT: _ClassVar[UsageKind]
    USAGE_KIND_COPY: _ClassVar[UsageKind]
    USAGE_KIND_SCAN: _ClassVar[UsageKind]
    USAGE_KIND_FAX: _ClassVar[UsageKind]
USAGE_KIND_UNSPECIFIED: UsageKind
USAGE_KIND_PRINT: UsageKind
USAGE_KIND_COPY: UsageKind
USAGE_KIND_SCAN: UsageKind
USAGE_KIND_FAX: UsageKind

class UsageEntry(_message.Message):
    __slots__ = ("entry_id", "request_id", "kind", "user_login", "document_name", "device_id", "job_id", "pages", "sheets", "color_pages", "mono_pages", "duplex", "paper_size", "occur_time", "record_time")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_LOGIN_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    SHEETS_FIELD_NUMBER: _ClassVar[int]
    COLOR_PAGES_FIELD_NUMBER: _ClassVar[int]
    MONO_PAGES_FIELD_NUMBER: _ClassVar[int]
    DUPLEX_FIELD_NUMBER: _ClassVar[int]
    PAPER_SIZE_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORD_TIME_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    request_id: str
    kind: UsageKind
    user_login: str
    document_name: str
    device_id: str
    job_id: str
    pages: int
    sheets: int
    color_pages: int
    mono_pages: int
    duplex: bool
    paper_size: str
    occur_time: _timestamp_pb2.Timestamp
    record_time: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., request_id: _Optional[str] = ..., kind: _Optional[_Union[UsageKind, str]] = ..., user_login: _Optional[str] = ..., document_name: _Optional[str] = ..., device_id: _Optional[str] = ..., job_id: _Optional[str] = ..., pages: _Optional[int] = ..., sheets: _Optional[int] = ..., color_pages: _Optional[int] = ..., mono_pages: _Optional[int] = ..., duplex: _Optional[bool] = ..., paper_size: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: UsageEntry
    def __init__(self, entry: _Optional[_Union[UsageEntry, _Mapping]] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("entry", "duplicate")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    entry: UsageEntry
    duplicate: bool
    def __init__(self, entry: _Optional[_Union[UsageEntry, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ListUsageRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "user_login", "start_time", "end_time")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_LOGIN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    user_login: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., user_login: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUsageResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[UsageEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[UsageEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SummarizeUsageRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UsageTotals(_message.Message):
    __slots__ = ("user_login", "print_pages", "copy_pages", "scan_pages", "color_pages", "sheets")
    USER_LOGIN_FIELD_NUMBER: _ClassVar[int]
    PRINT_PAGES_FIELD_NUMBER: _ClassVar[int]
    COPY_PAGES_FIELD_NUMBER: _ClassVar[int]
    SCAN_PAGES_FIELD_NUMBER: _ClassVar[int]
    COLOR_PAGES_FIELD_NUMBER: _ClassVar[int]
    SHEETS_FIELD_NUMBER: _ClassVar[int]
    user_login: str
    print_pages: int
    copy_pages: int
    scan_pages: int
    color_pages: int
    sheets: int
    def __init__(self, user_login: _Optional[str] = ..., print_pages: _Optional[int] = ..., copy_pages: _Optional[int] = ..., scan_pages: _Optional[int] = ..., color_pages: _Optional[int] = ..., sheets: _Optional[int] = ...) -> None: ...

class SummarizeUsageResponse(_message.Message):
    __slots__ = ("totals",)
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[UsageTotals]
    def __init__(self, totals: _Optional[_Iterable[_Union[UsageTotals, _Mapping]]] = ...) -> None: ...
