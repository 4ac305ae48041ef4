"""IPP/2.x message codec (RFC 8010, RFC 8011) and a small async IPP client.

The server side is in submodules: `server` (requests, envelope checks, answers),
`printer_object` (the operations), `endpoint` (HTTP), `everywhere` (the attributes),
`job_template`, `compression` and `icons`.
"""

from printfabric.ipp.client import IppClient, IppHttpError, new_request
from printfabric.ipp.codec import (
    IncompleteMessage,
    IppError,
    Limits,
    MessageParser,
    decode,
    encode,
    read_message,
)
from printfabric.ipp.constants import (
    JobState,
    Operation,
    PrinterState,
    ResolutionUnit,
    Status,
    Tag,
)
from printfabric.ipp.model import (
    MULTI_VALUED,
    SYNTAX,
    Attribute,
    AttributeGroup,
    Collection,
    Message,
    OutOfBand,
    RangeOfInteger,
    Resolution,
    StringWithLanguage,
    Value,
    check_syntax,
)

__all__ = [
    "MULTI_VALUED",
    "SYNTAX",
    "Attribute",
    "AttributeGroup",
    "Collection",
    "IncompleteMessage",
    "IppClient",
    "IppError",
    "IppHttpError",
    "JobState",
    "Limits",
    "Message",
    "MessageParser",
    "Operation",
    "OutOfBand",
    "PrinterState",
    "RangeOfInteger",
    "Resolution",
    "ResolutionUnit",
    "Status",
    "StringWithLanguage",
    "Tag",
    "Value",
    "check_syntax",
    "decode",
    "encode",
    "new_request",
    "read_message",
]
