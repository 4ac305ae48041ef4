import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from printfabric.v1 import directory_pb2 as _directory_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_MFP: _ClassVar[DeviceKind]
    DEVICE_KIND_NODE: _ClassVar[DeviceKind]
    DEVICE_KIND_SYNC_AGENT: _ClassVar[DeviceKind]
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_MFP: DeviceKind
DEVICE_KIND_NODE: DeviceKind
DEVICE_KIND_SYNC_AGENT: DeviceKind

class UserCredential(_message.Message):
    __slots__ = ("password", "pin", "card")
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    password: PasswordCredential
    pin: str
    card: str
    def __init__(self, password: _Optional[_Union[PasswordCredential, _Mapping]] = ..., pin: _Optional[str] = ..., card: _Optional[str] = ...) -> None: ...

class PasswordCredential(_message.Message):
    __slots__ = ("login", "password")
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    login: str
    password: str
    def __init__(self, login: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class TokenPair(_message.Message):
    __slots__ = ("access_token", "access_token_expire_time", "refresh_token", "refresh_token_expire_time")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    access_token_expire_time: _timestamp_pb2.Timestamp
    refresh_token: str
    refresh_token_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, access_token: _Optional[str] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_token: _Optional[str] = ..., refresh_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuthenticateUserRequest(_message.Message):
    __slots__ = ("company_code", "credential", "device_id", "register_card")
    COMPANY_CODE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTER_CARD_FIELD_NUMBER: _ClassVar[int]
    company_code: str
    credential: UserCredential
    device_id: str
    register_card: str
    def __init__(self, company_code: _Optional[str] = ..., credential: _Optional[_Union[UserCredential, _Mapping]] = ..., device_id: _Optional[str] = ..., register_card: _Optional[str] = ...) -> None: ...

class AuthenticateUserResponse(_message.Message):
    __slots__ = ("tokens", "user")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenPair
    user: _directory_pb2.User
    def __init__(self, tokens: _Optional[_Union[TokenPair, _Mapping]] = ..., user: _Optional[_Union[_directory_pb2.User, _Mapping]] = ...) -> None: ...

class AuthenticateDeviceRequest(_message.Message):
    __slots__ = ("company_code", "serial_number", "access_token", "kind")
    COMPANY_CODE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    company_code: str
    serial_number: str
    access_token: str
    kind: DeviceKind
    def __init__(self, company_code: _Optional[str] = ..., serial_number: _Optional[str] = ..., access_token: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ...) -> None: ...

class AuthenticateDeviceResponse(_message.Message):
    __slots__ = ("tokens", "device_id", "kind", "tenant_id")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenPair
    device_id: str
    kind: DeviceKind
    tenant_id: str
    def __init__(self, tokens: _Optional[_Union[TokenPair, _Mapping]] = ..., device_id: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class RefreshTokenRequest(_message.Message):
    __slots__ = ("refresh_token",)
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    def __init__(self, refresh_token: _Optional[str] = ...) -> None: ...

class RefreshTokenResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenPair
    def __init__(self, tokens: _Optional[_Union[TokenPair, _Mapping]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("refresh_token",)
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    def __init__(self, refresh_token: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
