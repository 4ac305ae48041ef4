import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from printfabric.v1 import auth_pb2 as _auth_pb2
from printfabric.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueueModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_MODEL_UNSPECIFIED: _ClassVar[QueueModel]
    QUEUE_MODEL_SECURE: _ClassVar[QueueModel]
    QUEUE_MODEL_DIRECT: _ClassVar[QueueModel]
QUEUE_MODEL_UNSPECIFIED: QueueModel
QUEUE_MODEL_SECURE: QueueModel
QUEUE_MODEL_DIRECT: QueueModel

class Printer(_message.Message):
    __slots__ = ("printer_id", "name", "display_name", "location", "model", "device_uri", "node_id", "formats", "color", "duplex", "create_time")
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_URI_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    DUPLEX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    printer_id: str
    name: str
    display_name: str
    location: str
    model: QueueModel
    device_uri: str
    node_id: str
    formats: _containers.RepeatedScalarFieldContainer[_common_pb2.DocumentFormat]
    color: bool
    duplex: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, printer_id: _Optional[str] = ..., name: _Optional[str] = ..., display_name: _Optional[str] = ..., location: _Optional[str] = ..., model: _Optional[_Union[QueueModel, str]] = ..., device_uri: _Optional[str] = ..., node_id: _Optional[str] = ..., formats: _Optional[_Iterable[_Union[_common_pb2.DocumentFormat, str]]] = ..., color: _Optional[bool] = ..., duplex: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UserPrinter(_message.Message):
    __slots__ = ("printer", "submit_uris")
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_URIS_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    submit_uris: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ..., submit_uris: _Optional[_Iterable[str]] = ...) -> None: ...

class CreatePrinterRequest(_message.Message):
    __slots__ = ("printer",)
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ...) -> None: ...

class CreatePrinterResponse(_message.Message):
    __slots__ = ("printer",)
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ...) -> None: ...

class GetPrinterRequest(_message.Message):
    __slots__ = ("printer_id", "name")
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    printer_id: str
    name: str
    def __init__(self, printer_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetPrinterResponse(_message.Message):
    __slots__ = ("printer",)
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ...) -> None: ...

class ListPrintersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPrintersResponse(_message.Message):
    __slots__ = ("printers", "next_page_token")
    PRINTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    printers: _containers.RepeatedCompositeFieldContainer[Printer]
    next_page_token: str
    def __init__(self, printers: _Optional[_Iterable[_Union[Printer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdatePrinterRequest(_message.Message):
    __slots__ = ("printer", "update_mask")
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdatePrinterResponse(_message.Message):
    __slots__ = ("printer",)
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ...) -> None: ...

class DeletePrinterRequest(_message.Message):
    __slots__ = ("printer_id",)
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    printer_id: str
    def __init__(self, printer_id: _Optional[str] = ...) -> None: ...

class DeletePrinterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribePrinterRequest(_message.Message):
    __slots__ = ("company_code", "name")
    COMPANY_CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    company_code: str
    name: str
    def __init__(self, company_code: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DescribePrinterResponse(_message.Message):
    __slots__ = ("printer", "queued_job_count")
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    QUEUED_JOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    printer: Printer
    queued_job_count: int
    def __init__(self, printer: _Optional[_Union[Printer, _Mapping]] = ..., queued_job_count: _Optional[int] = ...) -> None: ...

class ListUserPrintersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUserPrintersResponse(_message.Message):
    __slots__ = ("printers",)
    PRINTERS_FIELD_NUMBER: _ClassVar[int]
    printers: _containers.RepeatedCompositeFieldContainer[UserPrinter]
    def __init__(self, printers: _Optional[_Iterable[_Union[UserPrinter, _Mapping]]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("device_id", "kind", "serial_number", "display_name", "location", "printer_id", "node_id", "revoked", "create_time", "last_seen_time")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    kind: _auth_pb2.DeviceKind
    serial_number: str
    display_name: str
    location: str
    printer_id: str
    node_id: str
    revoked: bool
    create_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    def __init__(self, device_id: _Optional[str] = ..., kind: _Optional[_Union[_auth_pb2.DeviceKind, str]] = ..., serial_number: _Optional[str] = ..., display_name: _Optional[str] = ..., location: _Optional[str] = ..., printer_id: _Optional[str] = ..., node_id: _Optional[str] = ..., revoked: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateDeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class CreateDeviceResponse(_message.Message):
    __slots__ = ("device", "access_token")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device: Device
    access_token: str
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., access_token: _Optional[str] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices", "next_page_token")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    next_page_token: str
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteDeviceRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class DeleteDeviceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateDeviceTokenRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...

class RotateDeviceTokenResponse(_message.Message):
    __slots__ = ("access_token",)
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    def __init__(self, access_token: _Optional[str] = ...) -> None: ...

class GetDeviceConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDeviceConfigResponse(_message.Message):
    __slots__ = ("device", "printer", "tenant_display_name", "settings")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PRINTER_FIELD_NUMBER: _ClassVar[int]
    TENANT_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    device: Device
    printer: Printer
    tenant_display_name: str
    settings: _containers.ScalarMap[str, str]
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., printer: _Optional[_Union[Printer, _Mapping]] = ..., tenant_display_name: _Optional[str] = ..., settings: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("node_id", "serial_number", "display_name", "location", "revoked", "online", "directory_revision", "software_version", "create_time", "last_seen_time", "lpd_uri")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_REVISION_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LPD_URI_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    serial_number: str
    display_name: str
    location: str
    revoked: bool
    online: bool
    directory_revision: int
    software_version: str
    create_time: _timestamp_pb2.Timestamp
    last_seen_time: _timestamp_pb2.Timestamp
    lpd_uri: str
    def __init__(self, node_id: _Optional[str] = ..., serial_number: _Optional[str] = ..., display_name: _Optional[str] = ..., location: _Optional[str] = ..., revoked: _Optional[bool] = ..., online: _Optional[bool] = ..., directory_revision: _Optional[int] = ..., software_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lpd_uri: _Optional[str] = ...) -> None: ...

class CreateNodeRequest(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class CreateNodeResponse(_message.Message):
    __slots__ = ("node", "access_token")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    node: Node
    access_token: str
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ..., access_token: _Optional[str] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes", "next_page_token")
    NODES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    next_page_token: str
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class DeleteNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateNodeTokenRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class RotateNodeTokenResponse(_message.Message):
    __slots__ = ("access_token",)
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    def __init__(self, access_token: _Optional[str] = ...) -> None: ...
