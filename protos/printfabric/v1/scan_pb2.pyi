import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScanDestinationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCAN_DESTINATION_KIND_UNSPECIFIED: _ClassVar[ScanDestinationKind]
    SCAN_DESTINATION_KIND_EMAIL: _ClassVar[ScanDestinationKind]
    SCAN_DESTINATION_KIND_CLOUD_STORAGE: _ClassVar[ScanDestinationKind]

class ScanState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCAN_STATE_UNSPECIFIED: _ClassVar[ScanState]
    SCAN_STATE_RECEIVED: _ClassVar[ScanState]
    SCAN_STATE_DELIVERING: _ClassVar[ScanState]
    SCAN_STATE_DELIVERED: _ClassVar[ScanState]
    SCAN_STATE_FAILED: _ClassVar[ScanState]
SCAN_DESTINATION_KIND_UNSPECIFIED: ScanDestinationKind
SCAN_DESTINATION_KIND_EMAIL: ScanDestinationKind
SCAN_DESTINATION_KIND_CLOUD_STORAGE: ScanDestinationKind
SCAN_STATE_UNSPECIFIED: ScanState
SCAN_STATE_RECEIVED: ScanState
SCAN_STATE_DELIVERING: ScanState
SCAN_STATE_DELIVERED: ScanState
SCAN_STATE_FAILED: ScanState

class ScanDestination(_message.Message):
    __slots__ = ("destination_id", "display_name", "kind", "target", "format")
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    destination_id: str
    display_name: str
    kind: ScanDestinationKind
    target: str
    format: str
    def __init__(self, destination_id: _Optional[str] = ..., display_name: _Optional[str] = ..., kind: _Optional[_Union[ScanDestinationKind, str]] = ..., target: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class ScanHeader(_message.Message):
    __slots__ = ("destination_id", "user_login", "file_name", "mime_type", "page_count", "metadata", "request_id", "size")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_LOGIN_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    destination_id: str
    user_login: str
    file_name: str
    mime_type: str
    page_count: int
    metadata: _containers.ScalarMap[str, str]
    request_id: str
    size: int
    def __init__(self, destination_id: _Optional[str] = ..., user_login: _Optional[str] = ..., file_name: _Optional[str] = ..., mime_type: _Optional[str] = ..., page_count: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class Scan(_message.Message):
    __slots__ = ("scan_id", "header", "state", "state_message", "size_bytes", "sha256", "device_id", "create_time")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    header: ScanHeader
    state: ScanState
    state_message: str
    size_bytes: int
    sha256: str
    device_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, scan_id: _Optional[str] = ..., header: _Optional[_Union[ScanHeader, _Mapping]] = ..., state: _Optional[_Union[ScanState, str]] = ..., state_message: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., device_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UploadScanRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ScanHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ScanHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadScanResponse(_message.Message):
    __slots__ = ("scan",)
    SCAN_FIELD_NUMBER: _ClassVar[int]
    scan: Scan
    def __init__(self, scan: _Optional[_Union[Scan, _Mapping]] = ...) -> None: ...

class GetScanRequest(_message.Message):
    __slots__ = ("scan_id",)
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    def __init__(self, scan_id: _Optional[str] = ...) -> None: ...

class GetScanResponse(_message.Message):
    __slots__ = ("scan",)
    SCAN_FIELD_NUMBER: _ClassVar[int]
    scan: Scan
    def __init__(self, scan: _Optional[_Union[Scan, _Mapping]] = ...) -> None: ...

class ListScansRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListScansResponse(_message.Message):
    __slots__ = ("scans", "next_page_token")
    SCANS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scans: _containers.RepeatedCompositeFieldContainer[Scan]
    next_page_token: str
    def __init__(self, scans: _Optional[_Iterable[_Union[Scan, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListScanDestinationsRequest(_message.Message):
    __slots__ = ("user_login",)
    USER_LOGIN_FIELD_NUMBER: _ClassVar[int]
    user_login: str
    def __init__(self, user_login: _Optional[str] = ...) -> None: ...

class ListScanDestinationsResponse(_message.Message):
    __slots__ = ("destinations",)
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[ScanDestination]
    def __init__(self, destinations: _Optional[_Iterable[_Union[ScanDestination, _Mapping]]] = ...) -> None: ...

class CreateScanDestinationRequest(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: ScanDestination
    def __init__(self, destination: _Optional[_Union[ScanDestination, _Mapping]] = ...) -> None: ...

class CreateScanDestinationResponse(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: ScanDestination
    def __init__(self, destination: _Optional[_Union[ScanDestination, _Mapping]] = ...) -> None: ...

class DeleteScanDestinationRequest(_message.Message):
    __slots__ = ("destination_id",)
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    destination_id: str
    def __init__(self, destination_id: _Optional[str] = ...) -> None: ...

class DeleteScanDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
