"""The IPP message model: values, attributes, attribute groups and messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from printfabric.ipp.constants import Operation, ResolutionUnit, Status, Tag


@dataclass(frozen=True)
class Resolution:
    """A resolution value: cross-feed x feed direction, in units."""

    x: int
    y: int
    units: ResolutionUnit | int = ResolutionUnit.DPI


@dataclass(frozen=True)
class RangeOfInteger:
    """An inclusive range of integers."""

    lower: int
    upper: int


@dataclass(frozen=True)
class StringWithLanguage:
    """A textWithLanguage or nameWithLanguage value."""

    text: str
    language: str


@dataclass(frozen=True)
class OutOfBand:
    """An out-of-band value (tags 0x10-0x1F): 'no-value', 'unknown', 'unsupported' and so on."""

    tag: Tag

    def __post_init__(self) -> None:
        if not Tag(self.tag).is_out_of_band:
            raise ValueError(f"tag 0x{self.tag:02X} is not an out-of-band tag")


class Collection:
    """A collection value: an ordered sequence of member attributes."""

    __slots__ = ("members",)

    def __init__(self, members: Iterable[Attribute] = ()) -> None:
        self.members: list[Attribute] = list(members)

    def get(self, name: str) -> Attribute | None:
        """The first member called name, or None."""
        for member in self.members:
            if member.name == name:
                return member
        return None

    def add(self, member: Attribute) -> Collection:
        self.members.append(member)
        return self

    def __getitem__(self, name: str) -> Attribute:
        member = self.get(name)
        if member is None:
            raise KeyError(name)
        return member

    def __contains__(self, name: object) -> bool:
        return any(member.name == name for member in self.members)

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Collection):
            return NotImplemented
        return self.members == other.members

    def __repr__(self) -> str:
        return f"Collection({self.members!r})"


Value: TypeAlias = (
    int
    | bool
    | str
    | bytes
    | datetime
    | Resolution
    | RangeOfInteger
    | StringWithLanguage
    | Collection
    | OutOfBand
)


@dataclass(eq=False)
class Attribute:
    """A named attribute with one value, or several (a 1setOf).

    Per-value tags: every value is sent with ``tag``, except that an ``OutOfBand`` value is
    always sent with its own tag, and that when ``value_tags`` is set, value i is sent with
    ``value_tags[i]`` (values past its end use ``tag``). So ``media`` holding a keyword and a
    name is ``Attribute("media", Tag.KEYWORD, ["iso_a4_210x297", "Letterhead"],
    [Tag.KEYWORD, Tag.NAME])``, or built with ``Attribute.keyword(...).add(v, Tag.NAME)``.
    ``tag`` is the tag of the first value. Two attributes are equal when their names and
    their (tag, value) pairs are equal, however the tags are spelled.
    """

    name: str
    tag: Tag
    values: list[Value]
    value_tags: list[Tag] | None = None

    def __post_init__(self) -> None:
        self.tag = Tag(self.tag)
        if self.value_tags is not None:
            if len(self.value_tags) > len(self.values):
                raise ValueError(f"{self.name}: more value_tags than values")
            self.value_tags = [Tag(t) for t in self.value_tags]
            if all(t == self.tag for _, t in self._own_tags()):
                self.value_tags = None

    @property
    def value(self) -> Value:
        """The first value."""
        return self.values[0]

    def tag_of(self, index: int) -> Tag:
        """The tag value index is sent with."""
        value = self.values[index]
        if isinstance(value, OutOfBand):
            return value.tag
        if self.value_tags is not None and index < len(self.value_tags):
            return self.value_tags[index]
        return self.tag

    def tagged(self) -> list[tuple[Tag, Value]]:
        """(tag, value) for every value."""
        return [(self.tag_of(i), value) for i, value in enumerate(self.values)]

    def add(self, value: Value, tag: Tag | None = None) -> Attribute:
        """Appends value, sent with tag (default: this attribute's tag)."""
        tag = self.tag if tag is None else Tag(tag)
        if tag != self.tag and not isinstance(value, OutOfBand) and self.value_tags is None:
            self.value_tags = [self.tag_of(i) for i in range(len(self.values))]
        if self.value_tags is not None:
            self.value_tags.extend(self.tag for _ in range(len(self.values) - len(self.value_tags)))
            self.value_tags.append(tag)
        self.values.append(value)
        return self

    def _own_tags(self) -> Iterator[tuple[int, Tag]]:
        for i, value in enumerate(self.values):
            if not isinstance(value, OutOfBand):
                yield i, self.tag_of(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attribute):
            return NotImplemented
        return self.name == other.name and self.tagged() == other.tagged()

    # Builders: Attribute.keyword("sides", "two-sided-long-edge") and so on.

    @classmethod
    def _of(cls, name: str, tag: Tag, values: tuple[Value, ...]) -> Attribute:
        if not values:
            raise ValueError(f"{name}: an attribute needs at least one value")
        return cls(name, tag, list(values))

    @classmethod
    def _strings(
        cls, name: str, plain: Tag, with_language: Tag, values: tuple[str | StringWithLanguage, ...]
    ) -> Attribute:
        if not values:
            raise ValueError(f"{name}: an attribute needs at least one value")
        tags = [with_language if isinstance(v, StringWithLanguage) else plain for v in values]
        return cls(name, tags[0], list(values), tags)

    @classmethod
    def integer(cls, name: str, *values: int) -> Attribute:
        return cls._of(name, Tag.INTEGER, values)

    @classmethod
    def enum(cls, name: str, *values: int) -> Attribute:
        return cls._of(name, Tag.ENUM, values)

    @classmethod
    def boolean(cls, name: str, *values: bool) -> Attribute:
        return cls._of(name, Tag.BOOLEAN, values)

    @classmethod
    def keyword(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.KEYWORD, values)

    @classmethod
    def text(cls, name: str, *values: str | StringWithLanguage) -> Attribute:
        """textWithoutLanguage, or textWithLanguage for a StringWithLanguage value."""
        return cls._strings(name, Tag.TEXT, Tag.TEXT_WITH_LANGUAGE, values)

    @classmethod
    def name_(cls, name: str, *values: str | StringWithLanguage) -> Attribute:
        """nameWithoutLanguage, or nameWithLanguage for a StringWithLanguage value.

        Spelled with an underscore because ``name`` is the attribute's own field.
        """
        return cls._strings(name, Tag.NAME, Tag.NAME_WITH_LANGUAGE, values)

    @classmethod
    def uri(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.URI, values)

    @classmethod
    def uri_scheme(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.URI_SCHEME, values)

    @classmethod
    def charset(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.CHARSET, values)

    @classmethod
    def natural_language(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.NATURAL_LANGUAGE, values)

    @classmethod
    def mime_type(cls, name: str, *values: str) -> Attribute:
        return cls._of(name, Tag.MIME_MEDIA_TYPE, values)

    @classmethod
    def octets(cls, name: str, *values: bytes) -> Attribute:
        return cls._of(name, Tag.OCTET_STRING, values)

    @classmethod
    def date_time(cls, name: str, *values: datetime) -> Attribute:
        return cls._of(name, Tag.DATE_TIME, values)

    @classmethod
    def resolution(cls, name: str, *values: Resolution) -> Attribute:
        return cls._of(name, Tag.RESOLUTION, values)

    @classmethod
    def range(cls, name: str, *values: RangeOfInteger) -> Attribute:
        return cls._of(name, Tag.RANGE_OF_INTEGER, values)

    @classmethod
    def collection(cls, name: str, *values: Collection) -> Attribute:
        return cls._of(name, Tag.BEG_COLLECTION, values)

    @classmethod
    def out_of_band(cls, name: str, tag: Tag) -> Attribute:
        return cls(name, Tag(tag), [OutOfBand(Tag(tag))])


@dataclass
class AttributeGroup:
    """The attributes under one group tag (operation, job, printer, ...)."""

    tag: Tag
    attributes: list[Attribute] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tag = Tag(self.tag)

    def get(self, name: str) -> Attribute | None:
        """The first attribute called name, or None."""
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None

    def add(self, attr: Attribute) -> AttributeGroup:
        self.attributes.append(attr)
        return self

    def names(self) -> list[str]:
        return [attr.name for attr in self.attributes]

    def __getitem__(self, name: str) -> Attribute:
        attr = self.get(name)
        if attr is None:
            raise KeyError(name)
        return attr

    def __contains__(self, name: object) -> bool:
        return any(attr.name == name for attr in self.attributes)

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)


@dataclass
class Message:
    """An IPP request (code is an operation-id) or response (code is a status-code)."""

    version: tuple[int, int]
    code: int
    request_id: int
    groups: list[AttributeGroup] = field(default_factory=list)

    @property
    def operation_id(self) -> Operation:
        return Operation(self.code)

    @property
    def status(self) -> Status:
        return Status(self.code)

    def group(self, tag: Tag) -> AttributeGroup | None:
        """The first group with tag, or None."""
        for group in self.groups:
            if group.tag == tag:
                return group
        return None

    def groups_of(self, tag: Tag) -> list[AttributeGroup]:
        return [group for group in self.groups if group.tag == tag]

    @property
    def operation_attributes(self) -> AttributeGroup:
        """The first operation group, or an empty one that is not part of the message."""
        group = self.group(Tag.OPERATION)
        return group if group is not None else AttributeGroup(Tag.OPERATION)

    def add_group(self, tag: Tag) -> AttributeGroup:
        group = AttributeGroup(tag)
        self.groups.append(group)
        return group


_NAME = {Tag.NAME, Tag.NAME_WITH_LANGUAGE}
_TEXT = {Tag.TEXT, Tag.TEXT_WITH_LANGUAGE}
_KEYWORD_OR_NAME = {Tag.KEYWORD} | _NAME

# Value tags accepted for the attributes found in IPP/1.1, IPP/2.0 and IPP Everywhere requests.
SYNTAX: dict[str, set[Tag]] = {
    # Operation attributes.
    "attributes-charset": {Tag.CHARSET},
    "attributes-natural-language": {Tag.NATURAL_LANGUAGE},
    "printer-uri": {Tag.URI},
    "job-uri": {Tag.URI},
    "document-uri": {Tag.URI},
    "job-id": {Tag.INTEGER},
    "job-ids": {Tag.INTEGER},
    "requesting-user-name": _NAME,
    "requesting-user-uri": {Tag.URI},
    "job-name": _NAME,
    "document-name": _NAME,
    "document-format": {Tag.MIME_MEDIA_TYPE},
    "document-natural-language": {Tag.NATURAL_LANGUAGE},
    "compression": {Tag.KEYWORD},
    "ipp-attribute-fidelity": {Tag.BOOLEAN},
    "last-document": {Tag.BOOLEAN},
    "requested-attributes": {Tag.KEYWORD},
    "which-jobs": {Tag.KEYWORD},
    "my-jobs": {Tag.BOOLEAN},
    "limit": {Tag.INTEGER},
    "first-index": {Tag.INTEGER},
    "document-number": {Tag.INTEGER},
    "identify-actions": {Tag.KEYWORD},
    "message": _TEXT,
    "job-k-octets": {Tag.INTEGER},
    "job-impressions": {Tag.INTEGER},
    "job-media-sheets": {Tag.INTEGER},
    "job-password": {Tag.OCTET_STRING},
    "job-password-encryption": _KEYWORD_OR_NAME,
    # Job template attributes.
    "copies": {Tag.INTEGER},
    "sides": {Tag.KEYWORD},
    "media": _KEYWORD_OR_NAME,
    "media-col": {Tag.BEG_COLLECTION},
    "job-hold-until": _KEYWORD_OR_NAME,
    "job-priority": {Tag.INTEGER},
    "job-sheets": _KEYWORD_OR_NAME,
    "multiple-document-handling": {Tag.KEYWORD},
    "number-up": {Tag.INTEGER},
    "orientation-requested": {Tag.ENUM},
    "page-ranges": {Tag.RANGE_OF_INTEGER},
    "print-quality": {Tag.ENUM},
    "printer-resolution": {Tag.RESOLUTION},
    "print-color-mode": {Tag.KEYWORD},
    "print-content-optimize": {Tag.KEYWORD},
    "print-rendering-intent": {Tag.KEYWORD},
    "print-scaling": {Tag.KEYWORD},
    "finishings": {Tag.ENUM},
    "output-bin": _KEYWORD_OR_NAME,
    "job-account-id": _NAME,
    "job-accounting-user-id": _NAME,
}

# The attributes above that are a 1setOf; the others take exactly one value.
MULTI_VALUED: frozenset[str] = frozenset(
    {"job-ids", "requested-attributes", "identify-actions", "page-ranges", "finishings"}
)

# Operation attributes that address the target or frame the request: never out-of-band.
_NO_OUT_OF_BAND = frozenset(
    {
        "attributes-charset",
        "attributes-natural-language",
        "printer-uri",
        "job-uri",
        "document-uri",
        "job-id",
        "job-ids",
        "requested-attributes",
        "document-format",
    }
)


def check_syntax(attr: Attribute) -> bool:
    """False when a registered attribute has a value of the wrong syntax or too many values.

    Unknown names pass. Out-of-band values ('no-value', 'unknown', ...) pass except for the
    attributes that frame a request, such as printer-uri or attributes-charset.
    """
    accepted = SYNTAX.get(attr.name)
    if accepted is None:
        return True
    if len(attr.values) > 1 and attr.name not in MULTI_VALUED:
        return False
    for tag, _ in attr.tagged():
        if tag in accepted:
            continue
        if tag.is_out_of_band and attr.name not in _NO_OUT_OF_BAND:
            continue
        return False
    return True
