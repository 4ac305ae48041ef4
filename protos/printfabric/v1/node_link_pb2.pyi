import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from printfabric.v1 import accounting_pb2 as _accounting_pb2
from printfabric.v1 import common_pb2 as _common_pb2
from printfabric.v1 import spool_pb2 as _spool_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("seq", "ack", "hello", "heartbeat", "directory_applied", "remote_auth_request", "job_status", "accounting_batch", "job_spooled")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_APPLIED_FIELD_NUMBER: _ClassVar[int]
    REMOTE_AUTH_REQUEST_FIELD_NUMBER: _ClassVar[int]
    JOB_STATUS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTING_BATCH_FIELD_NUMBER: _ClassVar[int]
    JOB_SPOOLED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    ack: int
    hello: NodeHello
    heartbeat: Heartbeat
    directory_applied: DirectoryApplied
    remote_auth_request: RemoteAuthRequest
    job_status: JobStatusReport
    accounting_batch: AccountingBatch
    job_spooled: NodeJobSpooled
    def __init__(self, seq: _Optional[int] = ..., ack: _Optional[int] = ..., hello: _Optional[_Union[NodeHello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., directory_applied: _Optional[_Union[DirectoryApplied, _Mapping]] = ..., remote_auth_request: _Optional[_Union[RemoteAuthRequest, _Mapping]] = ..., job_status: _Optional[_Union[JobStatusReport, _Mapping]] = ..., accounting_batch: _Optional[_Union[AccountingBatch, _Mapping]] = ..., job_spooled: _Optional[_Union[NodeJobSpooled, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("seq", "ack", "welcome", "heartbeat", "directory_snapshot", "directory_delta", "remote_auth_response", "job_released", "batch_ack", "job_canceled", "config")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_DELTA_FIELD_NUMBER: _ClassVar[int]
    REMOTE_AUTH_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    JOB_RELEASED_FIELD_NUMBER: _ClassVar[int]
    BATCH_ACK_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCELED_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    seq: int
    ack: int
    welcome: CloudWelcome
    heartbeat: Heartbeat
    directory_snapshot: DirectorySnapshotChunk
    directory_delta: DirectoryDelta
    remote_auth_response: RemoteAuthResponse
    job_released: JobReleased
    batch_ack: BatchAck
    job_canceled: JobCanceled
    config: NodeConfig
    def __init__(self, seq: _Optional[int] = ..., ack: _Optional[int] = ..., welcome: _Optional[_Union[CloudWelcome, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., directory_snapshot: _Optional[_Union[DirectorySnapshotChunk, _Mapping]] = ..., directory_delta: _Optional[_Union[DirectoryDelta, _Mapping]] = ..., remote_auth_response: _Optional[_Union[RemoteAuthResponse, _Mapping]] = ..., job_released: _Optional[_Union[JobReleased, _Mapping]] = ..., batch_ack: _Optional[_Union[BatchAck, _Mapping]] = ..., job_canceled: _Optional[_Union[JobCanceled, _Mapping]] = ..., config: _Optional[_Union[NodeConfig, _Mapping]] = ...) -> None: ...

class NodeHello(_message.Message):
    __slots__ = ("company_code", "serial_number", "access_token", "software_version", "directory_revision", "session_id", "lpd_uri")
    COMPANY_CODE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_REVISION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LPD_URI_FIELD_NUMBER: _ClassVar[int]
    company_code: str
    serial_number: str
    access_token: str
    software_version: str
    directory_revision: int
    session_id: str
    lpd_uri: str
    def __init__(self, company_code: _Optional[str] = ..., serial_number: _Optional[str] = ..., access_token: _Optional[str] = ..., software_version: _Optional[str] = ..., directory_revision: _Optional[int] = ..., session_id: _Optional[str] = ..., lpd_uri: _Optional[str] = ...) -> None: ...

class CloudWelcome(_message.Message):
    __slots__ = ("node_id", "tenant_id", "config", "directory_revision", "resume_after_seq")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_REVISION_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    tenant_id: str
    config: NodeConfig
    directory_revision: int
    resume_after_seq: int
    def __init__(self, node_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., config: _Optional[_Union[NodeConfig, _Mapping]] = ..., directory_revision: _Optional[int] = ..., resume_after_seq: _Optional[int] = ...) -> None: ...

class NodeConfig(_message.Message):
    __slots__ = ("display_name", "heartbeat_seconds", "printers", "settings", "queues")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRINTERS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    heartbeat_seconds: int
    printers: _containers.RepeatedCompositeFieldContainer[NodePrinter]
    settings: _containers.ScalarMap[str, str]
    queues: _containers.RepeatedCompositeFieldContainer[NodeQueue]
    def __init__(self, display_name: _Optional[str] = ..., heartbeat_seconds: _Optional[int] = ..., printers: _Optional[_Iterable[_Union[NodePrinter, _Mapping]]] = ..., settings: _Optional[_Mapping[str, str]] = ..., queues: _Optional[_Iterable[_Union[NodeQueue, _Mapping]]] = ...) -> None: ...

class NodeQueue(_message.Message):
    __slots__ = ("printer_id", "name")
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    printer_id: str
    name: str
    def __init__(self, printer_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class NodePrinter(_message.Message):
    __slots__ = ("printer_id", "name", "device_uri")
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_URI_FIELD_NUMBER: _ClassVar[int]
    printer_id: str
    name: str
    device_uri: str
    def __init__(self, printer_id: _Optional[str] = ..., name: _Optional[str] = ..., device_uri: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("send_time",)
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DirectoryApplied(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class ReplicaUser(_message.Message):
    __slots__ = ("user_id", "login", "email", "full_name", "department", "rights", "disabled", "password_hash", "pin_hash", "card_hashes", "revision")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    PIN_HASH_FIELD_NUMBER: _ClassVar[int]
    CARD_HASHES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    login: str
    email: str
    full_name: str
    department: str
    rights: _containers.RepeatedScalarFieldContainer[_common_pb2.AccessRight]
    disabled: bool
    password_hash: str
    pin_hash: str
    card_hashes: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    def __init__(self, user_id: _Optional[str] = ..., login: _Optional[str] = ..., email: _Optional[str] = ..., full_name: _Optional[str] = ..., department: _Optional[str] = ..., rights: _Optional[_Iterable[_Union[_common_pb2.AccessRight, str]]] = ..., disabled: _Optional[bool] = ..., password_hash: _Optional[str] = ..., pin_hash: _Optional[str] = ..., card_hashes: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ...) -> None: ...

class DirectorySnapshotChunk(_message.Message):
    __slots__ = ("revision", "users", "first", "last", "credential_key")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_KEY_FIELD_NUMBER: _ClassVar[int]
    revision: int
    users: _containers.RepeatedCompositeFieldContainer[ReplicaUser]
    first: bool
    last: bool
    credential_key: bytes
    def __init__(self, revision: _Optional[int] = ..., users: _Optional[_Iterable[_Union[ReplicaUser, _Mapping]]] = ..., first: _Optional[bool] = ..., last: _Optional[bool] = ..., credential_key: _Optional[bytes] = ...) -> None: ...

class DirectoryDelta(_message.Message):
    __slots__ = ("from_revision", "to_revision", "upserts", "deleted_user_ids")
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    UPSERTS_FIELD_NUMBER: _ClassVar[int]
    DELETED_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    from_revision: int
    to_revision: int
    upserts: _containers.RepeatedCompositeFieldContainer[ReplicaUser]
    deleted_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, from_revision: _Optional[int] = ..., to_revision: _Optional[int] = ..., upserts: _Optional[_Iterable[_Union[ReplicaUser, _Mapping]]] = ..., deleted_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoteAuthRequest(_message.Message):
    __slots__ = ("request_id", "device_id", "card", "pin", "login", "password", "deadline")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    device_id: str
    card: str
    pin: str
    login: str
    password: str
    deadline: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., device_id: _Optional[str] = ..., card: _Optional[str] = ..., pin: _Optional[str] = ..., login: _Optional[str] = ..., password: _Optional[str] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RemoteAuthResponse(_message.Message):
    __slots__ = ("request_id", "accepted", "user", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    accepted: bool
    user: ReplicaUser
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., user: _Optional[_Union[ReplicaUser, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class JobReleased(_message.Message):
    __slots__ = ("job", "printer_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    PRINTER_ID_FIELD_NUMBER: _ClassVar[int]
    job: _spool_pb2.Job
    printer_id: str
    def __init__(self, job: _Optional[_Union[_spool_pb2.Job, _Mapping]] = ..., printer_id: _Optional[str] = ...) -> None: ...

class JobCanceled(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatusReport(_message.Message):
    __slots__ = ("job_id", "state", "state_message", "report_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPORT_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: _spool_pb2.JobState
    state_message: str
    report_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[_spool_pb2.JobState, str]] = ..., state_message: _Optional[str] = ..., report_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccountingBatch(_message.Message):
    __slots__ = ("batch_id", "entries")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    entries: _containers.RepeatedCompositeFieldContainer[_accounting_pb2.UsageEntry]
    def __init__(self, batch_id: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[_accounting_pb2.UsageEntry, _Mapping]]] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("batch_ids",)
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class NodeJobSpooled(_message.Message):
    __slots__ = ("node_job_id", "header", "size_bytes", "sha256", "page_count", "format")
    NODE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    node_job_id: str
    header: _spool_pb2.JobHeader
    size_bytes: int
    sha256: str
    page_count: int
    format: _common_pb2.DocumentFormat
    def __init__(self, node_job_id: _Optional[str] = ..., header: _Optional[_Union[_spool_pb2.JobHeader, _Mapping]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., page_count: _Optional[int] = ..., format: _Optional[_Union[_common_pb2.DocumentFormat, str]] = ...) -> None: ...
