"""The IPP codec: golden bytes, every value syntax, every malformed input, and properties."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printfabric.ipp import (
    Attribute,
    AttributeGroup,
    Collection,
    IncompleteMessage,
    IppError,
    Limits,
    Message,
    MessageParser,
    Operation,
    OutOfBand,
    RangeOfInteger,
    Resolution,
    Status,
    StringWithLanguage,
    Tag,
    Value,
    check_syntax,
    decode,
    encode,
    new_request,
    read_message,
)

# A Get-Printer-Attributes request, written out by hand from RFC 8010 section 3.
GET_PRINTER_ATTRIBUTES = bytes.fromhex(
    "02 00 00 0b 00 00 00 01"  # IPP/2.0, Get-Printer-Attributes, request-id 1
    "01"  # operation-attributes-tag
    "47 00 12 617474726962757465732d63686172736574 00 05 7574662d38"  # attributes-charset utf-8
    "48 00 1b 617474726962757465732d6e61747572616c2d6c616e6775616765 00 02 656e"  # natural language en
    "45 00 0b 7072696e7465722d757269"  # uri printer-uri
    "00 19 6970703a2f2f6c6f63616c686f73742f6970702f7072696e74"  # = ipp://localhost/ipp/print
    "42 00 14 72657175657374696e672d757365722d6e616d65 00 03 626f62"  # requesting-user-name bob
    "44 00 14 7265717565737465642d61747472696275746573"  # keyword requested-attributes
    "00 0c 7072696e7465722d6e616d65"  # = printer-name
    "44 00 00 00 0d 7072696e7465722d7374617465"  # additional value: printer-state
    "03"  # end-of-attributes-tag
)

# A response with a collection in a collection (RFC 8010 section 3.1.6).
MEDIA_COL_RESPONSE = bytes.fromhex(
    "02 00 00 00 00 00 00 07"  # IPP/2.0, successful-ok, request-id 7
    "04"  # printer-attributes-tag
    "34 00 09 6d656469612d636f6c 00 00"  # begCollection media-col
    "4a 00 00 00 0a 6d656469612d73697a65"  # memberAttrName media-size
    "34 00 00 00 00"  # begCollection
    "4a 00 00 00 0b 782d64696d656e73696f6e"  # memberAttrName x-dimension
    "21 00 00 00 04 00005208"  # integer 21000
    "37 00 00 00 00"  # endCollection
    "37 00 00 00 00"  # endCollection
    "03"
)

HEAD = bytes.fromhex("0200000200000001")  # IPP/2.0 Print-Job, request-id 1
BAD = Status.CLIENT_ERROR_BAD_REQUEST
TOO_LONG = Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
TOO_LARGE = Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE


def item(tag: int, name: bytes, value: bytes) -> bytes:
    return (
        bytes([tag]) + len(name).to_bytes(2, "big") + name + len(value).to_bytes(2, "big") + value
    )


def request(*items: bytes) -> bytes:
    """A message of HEAD, an operation group holding items, and the end tag."""
    return HEAD + b"\x01" + b"".join(items) + b"\x03"


def parse_in_chunks(data: bytes, sizes: list[int], limits: Limits | None = None) -> Message:
    parser = MessageParser(limits or Limits())
    at = 0
    for size in sizes:
        message = parser.feed(data[at : at + size])
        at += size
        if message is not None:
            return message
    message = parser.feed(data[at:]) if at < len(data) else None
    return message if message is not None else parser.finish()


# Golden bytes.


def test_get_printer_attributes_request_encodes_to_the_hand_written_bytes() -> None:
    message = new_request(Operation.GET_PRINTER_ATTRIBUTES, "ipp://localhost/ipp/print", user="bob")
    message.operation_attributes.add(
        Attribute.keyword("requested-attributes", "printer-name", "printer-state")
    )
    assert encode(message).hex() == GET_PRINTER_ATTRIBUTES.hex()
    assert decode(GET_PRINTER_ATTRIBUTES) == (message, len(GET_PRINTER_ATTRIBUTES))


def test_nested_collection_response_decodes_and_encodes_back_to_the_same_bytes() -> None:
    message, end = decode(MEDIA_COL_RESPONSE)
    assert end == len(MEDIA_COL_RESPONSE)
    assert message.status == Status.SUCCESSFUL_OK and message.status.is_success
    media_col = message.groups[0]["media-col"].value
    assert isinstance(media_col, Collection)
    media_size = media_col["media-size"].value
    assert isinstance(media_size, Collection)
    assert media_size["x-dimension"].value == 21000
    assert encode(message) == MEDIA_COL_RESPONSE


def test_document_data_begins_right_after_the_end_tag() -> None:
    message, end = decode(GET_PRINTER_ATTRIBUTES + b"%PDF-1.7")
    assert (GET_PRINTER_ATTRIBUTES + b"%PDF-1.7")[end:] == b"%PDF-1.7"
    assert message.operation_id == Operation.GET_PRINTER_ATTRIBUTES


# Every value syntax round trips.

EVERY_TAG: list[Attribute] = [
    Attribute.integer("copies", 1, -(2**31), 2**31 - 1),
    Attribute.enum("finishings", 3, 4),
    Attribute.boolean("ipp-attribute-fidelity", True, False),
    Attribute.keyword("sides", "two-sided-long-edge"),
    Attribute.text("message", "héllo ✓", StringWithLanguage("bonjour", "fr-CA"), ""),
    Attribute.name_("job-name", "Quarterly report", StringWithLanguage("Bericht", "de")),
    Attribute.uri("printer-uri", "ipps://printer.example/ipp/print"),
    Attribute.uri_scheme("uri-schemes-supported", "ipp", "ipps"),
    Attribute.charset("attributes-charset", "utf-8"),
    Attribute.natural_language("attributes-natural-language", "en-us"),
    Attribute.mime_type("document-format", "application/pdf"),
    Attribute.octets("job-password", b"\x00\xff secret"),
    Attribute.date_time(
        "printer-current-time",
        datetime(2024, 2, 29, 23, 59, 58, 900_000, tzinfo=UTC),
        datetime(1999, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        datetime(2030, 6, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=14))),
    ),
    Attribute.resolution("printer-resolution", Resolution(600, 1200), Resolution(300, 300, 4)),
    Attribute.range("page-ranges", RangeOfInteger(1, 3), RangeOfInteger(-5, 2**31 - 1)),
    Attribute.collection("media-col", Collection([Attribute.keyword("media-type", "labels")])),
    Attribute.out_of_band("job-hold-until", Tag.NO_VALUE),
    Attribute("vendor-thing", Tag(0x4B), [b"reserved tag"]),
    Attribute("vendor-extension", Tag(0x40000001), [b"", b"\x01\x02"]),
]


@pytest.mark.parametrize("attr", EVERY_TAG, ids=lambda a: a.tag.name)
def test_every_value_syntax_round_trips(attr: Attribute) -> None:
    message = Message((2, 0), Operation.PRINT_JOB, 9)
    message.add_group(Tag.JOB).add(attr)
    decoded, _ = decode(encode(message))
    assert decoded == message
    assert decoded.groups[0][attr.name].tagged() == attr.tagged()


@pytest.mark.parametrize(
    "tag",
    [t for t in Tag if t.is_out_of_band],
    ids=lambda t: t.name,
)
def test_every_out_of_band_value_round_trips_with_an_empty_value(tag: Tag) -> None:
    message = Message((1, 1), Operation.SET_PRINTER_ATTRIBUTES, 2)
    message.add_group(Tag.PRINTER).add(Attribute.out_of_band("printer-info", tag))
    data = encode(message)
    assert data.endswith(bytes([tag]) + b"\x00\x0cprinter-info\x00\x00\x03")
    assert decode(data)[0] == message


def test_out_of_band_value_octets_are_ignored_as_rfc_8010_says() -> None:
    message, _ = decode(request(item(0x13, b"job-name", b"ignored")))
    assert message.operation_attributes["job-name"].values == [OutOfBand(Tag.NO_VALUE)]


def test_unknown_value_tags_are_kept_as_octets_with_their_tag() -> None:
    data = request(item(0x4B, b"a", b"\x01\x02"), item(0x99, b"", b"z"))
    message, _ = decode(data)
    attr = message.operation_attributes["a"]
    assert attr.tagged() == [(Tag(0x4B), b"\x01\x02"), (Tag(0x99), b"z")]
    assert encode(message) == data


def test_extension_tag_carries_the_real_tag_in_the_value() -> None:
    data = request(item(0x7F, b"vendor", bytes.fromhex("40000001") + b"payload"))
    message, _ = decode(data)
    attr = message.operation_attributes["vendor"]
    assert attr.tag == 0x40000001 and attr.value == b"payload"
    assert encode(message) == data


def test_one_set_of_may_mix_keyword_name_and_no_value() -> None:
    attr = Attribute.keyword("media", "iso_a4_210x297").add("Letterhead", Tag.NAME)
    attr.add(OutOfBand(Tag.NO_VALUE))
    message = Message((2, 0), Operation.PRINT_JOB, 1)
    message.add_group(Tag.JOB).add(attr)
    decoded = decode(encode(message))[0].groups[0]["media"]
    assert decoded.tagged() == [
        (Tag.KEYWORD, "iso_a4_210x297"),
        (Tag.NAME, "Letterhead"),
        (Tag.NO_VALUE, OutOfBand(Tag.NO_VALUE)),
    ]
    spelled_out = Attribute(
        "media", Tag.KEYWORD, ["iso_a4_210x297", "Letterhead", OutOfBand(Tag.NO_VALUE)],
        [Tag.KEYWORD, Tag.NAME, Tag.NO_VALUE],
    )  # fmt: skip
    assert decoded == spelled_out
    assert Attribute("x", Tag.KEYWORD, ["a"], [Tag.KEYWORD]).value_tags is None


def test_collections_nest_and_hold_sets_of_values_and_sets_of_collections() -> None:
    size = Collection(
        [Attribute.integer("x-dimension", 21000), Attribute.integer("y-dimension", 1)]
    )
    inner = Collection(
        [
            Attribute.collection("media-size", size),
            Attribute.keyword("media-source", "tray-1", "tray-2"),
            Attribute.collection("empty", Collection()),
        ]
    )
    attr = Attribute.collection("media-col-database", inner, Collection([]), inner)
    message = Message((2, 0), Status.SUCCESSFUL_OK, 3)
    message.add_group(Tag.PRINTER).add(attr)
    decoded, _ = decode(encode(message))
    assert decoded == message
    first = decoded.groups[0]["media-col-database"].values[0]
    assert isinstance(first, Collection)
    assert [m.name for m in first] == ["media-size", "media-source", "empty"]
    assert "media-source" in first and first.get("nope") is None
    assert first["media-source"].values == ["tray-1", "tray-2"]


def test_version_zero_and_unknown_codes_still_decode() -> None:
    data = bytes.fromhex("00 00 7777 00000005 01 03")
    message, _ = decode(data)
    assert message.version == (0, 0)
    assert message.operation_id == 0x7777 and message.operation_id.name == "UNKNOWN_0x7777"


def test_unknown_delimiter_tags_begin_a_group_of_a_later_ipp_version() -> None:
    message, _ = decode(HEAD + b"\x0b" + item(0x21, b"n", b"\x00\x00\x00\x01") + b"\x03")
    assert message.groups[0].tag == 0x0B
    assert message.groups[0]["n"].value == 1


def test_leap_second_decodes_as_second_59() -> None:
    date = bytes.fromhex("07e8 06 1e 17 3b 3c 00 2b 00 00")  # 2024-06-30 23:59:60 +00:00
    message, _ = decode(request(item(0x31, b"t", date)))
    assert message.operation_attributes["t"].value == datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC)


# The model.


def test_message_views_and_groups() -> None:
    message = Message((2, 0), Operation.CANCEL_JOB, 4)
    assert len(message.operation_attributes) == 0 and message.groups == []
    operation = message.add_group(Tag.OPERATION)
    operation.add(Attribute.integer("job-id", 12)).add(Attribute.keyword("a", "b"))
    message.add_group(Tag.JOB)
    message.add_group(Tag.JOB)
    assert message.operation_attributes is operation
    assert message.group(Tag.PRINTER) is None
    assert len(message.groups_of(Tag.JOB)) == 2
    assert operation.names() == ["job-id", "a"]
    assert "job-id" in operation and "nope" not in operation
    assert operation["job-id"].value == 12
    with pytest.raises(KeyError):
        operation["nope"]
    assert message.operation_id == Operation.CANCEL_JOB
    assert Status(0x00FF).is_success and not Status(0x0100).is_success
    assert Status.CLIENT_ERROR_NOT_FOUND.keyword == "client-error-not-found"
    assert AttributeGroup(Tag.JOB) == AttributeGroup(Tag.JOB, [])


def test_check_syntax_knows_the_request_attributes() -> None:
    assert check_syntax(Attribute.integer("copies", 2))
    assert not check_syntax(Attribute.keyword("copies", "2"))
    assert not check_syntax(Attribute.integer("copies", 1, 2))  # copies is not a 1setOf
    assert check_syntax(Attribute.keyword("media", "iso_a4_210x297"))
    assert check_syntax(Attribute.name_("media", "Letterhead"))
    assert not check_syntax(Attribute.keyword("finishings", "staple"))
    assert check_syntax(Attribute.name_("job-name", StringWithLanguage("x", "en")))
    assert check_syntax(Attribute.out_of_band("job-hold-until", Tag.NO_VALUE))
    assert not check_syntax(Attribute.out_of_band("printer-uri", Tag.UNKNOWN))
    assert check_syntax(Attribute.range("page-ranges", RangeOfInteger(1, 2), RangeOfInteger(5, 6)))
    assert check_syntax(Attribute.octets("some-vendor-attribute", b"x"))


def test_builders_and_out_of_band_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        Attribute.keyword("sides")
    with pytest.raises(ValueError, match="not an out-of-band tag"):
        OutOfBand(Tag.KEYWORD)
    with pytest.raises(ValueError, match="more value_tags"):
        Attribute("a", Tag.KEYWORD, ["x"], [Tag.KEYWORD, Tag.NAME])


@pytest.mark.parametrize(
    ("attr", "problem"),
    [
        (Attribute.integer("copies", 2**31), "signed 32-bit"),
        (Attribute("copies", Tag.INTEGER, [True]), "must be an int"),
        (Attribute("flag", Tag.BOOLEAN, [1]), "must be a bool"),
        (Attribute.date_time("t", datetime(2024, 1, 1)), "aware datetime"),
        (Attribute.keyword("sides", "dü"), "US-ASCII"),
        (Attribute.keyword("sidés", "x"), "US-ASCII"),
        (Attribute("x", Tag.KEYWORD, []), "at least one value"),
        (Attribute("", Tag.KEYWORD, ["x"]), "needs a name"),
        (Attribute.octets("big", b"x" * 65536), "over 65535"),
        (Attribute("x", Tag.NO_VALUE, ["x"]), "OutOfBand"),
        (Attribute("x", Tag.MEMBER_ATTR_NAME, ["x"]), "not a value tag"),
        (Attribute("x", Tag.EXTENSION, [b"\x00\x00\x01\x00"]), "not a value tag"),
        (Attribute("x", Tag.BEG_COLLECTION, ["x"]), "must be a Collection"),
        (Attribute("x", Tag(0x4B), ["x"]), "must be bytes"),
        (Attribute.resolution("r", Resolution(1, 1, 300)), "units"),
        (Attribute.collection("c", Collection([Attribute("", Tag.KEYWORD, ["x"])])), "member"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_encode_refuses_a_model_the_wire_cannot_carry(attr: Attribute, problem: str) -> None:
    message = Message((2, 0), Operation.PRINT_JOB, 1)
    message.add_group(Tag.JOB).add(attr)
    with pytest.raises(ValueError, match=problem):
        encode(message)


def test_encode_refuses_bad_headers_and_group_tags() -> None:
    with pytest.raises(ValueError, match="version"):
        encode(Message((256, 0), 2, 1))
    with pytest.raises(ValueError, match="16 bits"):
        encode(Message((2, 0), 0x10000, 1))
    with pytest.raises(ValueError, match="request-id"):
        encode(Message((2, 0), 2, 2**31))
    with pytest.raises(ValueError, match="not a group tag"):
        encode(Message((2, 0), 2, 1, [AttributeGroup(Tag.END)]))
    with pytest.raises(ValueError, match="not a group tag"):
        encode(Message((2, 0), 2, 1, [AttributeGroup(Tag.KEYWORD)]))


def test_a_collection_that_contains_itself_is_refused_not_a_recursion_error() -> None:
    loop = Collection()
    loop.add(Attribute.collection("me", loop))
    message = Message((2, 0), 2, 1)
    message.add_group(Tag.JOB).add(Attribute.collection("loop", loop))
    with pytest.raises(ValueError, match="nested"):
        encode(message)


# Every malformed input gives an IppError with the right status.

COLLECTION_START = item(0x34, b"media-col", b"")
MEMBER = item(0x4A, b"", b"media-type")
END_COLLECTION = item(0x37, b"", b"")


def nested(depth: int) -> bytes:
    data = item(0x34, b"c", b"")
    for _ in range(depth - 1):
        data += item(0x4A, b"", b"c") + item(0x34, b"", b"")
    return data + END_COLLECTION * depth


ERRORS: list[tuple[str, bytes, Limits, Status, str]] = [
    ("empty", b"", Limits(), BAD, "message header"),
    ("8 octets", HEAD, Limits(), BAD, "a tag at offset 8"),
    ("no end tag", HEAD + b"\x01" + item(0x44, b"a", b"b"), Limits(), BAD, "truncated"),
    ("truncated value", request(item(0x44, b"a", b"bcd"))[:-3], Limits(), BAD, "a value"),
    ("attribute before any group", HEAD + item(0x44, b"a", b"b") + b"\x03", Limits(), BAD,
     "before any group"),
    ("reserved delimiter 0x00", HEAD + b"\x00\x03", Limits(), BAD, "0x00 is reserved"),
    ("integer of 3 octets", request(item(0x21, b"i", b"\x00\x00\x01")), Limits(), BAD,
     "INTEGER value must be 4 octets, not 3"),
    ("enum of 5 octets", request(item(0x23, b"e", b"\x00" * 5)), Limits(), BAD, "4 octets"),
    ("boolean 2", request(item(0x22, b"b", b"\x02")), Limits(), BAD, "0 or 1"),
    ("boolean of 2 octets", request(item(0x22, b"b", b"\x00\x01")), Limits(), BAD, "1 octets"),
    ("dateTime of 10 octets", request(item(0x31, b"d", b"\x00" * 10)), Limits(), BAD, "11 octets"),
    ("dateTime month 13", request(item(0x31, b"d", bytes.fromhex("07e80d01000000002b0000"))),
     Limits(), BAD, "invalid dateTime"),
    ("dateTime direction", request(item(0x31, b"d", bytes.fromhex("07e80101000000003f0000"))),
     Limits(), BAD, "UTC offset"),
    ("dateTime deci-seconds 10",
     request(item(0x31, b"d", bytes.fromhex("07e801010000000a2b0000"))), Limits(), BAD, "deci"),
    ("resolution of 8 octets", request(item(0x32, b"r", b"\x00" * 8)), Limits(), BAD, "9 octets"),
    ("range of 7 octets", request(item(0x33, b"r", b"\x00" * 7)), Limits(), BAD, "8 octets"),
    ("textWithLanguage of 3 octets", request(item(0x35, b"t", b"\x00\x00\x00")), Limits(), BAD,
     "at least 4"),
    ("language overruns", request(item(0x35, b"t", b"\x00\x09en\x00\x00")), Limits(), BAD,
     "overruns"),
    ("lengths do not add up", request(item(0x36, b"t", b"\x00\x02en\x00\x05abc")), Limits(), BAD,
     "do not add up"),
    ("text not UTF-8", request(item(0x41, b"t", b"ok\xff")), Limits(), BAD, "not valid UTF-8"),
    ("name with language not UTF-8", request(item(0x36, b"t", b"\x00\x02en\x00\x01\xc3")),
     Limits(), BAD, "UTF-8"),
    ("keyword not ASCII", request(item(0x44, b"k", "dé".encode())), Limits(), BAD, "US-ASCII"),
    ("attribute name not ASCII", request(item(0x44, "nämé".encode(), b"x")), Limits(), BAD,
     "attribute name is not US-ASCII"),
    ("additional value first", request(item(0x44, b"", b"x")), Limits(), BAD,
     "no attribute before it"),
    ("memberAttrName outside", request(MEMBER), Limits(), BAD, "MEMBER_ATTR_NAME outside"),
    ("endCollection outside", request(END_COLLECTION), Limits(), BAD, "END_COLLECTION outside"),
    ("group tag inside a collection", request(COLLECTION_START, b"\x02", END_COLLECTION),
     Limits(), BAD, "inside the collection at offset 9"),
    ("end tag inside a collection", request(COLLECTION_START), Limits(), BAD,
     "inside the collection"),
    ("value without memberAttrName", request(COLLECTION_START, item(0x44, b"", b"x")),
     Limits(), BAD, "no memberAttrName"),
    ("memberAttrName twice", request(COLLECTION_START, MEMBER, MEMBER), Limits(), BAD,
     "has no value"),
    ("memberAttrName then end", request(COLLECTION_START, MEMBER, END_COLLECTION), Limits(), BAD,
     "has no value"),
    ("named value in a collection",
     request(COLLECTION_START, MEMBER, item(0x44, b"x", b"y"), END_COLLECTION), Limits(), BAD,
     "must be empty"),
    ("empty memberAttrName", request(COLLECTION_START, item(0x4A, b"", b"")), Limits(), BAD,
     "empty memberAttrName"),
    ("extension of 3 octets", request(item(0x7F, b"x", b"\x00\x00\x01")), Limits(), BAD,
     "4-octet tag"),
    ("extension of a one-octet tag", request(item(0x7F, b"x", b"\x00\x00\x00\x21")), Limits(),
     BAD, "not in 0x100"),
    ("extension with the high bit", request(item(0x7F, b"x", b"\x80\x00\x00\x00")), Limits(),
     BAD, "not in 0x100"),
    ("name of 256 octets", request(item(0x44, b"n" * 256, b"x")), Limits(), TOO_LONG,
     "name of 256 octets"),
    ("value over the limit", request(item(0x41, b"t", b"x" * 11)), Limits(max_value_length=10),
     TOO_LONG, "value of 11 octets"),
    ("header over the limit", request(item(0x41, b"t", b"x" * 100)), Limits(max_header_bytes=64),
     TOO_LARGE, "64 octet limit"),
    ("too many attributes", request(*[item(0x21, b"i", b"\x00" * 4)] * 4),
     Limits(max_attributes=4), TOO_LARGE, "more than 4 attributes"),
    ("too many values", request(item(0x21, b"i", b"\x00" * 4), *[item(0x21, b"", b"\x00" * 4)] * 3),
     Limits(max_values_per_attribute=3), TOO_LARGE, "more than 3 values"),
    ("too many member values",
     request(COLLECTION_START, MEMBER, *[item(0x44, b"", b"x")] * 3, END_COLLECTION),
     Limits(max_values_per_attribute=2), TOO_LARGE, "'media-type' has more than 2 values"),
    ("collections too deep", request(nested(4)), Limits(max_depth=3), TOO_LARGE,
     "nested more than 3 deep"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "limits", "status", "problem"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])  # fmt: skip
def test_malformed_input_gives_ipp_error_naming_the_problem(
    data: bytes, limits: Limits, status: Status, problem: str
) -> None:
    with pytest.raises(IppError) as caught:
        decode(data, limits)
    assert caught.value.status == status
    assert problem in str(caught.value)
    if data:
        assert "offset" in str(caught.value)
    # The incremental parser fails the same way, however the input is split.
    for size in (1, 7):
        with pytest.raises(IppError) as again:
            parse_in_chunks(data, [size] * len(data), limits)
        assert str(again.value) == str(caught.value)


def test_the_limits_allow_a_message_right_at_them() -> None:
    assert decode(request(nested(3)), Limits(max_depth=3))
    data = request(item(0x41, b"t", b"x" * 10))
    assert decode(data, Limits(max_value_length=10, max_header_bytes=len(data)))


def test_short_input_is_an_incomplete_message() -> None:
    for size in range(9):
        with pytest.raises(IncompleteMessage) as caught:
            decode(GET_PRINTER_ATTRIBUTES[:size])
        assert caught.value.status == BAD


# The incremental parser.


def test_parser_returns_the_message_once_the_end_tag_arrives_and_keeps_the_rest() -> None:
    parser = MessageParser()
    assert parser.feed(GET_PRINTER_ATTRIBUTES[:-1]) is None
    message = parser.feed(GET_PRINTER_ATTRIBUTES[-1:] + b"%PDF")
    assert message == decode(GET_PRINTER_ATTRIBUTES)[0]
    assert parser.rest == b"%PDF"
    assert parser.finish() is message
    with pytest.raises(RuntimeError):
        parser.feed(b"more")


def test_parser_finish_before_the_end_tag_is_a_truncated_request() -> None:
    parser = MessageParser()
    parser.feed(GET_PRINTER_ATTRIBUTES[:20])
    with pytest.raises(IncompleteMessage, match="truncated at 20 octets"):
        parser.finish()


def test_parser_refuses_an_over_long_value_before_its_octets_arrive() -> None:
    parser = MessageParser()
    with pytest.raises(IppError) as caught:
        parser.feed(HEAD + b"\x01\x41\x00\x01t\xff\xff")  # promises a 65535 octet text
    assert caught.value.status == TOO_LONG
    with pytest.raises(IppError):  # the error sticks
        parser.feed(b"x")


def test_parser_refuses_an_endless_header_while_it_streams_in() -> None:
    parser = MessageParser()
    endless = item(0x41, b"t", b"x" * 30000)
    parser.feed(HEAD + b"\x01")
    with pytest.raises(IppError) as caught:
        for _ in range(100):
            parser.feed(endless)
    assert caught.value.status == TOO_LARGE
    assert "262144 octet limit" in str(caught.value)


def big_header() -> bytes:
    """A request just under the 256 KiB header limit with 2000 attributes."""
    message = new_request(Operation.PRINT_JOB, "ipp://printer.example/ipp/print", user="x")
    job = message.add_group(Tag.JOB)
    for i in range(2000):
        job.add(Attribute.text(f"vendor-attribute-{i:04d}", "v" * 100))
    data = encode(message)
    assert 200_000 < len(data) < 256 * 1024
    return data


def test_a_256_kib_header_fed_one_octet_at_a_time_parses_in_well_under_a_second() -> None:
    data = big_header()
    expected = decode(data)[0]
    started = time.perf_counter()
    parser = MessageParser()
    message = None
    for i in range(len(data)):
        message = parser.feed(data[i : i + 1])
    elapsed = time.perf_counter() - started
    assert message == expected
    assert elapsed < 1.0, f"{elapsed:.2f} s"


async def test_read_message_returns_the_message_the_document_start_and_the_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield GET_PRINTER_ATTRIBUTES[:10]
        yield GET_PRINTER_ATTRIBUTES[10:] + b"%PDF"
        yield b"-1.7"
        yield b" rest"

    chunks = body()
    message, head, rest = await read_message(chunks)
    assert message == decode(GET_PRINTER_ATTRIBUTES)[0]
    assert head == b"%PDF"
    assert rest is chunks
    assert [chunk async for chunk in rest] == [b"-1.7", b" rest"]


async def test_read_message_of_a_truncated_stream_is_a_bad_request() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield GET_PRINTER_ATTRIBUTES[:30]

    with pytest.raises(IncompleteMessage) as caught:
        await read_message(body())
    assert caught.value.status == BAD


# Properties.

INT32 = st.integers(-(2**31), 2**31 - 1)
ASCII = st.text(st.characters(max_codepoint=0x7F), max_size=12)
NAMES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-0123456789"), min_size=1, max_size=12)
DATES = st.builds(
    lambda moment, deci, offset: moment.replace(
        microsecond=deci * 100_000, tzinfo=timezone(timedelta(minutes=offset))
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(0, 9),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
SCALARS: dict[Tag, st.SearchStrategy[Value]] = {
    Tag.INTEGER: INT32,
    Tag.ENUM: INT32,
    Tag.BOOLEAN: st.booleans(),
    Tag.OCTET_STRING: st.binary(max_size=12),
    Tag.DATE_TIME: DATES,
    Tag.RESOLUTION: st.builds(Resolution, INT32, INT32, st.integers(-128, 127)),
    Tag.RANGE_OF_INTEGER: st.builds(RangeOfInteger, INT32, INT32),
    Tag.TEXT_WITH_LANGUAGE: st.builds(StringWithLanguage, st.text(max_size=12), ASCII),
    Tag.NAME_WITH_LANGUAGE: st.builds(StringWithLanguage, st.text(max_size=12), ASCII),
    Tag.TEXT: st.text(max_size=12),
    Tag.NAME: st.text(max_size=12),
    Tag.KEYWORD: ASCII,
    Tag.URI: ASCII,
    Tag.URI_SCHEME: ASCII,
    Tag.CHARSET: ASCII,
    Tag.NATURAL_LANGUAGE: ASCII,
    Tag.MIME_MEDIA_TYPE: ASCII,
    Tag(0x4B): st.binary(max_size=8),
    Tag(0xFF): st.binary(max_size=8),
    Tag(0x7FFFFFFF): st.binary(max_size=8),
}
OUT_OF_BAND = [t for t in Tag if t.is_out_of_band] + [Tag(0x1F)]


@st.composite
def tagged_values(draw: st.DrawFn, depth: int) -> tuple[Tag, Value]:
    choices = [*SCALARS, Tag.NO_VALUE] + ([Tag.BEG_COLLECTION] if depth < 3 else [])
    tag = draw(st.sampled_from(choices))
    if tag == Tag.NO_VALUE:
        oob = draw(st.sampled_from(OUT_OF_BAND))
        return oob, OutOfBand(oob)
    if tag == Tag.BEG_COLLECTION:
        members = draw(st.lists(attributes(depth + 1), max_size=3))
        return tag, Collection(members)
    return tag, draw(SCALARS[tag])


@st.composite
def attributes(draw: st.DrawFn, depth: int = 0) -> Attribute:
    pairs = draw(st.lists(tagged_values(depth), min_size=1, max_size=3))
    tags = [tag for tag, _ in pairs]
    return Attribute(draw(NAMES), tags[0], [value for _, value in pairs], tags)


GROUP_TAGS = [Tag.OPERATION, Tag.JOB, Tag.PRINTER, Tag.UNSUPPORTED, Tag.DOCUMENT, Tag.SYSTEM]
MESSAGES = st.builds(
    Message,
    st.tuples(st.integers(0, 255), st.integers(0, 255)),
    st.integers(0, 0xFFFF),
    INT32,
    st.lists(
        st.builds(
            AttributeGroup,
            st.sampled_from([*GROUP_TAGS, Tag(0x0B)]),
            st.lists(attributes(), max_size=4),
        ),
        max_size=3,
    ),
)
PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY
@given(MESSAGES, st.binary(max_size=8))
def test_property_encode_then_decode_gives_the_message_back(message: Message, doc: bytes) -> None:
    data = encode(message)
    assert decode(data + doc) == (message, len(data))
    assert encode(decode(data)[0]) == data


def outcome(data: bytes, chunks: list[int] | None = None) -> Message | tuple[Status, str]:
    try:
        if chunks is None:
            return decode(data)[0]
        return parse_in_chunks(data, chunks)
    except IppError as error:
        return error.status, str(error)


@PROPERTY
@given(st.binary(max_size=200))
def test_property_arbitrary_octets_decode_or_raise_ipp_error(data: bytes) -> None:
    outcome(data)
    outcome(HEAD + b"\x01" + data)


@PROPERTY
@given(MESSAGES, st.data())
def test_property_damaged_messages_decode_or_raise_ipp_error(
    message: Message, d: st.DataObject
) -> None:
    data = bytearray(encode(message))
    cut = d.draw(st.integers(0, len(data)))
    outcome(bytes(data[:cut]))
    for _ in range(d.draw(st.integers(1, 4))):
        at = d.draw(st.integers(0, len(data) - 1))
        data[at] = d.draw(st.integers(0, 255))
    outcome(bytes(data))


@PROPERTY
@given(MESSAGES, st.lists(st.integers(1, 40), max_size=30), st.binary(max_size=20), st.data())
def test_property_chunked_parsing_gives_what_decode_gives(
    message: Message, chunks: list[int], flips: bytes, d: st.DataObject
) -> None:
    data = encode(message)
    assert outcome(data, chunks) == outcome(data) == message
    damaged = bytearray(data)
    for octet in flips[:3]:
        damaged[d.draw(st.integers(0, len(damaged) - 1))] = octet
    assert outcome(bytes(damaged), chunks) == outcome(bytes(damaged))
