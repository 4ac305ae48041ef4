"""The server side of IPP: a request as the operations see it, the checks every request passes
first (RFC 8011 section 4.1, in its order), and the answers.

The order of the checks matters: the conformance suites send requests that are wrong in two ways
and expect the status of the first check. The gateway's printer objects and the workstation's
local printer (`printfabric serve-printer`) both answer with these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from printfabric.ipp.constants import Status, Tag
from printfabric.ipp.model import Attribute, AttributeGroup, Message, StringWithLanguage

SUPPORTED_MAJORS = (1, 2)
WHICH_JOBS = ("completed", "not-completed")


class IppFailure(Exception):
    """Ends an operation with an IPP status (and, for bad attributes, the unsupported group)."""

    def __init__(
        self, status: Status, message: str, unsupported: list[Attribute] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.unsupported = unsupported or []


def not_supported(
    name: str,
    *values: str,
    status: Status = Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
) -> IppFailure:
    """The refusal of keyword values (the first is named), listed as unsupported."""
    return IppFailure(
        status, f"{name} {values[0]} is not supported", [Attribute.keyword(name, *values)]
    )


@dataclass(frozen=True)
class PrinterAddress:
    """How the client reached a printer (its URIs follow the Host it used)."""

    printer_uri: str
    more_info: str
    # https://host:port as the client reached it.
    web_base: str


@dataclass
class OperationRequest:
    """One request: its message and the document that followed the attributes, if any.

    Servers subclass it with what they know of the client (where it reached them, who it is).
    """

    message: Message
    # What followed the attributes: the document, if any.
    body: AsyncIterator[bytes]
    # Attributes the answer lists as unsupported (ignored or substituted).
    unsupported: list[Attribute] = field(default_factory=list, kw_only=True)

    @property
    def op(self) -> AttributeGroup:
        group = self.message.group(Tag.OPERATION)
        assert group is not None
        return group

    def value(self, name: str, default: object = None) -> object:
        """The first value of an operation attribute (the text of a string with language)."""
        attr = self.op.get(name)
        if attr is None or not attr.values:
            return default
        value = attr.values[0]
        return value.text if isinstance(value, StringWithLanguage) else value

    def text(self, name: str, default: str = "") -> str:
        return str(self.value(name, default))

    def keywords(self, name: str) -> list[str] | None:
        """Every value of an operation attribute as text (None: the attribute is absent)."""
        attr = self.op.get(name)
        return None if attr is None else [str(v) for v in attr.values]

    # What the operations read, checked --------------------------------------------------------

    def job_number(self) -> int:
        """The number of the job the request names by job-id, or else by job-uri."""
        job_id = self.op.get("job-id")
        if job_id is not None:
            if job_id.tag != Tag.INTEGER or len(job_id.values) != 1:
                raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "job-id must be one integer")
            return int(job_id.values[0])  # type: ignore[arg-type]
        job_uri = self.op.get("job-uri")
        if job_uri is not None and job_uri.tag == Tag.URI and job_uri.values:
            tail = str(job_uri.values[0]).rstrip("/").rpartition("/")[2]
            if tail.isdigit():
                return int(tail)
            raise IppFailure(Status.CLIENT_ERROR_NOT_FOUND, f"{job_uri.values[0]!s} is not a job")
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "job-id or job-uri is missing")

    def last_document(self) -> bool:
        """last-document of a Send-Document (it must be there)."""
        last = self.op.get("last-document")
        if last is None or last.tag != Tag.BOOLEAN or len(last.values) != 1:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "last-document is missing")
        return last.values[0] is True

    def which_jobs(self) -> str:
        """which-jobs of a Get-Jobs: completed or not-completed (the default)."""
        which = self.text("which-jobs", "not-completed")
        if which not in WHICH_JOBS:
            raise not_supported("which-jobs", which)
        return which

    def limit(self) -> int:
        """limit of a Get-Jobs (default 1000)."""
        limit = self.value("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "limit must be a positive integer")
        return limit

    def job_ids(self, open_jobs: Iterable[int]) -> set[int] | None:
        """job-ids of a Cancel-My-Jobs (None: all of one's open jobs); each must be one of them."""
        ids = self.op.get("job-ids")
        if ids is None:
            return None
        wanted = {int(v) for v in ids.values if isinstance(v, int)}
        missing = wanted - set(open_jobs)
        if missing:
            raise IppFailure(
                Status.CLIENT_ERROR_NOT_POSSIBLE,
                f"job {min(missing)} is not one of your open jobs",
                [Attribute.integer("job-ids", *sorted(missing))],
            )
        return wanted

    def check_identify_actions(self) -> None:
        """identify-actions of an Identify-Printer: display (the default) is the one there is."""
        actions = self.keywords("identify-actions") or ["display"]
        bad = [a for a in actions if a != "display"]
        if bad:
            raise not_supported("identify-actions", *bad)


def response(
    request: Message | None, status: Status, message: str = "", version: tuple[int, int] = (1, 1)
) -> Message:
    """A response with the operation group every IPP response starts with."""
    reply = Message(
        version=version, code=int(status), request_id=request.request_id if request else 0
    )
    group = reply.add_group(Tag.OPERATION)
    group.add(Attribute.charset("attributes-charset", "utf-8"))
    group.add(Attribute.natural_language("attributes-natural-language", "en"))
    if message:
        group.add(Attribute.text("status-message", message[:255]))
    return reply


def check_envelope(message: Message) -> None:
    """Version, request-id, attributes-charset then -natural-language, and a target URI."""
    if message.version[0] not in SUPPORTED_MAJORS:
        raise IppFailure(
            Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
            f"IPP/{message.version[0]}.{message.version[1]} is not supported; use 1.1 or 2.0",
        )
    if message.request_id <= 0:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "request-id must be 1 or more")
    group = message.groups[0] if message.groups else None
    if group is None or group.tag != Tag.OPERATION or not group.attributes:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "the operation attributes are missing")
    names = [a.name for a in group.attributes]
    if names[:2] != ["attributes-charset", "attributes-natural-language"]:
        raise IppFailure(
            Status.CLIENT_ERROR_BAD_REQUEST,
            "attributes-charset and then attributes-natural-language must come first",
        )
    if len(set(names)) != len(names):
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "an operation attribute is repeated")
    charset = group.attributes[0]
    if charset.tag != Tag.CHARSET or len(charset.values) != 1:
        raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "attributes-charset must be one charset")
    if str(charset.values[0]).lower() not in ("utf-8", "us-ascii"):
        raise IppFailure(
            Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
            f"charset {charset.values[0]!s} is not supported; use utf-8",
            [charset],
        )
    language = group.attributes[1]
    if language.tag != Tag.NATURAL_LANGUAGE or len(language.values) != 1:
        raise IppFailure(
            Status.CLIENT_ERROR_BAD_REQUEST, "attributes-natural-language must be one language"
        )
    uri = group.get("printer-uri")
    if uri is None or uri.tag != Tag.URI or len(uri.values) != 1:
        job_uri = group.get("job-uri")
        if job_uri is None or job_uri.tag != Tag.URI:
            raise IppFailure(Status.CLIENT_ERROR_BAD_REQUEST, "printer-uri is missing")
