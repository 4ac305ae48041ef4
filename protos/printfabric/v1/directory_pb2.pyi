import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from printfabric.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("user_id", "login", "email", "full_name", "department", "rights", "source", "disabled", "has_password", "has_pin", "card_count", "create_time", "update_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    HAS_PIN_FIELD_NUMBER: _ClassVar[int]
    CARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    login: str
    email: str
    full_name: str
    department: str
    rights: _containers.RepeatedScalarFieldContainer[_common_pb2.AccessRight]
    source: _common_pb2.UserSource
    disabled: bool
    has_password: bool
    has_pin: bool
    card_count: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., login: _Optional[str] = ..., email: _Optional[str] = ..., full_name: _Optional[str] = ..., department: _Optional[str] = ..., rights: _Optional[_Iterable[_Union[_common_pb2.AccessRight, str]]] = ..., source: _Optional[_Union[_common_pb2.UserSource, str]] = ..., disabled: _Optional[bool] = ..., has_password: _Optional[bool] = ..., has_pin: _Optional[bool] = ..., card_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("user", "password", "pin", "cards")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    user: User
    password: str
    pin: str
    cards: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., password: _Optional[str] = ..., pin: _Optional[str] = ..., cards: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id", "login")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    login: str
    def __init__(self, user_id: _Optional[str] = ..., login: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "include_disabled")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DISABLED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    include_disabled: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_disabled: _Optional[bool] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("user", "update_mask")
    USER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    user: User
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class DisableUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class DisableUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class SetPasswordRequest(_message.Message):
    __slots__ = ("user_id", "password")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    password: str
    def __init__(self, user_id: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SetPasswordResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPinRequest(_message.Message):
    __slots__ = ("user_id", "pin")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    pin: str
    def __init__(self, user_id: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class SetPinResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddCardRequest(_message.Message):
    __slots__ = ("user_id", "card")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    card: str
    def __init__(self, user_id: _Optional[str] = ..., card: _Optional[str] = ...) -> None: ...

class AddCardResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveCardRequest(_message.Message):
    __slots__ = ("user_id", "card")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    card: str
    def __init__(self, user_id: _Optional[str] = ..., card: _Optional[str] = ...) -> None: ...

class RemoveCardResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncUsersRequest(_message.Message):
    __slots__ = ("header", "record")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    header: SyncUsersHeader
    record: SyncUserRecord
    def __init__(self, header: _Optional[_Union[SyncUsersHeader, _Mapping]] = ..., record: _Optional[_Union[SyncUserRecord, _Mapping]] = ...) -> None: ...

class SyncUsersHeader(_message.Message):
    __slots__ = ("source", "request_id", "full")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    source: _common_pb2.UserSource
    request_id: str
    full: bool
    def __init__(self, source: _Optional[_Union[_common_pb2.UserSource, str]] = ..., request_id: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class SyncUserRecord(_message.Message):
    __slots__ = ("login", "email", "full_name", "department", "pin", "clear_pin", "cards", "replace_cards", "disabled", "rights", "set_rights")
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    CLEAR_PIN_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_CARDS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    RIGHTS_FIELD_NUMBER: _ClassVar[int]
    SET_RIGHTS_FIELD_NUMBER: _ClassVar[int]
    login: str
    email: str
    full_name: str
    department: str
    pin: str
    clear_pin: bool
    cards: _containers.RepeatedScalarFieldContainer[str]
    replace_cards: bool
    disabled: bool
    rights: _containers.RepeatedScalarFieldContainer[_common_pb2.AccessRight]
    set_rights: bool
    def __init__(self, login: _Optional[str] = ..., email: _Optional[str] = ..., full_name: _Optional[str] = ..., department: _Optional[str] = ..., pin: _Optional[str] = ..., clear_pin: _Optional[bool] = ..., cards: _Optional[_Iterable[str]] = ..., replace_cards: _Optional[bool] = ..., disabled: _Optional[bool] = ..., rights: _Optional[_Iterable[_Union[_common_pb2.AccessRight, str]]] = ..., set_rights: _Optional[bool] = ...) -> None: ...

class SyncUsersResponse(_message.Message):
    __slots__ = ("created", "updated", "disabled", "unchanged", "problems", "directory_revision")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_REVISION_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    disabled: int
    unchanged: int
    problems: _containers.RepeatedCompositeFieldContainer[SyncUserProblem]
    directory_revision: int
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., disabled: _Optional[int] = ..., unchanged: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[SyncUserProblem, _Mapping]]] = ..., directory_revision: _Optional[int] = ...) -> None: ...

class SyncUserProblem(_message.Message):
    __slots__ = ("login", "reason")
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    login: str
    reason: str
    def __init__(self, login: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
