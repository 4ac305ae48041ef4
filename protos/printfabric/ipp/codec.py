"""The IPP wire encoding (RFC 8010): encode, decode and a sans-IO incremental parser."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from printfabric.ipp.constants import ResolutionUnit, Status, Tag
from printfabric.ipp.model import (
    Attribute,
    AttributeGroup,
    Collection,
    Message,
    OutOfBand,
    RangeOfInteger,
    Resolution,
    StringWithLanguage,
    Value,
)

_HEADER = struct.Struct(">BBHi")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_RESOLUTION = struct.Struct(">iib")
_RANGE = struct.Struct(">ii")
_DATE = struct.Struct(">HBBBBBBcBB")

_ASCII_TAGS = frozenset(
    {
        Tag.KEYWORD,
        Tag.URI,
        Tag.URI_SCHEME,
        Tag.CHARSET,
        Tag.NATURAL_LANGUAGE,
        Tag.MIME_MEDIA_TYPE,
        Tag.MEMBER_ATTR_NAME,
    }
)
_UTF8_TAGS = frozenset({Tag.TEXT, Tag.NAME})
_LANGUAGE_TAGS = frozenset({Tag.TEXT_WITH_LANGUAGE, Tag.NAME_WITH_LANGUAGE})
_FIXED_SIZE: dict[int, int] = {
    Tag.INTEGER: 4,
    Tag.ENUM: 4,
    Tag.BOOLEAN: 1,
    Tag.DATE_TIME: 11,
    Tag.RESOLUTION: 9,
    Tag.RANGE_OF_INTEGER: 8,
}
_INT32 = (-(2**31), 2**31 - 1)
_ENCODE_DEPTH = 64  # far beyond any real collection; stops a collection that contains itself


@dataclass(frozen=True)
class Limits:
    """What a decoder accepts before it answers an error instead of buffering more."""

    max_header_bytes: int = 256 * 1024  # everything before the document data
    max_attributes: int = 2048  # values (additional ones and collection members too) and groups
    max_values_per_attribute: int = 1024
    max_name_length: int = 255
    max_value_length: int = 32767
    max_depth: int = 8  # collections nested in collections


class IppError(ValueError):
    """A message that cannot be decoded; status is the IPP status to answer with."""

    def __init__(self, status: Status, message: str, offset: int | None = None) -> None:
        text = message if offset is None else f"offset {offset}: {message}"
        super().__init__(text)
        self.status = status
        self.message = text
        self.offset = offset


class IncompleteMessage(IppError):
    """The data ended before the end-of-attributes tag."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(Status.CLIENT_ERROR_BAD_REQUEST, message, offset)


def _bad(offset: int, message: str) -> IppError:
    return IppError(Status.CLIENT_ERROR_BAD_REQUEST, message, offset)


# Encoding.


def encode(message: Message) -> bytes:
    """The wire form of message, up to and including the end-of-attributes tag.

    Raises ValueError for a model the wire cannot carry (a value of the wrong type for its
    tag, an integer outside 32 bits, a naive datetime, a name or value over 65535 octets).
    """
    major, minor = message.version
    if not (0 <= major <= 0xFF and 0 <= minor <= 0xFF):
        raise ValueError(f"version {message.version} does not fit two octets")
    if not 0 <= message.code <= 0xFFFF:
        raise ValueError(f"operation-id/status-code {message.code} does not fit 16 bits")
    _check_int32(message.request_id, "request-id")
    out = bytearray(_HEADER.pack(major, minor, message.code, message.request_id))
    for group in message.groups:
        tag = Tag(group.tag)
        if not tag.is_delimiter or tag in (Tag.END, 0x00):
            raise ValueError(f"0x{tag:02X} is not a group tag")
        out.append(tag)
        for attr in group.attributes:
            if not attr.name:
                raise ValueError("an attribute needs a name")
            _encode_attribute(out, _ascii_bytes(attr.name, "attribute name"), attr, 0)
    out.append(Tag.END)
    return bytes(out)


def _encode_attribute(out: bytearray, name: bytes, attr: Attribute, depth: int) -> None:
    if not attr.values:
        raise ValueError(f"{attr.name}: an attribute needs at least one value")
    for i, (tag, value) in enumerate(attr.tagged()):
        item_name = name if i == 0 else b""
        if tag != Tag.BEG_COLLECTION:
            _item(out, tag, item_name, _payload(attr.name, tag, value))
            continue
        if not isinstance(value, Collection):
            raise ValueError(f"{attr.name}: a collection value must be a Collection")
        if depth >= _ENCODE_DEPTH:
            raise ValueError(f"{attr.name}: collections nested more than {_ENCODE_DEPTH} deep")
        _item(out, Tag.BEG_COLLECTION, item_name, b"")
        for member in value:
            if not member.name:
                raise ValueError(f"{attr.name}: a collection member needs a name")
            _item(out, Tag.MEMBER_ATTR_NAME, b"", _ascii_bytes(member.name, "member name"))
            _encode_attribute(out, b"", member, depth + 1)
        _item(out, Tag.END_COLLECTION, b"", b"")


def _item(out: bytearray, tag: int, name: bytes, payload: bytes) -> None:
    if tag > 0xFF:  # only unknown tags get here: carry them in an extension value
        payload = _U32.pack(tag) + payload
        tag = Tag.EXTENSION
    if len(name) > 0xFFFF or len(payload) > 0xFFFF:
        raise ValueError(f"name or value of tag 0x{tag:02X} is over 65535 octets")
    out.append(tag)
    out += _U16.pack(len(name))
    out += name
    out += _U16.pack(len(payload))
    out += payload


def _payload(name: str, tag: Tag, value: Value) -> bytes:
    def wrong(expected: str) -> ValueError:
        return ValueError(f"{name}: a {tag.name} value must be {expected}, not {value!r}")

    if tag.is_delimiter or tag in (Tag.EXTENSION, Tag.END_COLLECTION, Tag.MEMBER_ATTR_NAME):
        raise ValueError(f"{name}: 0x{tag:02X} is not a value tag for an attribute")
    if tag.is_out_of_band:
        if not isinstance(value, OutOfBand) or value.tag != tag:
            raise wrong(f"OutOfBand({tag.name})")
        return b""
    if isinstance(value, OutOfBand):
        raise wrong("of that tag, not out-of-band")
    if tag in (Tag.INTEGER, Tag.ENUM):
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong("an int")
        return _I32.pack(_check_int32(value, name))
    if tag == Tag.BOOLEAN:
        if not isinstance(value, bool):
            raise wrong("a bool")
        return b"\x01" if value else b"\x00"
    if tag == Tag.DATE_TIME:
        if not isinstance(value, datetime):
            raise wrong("a datetime")
        return _encode_date(name, value)
    if tag == Tag.RESOLUTION:
        if not isinstance(value, Resolution):
            raise wrong("a Resolution")
        if not -128 <= value.units <= 127:
            raise wrong("a Resolution with units in -128..127")
        return _RESOLUTION.pack(
            _check_int32(value.x, name), _check_int32(value.y, name), value.units
        )
    if tag == Tag.RANGE_OF_INTEGER:
        if not isinstance(value, RangeOfInteger):
            raise wrong("a RangeOfInteger")
        return _RANGE.pack(_check_int32(value.lower, name), _check_int32(value.upper, name))
    if tag in _LANGUAGE_TAGS:
        if not isinstance(value, StringWithLanguage):
            raise wrong("a StringWithLanguage")
        language = _ascii_bytes(value.language, f"{name} language")
        text = value.text.encode("utf-8")
        if len(language) > 0xFFFF or len(text) > 0xFFFF:
            raise wrong("under 65536 octets")
        return _U16.pack(len(language)) + language + _U16.pack(len(text)) + text
    if tag in _UTF8_TAGS:
        if not isinstance(value, str):
            raise wrong("a str")
        return value.encode("utf-8")
    if tag in _ASCII_TAGS:
        if not isinstance(value, str):
            raise wrong("a str")
        return _ascii_bytes(value, name)
    if not isinstance(value, bytes | bytearray):  # octetString and tags this codec does not know
        raise wrong("bytes")
    return bytes(value)


def _encode_date(name: str, value: datetime) -> bytes:
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{name}: a dateTime needs an aware datetime")
    minutes, seconds = divmod(int(offset.total_seconds()), 60)
    if seconds:
        raise ValueError(f"{name}: a UTC offset must be whole minutes")
    hours, minutes = divmod(abs(minutes), 60)
    direction = b"+" if offset >= timedelta(0) else b"-"
    return _DATE.pack(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 100_000,
        direction,
        hours,
        minutes,
    )


def _check_int32(value: int, name: str) -> int:
    if not _INT32[0] <= value <= _INT32[1]:
        raise ValueError(f"{name}: {value} does not fit a signed 32-bit integer")
    return value


def _ascii_bytes(value: str, what: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be US-ASCII: {value!r}") from None


# Decoding.

Buffer = bytes | bytearray | memoryview


@dataclass
class _OpenCollection:
    collection: Collection
    offset: int
    member_name: str | None = None  # set by memberAttrName until the member's first value
    member: Attribute | None = None  # the member that additional values join


class _Decoder:
    """Decodes complete items as they arrive and resumes where it stopped.

    Every check depends only on bytes before the point checked, so the same input gives the
    same message or the same error however it is split into chunks.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.pos = 0
        self.end: int | None = None  # offset just past the end-of-attributes tag
        self.message: Message | None = None
        self.group: AttributeGroup | None = None
        self.attr: Attribute | None = None  # the top-level attribute additional values join
        self.stack: list[_OpenCollection] = []
        self.count = 0
        self.wanted = "the message header at offset 0 needs 8 octets"
        self.need = 8  # no progress is possible before the data is this long

    def run(self, buf: Buffer) -> bool:
        """Consumes every complete item of buf; True once the end tag has been read."""
        if self.message is None:
            if not self._have(buf, 0, 8, "the message header"):
                return False
            major, minor, code, request_id = _HEADER.unpack_from(buf, 0)
            self.message = Message((major, minor), code, request_id, [])
            self.pos = 8
        while self.end is None:
            if not self._item(buf):
                return False
        return True

    def truncated(self, size: int) -> IncompleteMessage:
        return IncompleteMessage(f"message truncated at {size} octets: {self.wanted}", self.pos)

    def _have(self, buf: Buffer, start: int, size: int, what: str) -> bool:
        if start + size > self.limits.max_header_bytes:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"{what} ends past the {self.limits.max_header_bytes} octet limit for attributes",
                start,
            )
        if start + size > len(buf):
            self.wanted = f"{what} at offset {start} needs {size} octets"
            self.need = start + size
            return False
        return True

    def _item(self, buf: Buffer) -> bool:
        p = self.pos
        if not self._have(buf, p, 1, "a tag"):
            return False
        tag = buf[p]
        if tag <= 0x0F:
            self._delimiter(tag, p)
            self.pos = p + 1
            return True
        if not self._have(buf, p + 1, 2, "a name-length"):
            return False
        (name_length,) = _U16.unpack_from(buf, p + 1)
        if name_length > self.limits.max_name_length:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
                f"a name of {name_length} octets is over the limit of "
                f"{self.limits.max_name_length}",
                p + 1,
            )
        at = p + 3 + name_length  # the value-length
        if not self._have(buf, p + 3, name_length + 2, "a name and value-length"):
            return False
        (value_length,) = _U16.unpack_from(buf, at)
        if value_length > self.limits.max_value_length:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
                f"a value of {value_length} octets is over the limit of "
                f"{self.limits.max_value_length}",
                at,
            )
        if not self._have(buf, at + 2, value_length, "a value"):
            return False
        self._value(buf, p, tag, name_length, at + 2, value_length)
        self.pos = at + 2 + value_length
        return True

    def _count(self, offset: int) -> None:
        self.count += 1
        if self.count > self.limits.max_attributes:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"more than {self.limits.max_attributes} attributes, values and groups",
                offset,
            )

    def _delimiter(self, tag: int, p: int) -> None:
        assert self.message is not None
        if self.stack:
            raise _bad(
                p, f"tag 0x{tag:02X} inside the collection at offset {self.stack[-1].offset}"
            )
        if tag == 0x00:
            raise _bad(p, "tag 0x00 is reserved")
        if tag == Tag.END:
            self.end = p + 1
            return
        self._count(p)  # unknown delimiters 0x0B-0x0F are groups of a later IPP version
        self.group = AttributeGroup(Tag(tag))
        self.message.groups.append(self.group)
        self.attr = None

    def _value(self, buf: Buffer, p: int, tag: int, name_length: int, at: int, size: int) -> None:
        if tag not in (Tag.MEMBER_ATTR_NAME, Tag.END_COLLECTION):
            self._count(p)  # the other two are bounded by the values around them
        name = _ascii(buf, p + 3, name_length, "attribute name") if name_length else ""
        if tag == Tag.EXTENSION:
            if size < 4:
                raise _bad(p, f"an extension value needs a 4-octet tag, it has {size} octets")
            (tag,) = _U32.unpack_from(buf, at)
            if tag <= 0xFF or tag > 0x7FFFFFFF:
                raise _bad(p, f"extension tag 0x{tag:X} is not in 0x100-0x7FFFFFFF")
            at, size = at + 4, size - 4
        if self.stack:
            self._member_value(buf, p, tag, name, at, size)
            return
        if self.group is None:
            raise _bad(p, "an attribute before any group tag")
        if tag in (Tag.MEMBER_ATTR_NAME, Tag.END_COLLECTION):
            raise _bad(p, f"{Tag(tag).name} outside a collection")
        value = _decode_value(buf, p, tag, at, size)
        if name:
            self.attr = Attribute(name, Tag(tag), [value])
            self.group.attributes.append(self.attr)
        elif self.attr is None:
            raise _bad(p, "an additional value (empty name) with no attribute before it")
        else:
            self._append(self.attr, tag, value, p)
        if isinstance(value, Collection):
            self._open(value, p)

    def _member_value(self, buf: Buffer, p: int, tag: int, name: str, at: int, size: int) -> None:
        frame = self.stack[-1]
        if name:
            raise _bad(p, f"a value inside a collection has the name {name!r}; it must be empty")
        if tag == Tag.MEMBER_ATTR_NAME:
            if frame.member_name is not None:
                raise _bad(p, f"member {frame.member_name!r} has no value")
            frame.member_name = _ascii(buf, at, size, "member name")
            if not frame.member_name:
                raise _bad(p, "an empty memberAttrName")
            frame.member = None
            return
        if tag == Tag.END_COLLECTION:
            if frame.member_name is not None:
                raise _bad(p, f"member {frame.member_name!r} has no value")
            self.stack.pop()
            return
        value = _decode_value(buf, p, tag, at, size)
        if frame.member_name is not None:
            frame.member = Attribute(frame.member_name, Tag(tag), [value])
            frame.collection.members.append(frame.member)
            frame.member_name = None
        elif frame.member is not None:
            self._append(frame.member, tag, value, p)
        else:
            raise _bad(p, "a value inside a collection with no memberAttrName before it")
        if isinstance(value, Collection):
            self._open(value, p)

    def _append(self, attr: Attribute, tag: int, value: Value, p: int) -> None:
        if len(attr.values) >= self.limits.max_values_per_attribute:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"{attr.name!r} has more than {self.limits.max_values_per_attribute} values",
                p,
            )
        attr.add(value, Tag(tag))

    def _open(self, collection: Collection, p: int) -> None:
        if len(self.stack) >= self.limits.max_depth:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"collections nested more than {self.limits.max_depth} deep",
                p,
            )
        self.stack.append(_OpenCollection(collection, p))


def _decode_value(buf: Buffer, p: int, tag: int, at: int, size: int) -> Value:
    if 0x10 <= tag <= 0x1F:
        return OutOfBand(Tag(tag))  # RFC 8010 3.5.2: the value field, if any, is ignored
    expected = _FIXED_SIZE.get(tag)
    if expected is not None and size != expected:
        raise _bad(p, f"a {Tag(tag).name} value must be {expected} octets, not {size}")
    if tag in (Tag.INTEGER, Tag.ENUM):
        return int(_I32.unpack_from(buf, at)[0])
    if tag == Tag.BOOLEAN:
        if buf[at] > 1:
            raise _bad(p, f"a boolean must be 0 or 1, not {buf[at]}")
        return buf[at] == 1
    if tag == Tag.DATE_TIME:
        return _decode_date(buf, p, at)
    if tag == Tag.RESOLUTION:
        x, y, units = _RESOLUTION.unpack_from(buf, at)
        known = units in (ResolutionUnit.DPI, ResolutionUnit.DPCM)
        return Resolution(x, y, ResolutionUnit(units) if known else units)
    if tag == Tag.RANGE_OF_INTEGER:
        return RangeOfInteger(*_RANGE.unpack_from(buf, at))
    if tag in _LANGUAGE_TAGS:
        return _decode_with_language(buf, p, at, size)
    if tag in _UTF8_TAGS:
        return _utf8(buf, at, size, Tag(tag).name)
    if tag in _ASCII_TAGS:
        return _ascii(buf, at, size, Tag(tag).name)
    if tag == Tag.BEG_COLLECTION:
        return Collection()  # the value field is reserved: ignored
    return bytes(buf[at : at + size])  # octetString, and unknown tags kept as they came


def _decode_date(buf: Buffer, p: int, at: int) -> datetime:
    year, month, day, hour, minute, second, deci, direction, off_h, off_m = _DATE.unpack_from(
        buf, at
    )
    if direction not in (b"+", b"-") or deci > 9 or off_h > 23 or off_m > 59:
        raise _bad(p, "a dateTime with an invalid deci-seconds or UTC offset field")
    offset = timedelta(hours=off_h, minutes=off_m)
    try:
        return datetime(
            year,
            month,
            day,
            hour,
            minute,
            min(second, 59),  # a leap second (60) is allowed by RFC 2579; Python has none
            deci * 100_000,
            tzinfo=timezone(offset if direction == b"+" else -offset),
        )
    except ValueError as error:
        raise _bad(p, f"an invalid dateTime: {error}") from None


def _decode_with_language(buf: Buffer, p: int, at: int, size: int) -> StringWithLanguage:
    if size < 4:
        raise _bad(p, f"a value with language needs at least 4 octets, it has {size}")
    (language_length,) = _U16.unpack_from(buf, at)
    if 2 + language_length + 2 > size:
        raise _bad(p, f"a language of {language_length} octets overruns the {size} octet value")
    (text_length,) = _U16.unpack_from(buf, at + 2 + language_length)
    if 4 + language_length + text_length != size:
        raise _bad(p, f"language and text lengths do not add up to the {size} octet value")
    language = _ascii(buf, at + 2, language_length, "natural language")
    return StringWithLanguage(_utf8(buf, at + 4 + language_length, text_length, "text"), language)


def _ascii(buf: Buffer, at: int, size: int, what: str) -> str:
    try:
        return bytes(buf[at : at + size]).decode("ascii")
    except UnicodeDecodeError as error:
        raise _bad(at + error.start, f"the {what} is not US-ASCII") from None


def _utf8(buf: Buffer, at: int, size: int, what: str) -> str:
    try:
        return bytes(buf[at : at + size]).decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad(at + error.start, f"the {what} is not valid UTF-8") from None


def decode(data: Buffer, limits: Limits = Limits()) -> tuple[Message, int]:
    """The message in data and the offset where the document data begins."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    decoder = _Decoder(limits)
    if not decoder.run(view):
        raise decoder.truncated(len(view))
    assert decoder.message is not None and decoder.end is not None
    return decoder.message, decoder.end


class MessageParser:
    """Sans-IO incremental decoder: feed chunks until it returns the message.

    Each item is decoded once, when its last octet arrives, so feeding a header one octet at
    a time costs the same as decoding it whole.
    """

    def __init__(self, limits: Limits = Limits()) -> None:
        self._decoder = _Decoder(limits)
        self._buffer = bytearray()
        self._message: Message | None = None
        self._error: IppError | None = None
        self.rest = b""

    def feed(self, chunk: bytes | bytearray | memoryview) -> Message | None:
        """The message once its end-of-attributes tag has arrived, else None.

        Raises IppError as soon as the data is known to be bad or over a limit. After the
        message, the octets that came with it are in .rest; feed nothing more.
        """
        if self._error is not None:
            raise self._error
        if self._message is not None:
            raise RuntimeError("the message is complete: read .rest and the stream after it")
        self._buffer += chunk
        if len(self._buffer) < self._decoder.need:
            return None  # the item under way is still incomplete: nothing new to decode
        try:
            done = self._decoder.run(self._buffer)
        except IppError as error:
            self._error = error
            self._buffer = bytearray()
            raise
        if not done:
            return None
        assert self._decoder.message is not None and self._decoder.end is not None
        self._message = self._decoder.message
        self.rest = bytes(self._buffer[self._decoder.end :])
        self._buffer = bytearray()
        return self._message

    def finish(self) -> Message:
        """The message, at the end of the stream; IppError if it never completed."""
        if self._error is not None:
            raise self._error
        if self._message is None:
            self._error = self._decoder.truncated(len(self._buffer))
            raise self._error
        return self._message


async def read_message(
    chunks: AsyncIterator[bytes], limits: Limits = Limits()
) -> tuple[Message, bytes, AsyncIterator[bytes]]:
    """Reads a message off a body stream: (message, document octets read with it, chunks)."""
    parser = MessageParser(limits)
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            return parser.finish(), parser.rest, chunks  # finish() raises: it never completed
        message = parser.feed(chunk)
        if message is not None:
            return message, parser.rest, chunks
