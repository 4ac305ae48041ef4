from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class DocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PDF: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_POSTSCRIPT: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PCL: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_XPS: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PWG_RASTER: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_URF: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_OCTET_STREAM: _ClassVar[DocumentFormat]

class AccessRight(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_RIGHT_UNSPECIFIED: _ClassVar[AccessRight]
    ACCESS_RIGHT_PRINT: _ClassVar[AccessRight]
    ACCESS_RIGHT_COPY: _ClassVar[AccessRight]
    ACCESS_RIGHT_SCAN: _ClassVar[AccessRight]
    ACCESS_RIGHT_COLOR: _ClassVar[AccessRight]
    ACCESS_RIGHT_FAX: _ClassVar[AccessRight]
    ACCESS_RIGHT_ADMIN: _ClassVar[AccessRight]

class UserSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_SOURCE_UNSPECIFIED: _ClassVar[UserSource]
    USER_SOURCE_LOCAL: _ClassVar[UserSource]
    USER_SOURCE_LDAP: _ClassVar[UserSource]
    USER_SOURCE_AZURE_AD: _ClassVar[UserSource]
DOCUMENT_FORMAT_UNSPECIFIED: DocumentFormat
DOCUMENT_FORMAT_PDF: DocumentFormat
DOCUMENT_FORMAT_POSTSCRIPT: DocumentFormat
DOCUMENT_FORMAT_PCL: DocumentFormat
DOCUMENT_FORMAT_XPS: DocumentFormat
DOCUMENT_FORMAT_PWG_RASTER: DocumentFormat
DOCUMENT_FORMAT_URF: DocumentFormat
DOCUMENT_FORMAT_OCTET_STREAM: DocumentFormat
ACCESS_RIGHT_UNSPECIFIED: AccessRight
ACCESS_RIGHT_PRINT: AccessRight
ACCESS_RIGHT_COPY: AccessRight
ACCESS_RIGHT_SCAN: AccessRight
ACCESS_RIGHT_COLOR: AccessRight
ACCESS_RIGHT_FAX: AccessRight
ACCESS_RIGHT_ADMIN: AccessRight
USER_SOURCE_UNSPECIFIED: UserSource
USER_SOURCE_LOCAL: UserSource
USER_SOURCE_LDAP: UserSource
USER_SOURCE_AZURE_AD: UserSource
