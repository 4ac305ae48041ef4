"""Fuzzes the IPP decoder and incremental parser: any exception but IppError is a crash.

    .venv/bin/python tests/fuzz/fuzz_ipp.py -max_total_time=60 [corpus-dir]

Without a corpus directory it starts from a few encoded sample messages. Besides "no other
exception", it checks that a decoded message encodes and decodes back to itself, and that the
incremental parser, fed in chunks, gives exactly what decode gives.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "protos"))

with atheris.instrument_imports():
    from printfabric.ipp import (
        Attribute,
        Collection,
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
        decode,
        encode,
        new_request,
    )

LIMITS = Limits(max_header_bytes=8192, max_attributes=256, max_values_per_attribute=64, max_depth=4)


def outcome(data: bytes, chunk_size: int | None) -> Message | tuple[Status, str]:
    try:
        if chunk_size is None:
            return decode(data, LIMITS)[0]
        parser = MessageParser(LIMITS)
        for at in range(0, len(data), chunk_size):
            message = parser.feed(data[at : at + chunk_size])
            if message is not None:
                return message
        return parser.finish()
    except IppError as error:
        return error.status, str(error)


def test_one_input(data: bytes) -> None:
    whole = outcome(data, None)
    chunk_size = 1 + (data[-1] % 16 if data else 0)
    if outcome(data, chunk_size) != whole:
        raise AssertionError(f"the parser in {chunk_size}-octet chunks disagrees with decode")
    if isinstance(whole, Message) and decode(encode(whole), LIMITS)[0] != whole:
        raise AssertionError("a decoded message does not survive encode and decode")


def seeds() -> list[bytes]:
    request = new_request(Operation.PRINT_JOB, "ipp://printer.example/ipp/print", user="bob")
    job = request.add_group(Tag.JOB)
    job.add(Attribute.keyword("media", "iso_a4_210x297").add("Letterhead", Tag.NAME))
    job.add(Attribute.out_of_band("job-hold-until", Tag.NO_VALUE))
    job.add(Attribute.range("page-ranges", RangeOfInteger(1, 2), RangeOfInteger(4, 9)))
    job.add(Attribute.resolution("printer-resolution", Resolution(600, 600)))
    job.add(Attribute.text("job-name", StringWithLanguage("Rapport", "fr"), "plain"))
    job.add(Attribute.date_time("job-hold-until-time", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)))
    job.add(Attribute("vendor", Tag(0x40000001), [b"extension"]))
    size = Collection([Attribute.integer("x-dimension", 21000), Attribute.enum("y", 3)])
    media_col = Collection([Attribute.collection("media-size", size, Collection())])
    job.add(Attribute.collection("media-col", media_col))
    job.add(Attribute("oob", Tag.UNKNOWN, [OutOfBand(Tag.UNKNOWN)]))
    job.add(Attribute.boolean("ipp-attribute-fidelity", True))
    job.add(Attribute.octets("job-password", b"\x00\x01"))
    return [encode(request) + b"%PDF", encode(new_request(Operation.GET_JOBS, "ipp://p/"))]


def main() -> None:
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="fuzz_ipp_"))
        for i, seed in enumerate(seeds()):
            (corpus / f"seed{i}").write_bytes(seed)
        argv.append(str(corpus))
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
