"""Job template attributes into a job's options, shared by the gateway and serve-printer."""

from __future__ import annotations

from printfabric.ipp import Attribute, Collection
from printfabric.ipp.job_template import apply
from printfabric.v1 import device_pb2, spool_pb2

PRINTER = device_pb2.Printer(name="q", color=True, duplex=True)


def test_honoured_values_set_the_options() -> None:
    options = spool_pb2.JobOptions(copies=1)
    assert apply(options, Attribute.integer("copies", 3), PRINTER)
    assert apply(options, Attribute.keyword("sides", "two-sided-long-edge"), PRINTER)
    assert apply(options, Attribute.keyword("print-color-mode", "monochrome"), PRINTER)
    assert apply(options, Attribute.keyword("media", "na_letter_8.5x11in"), PRINTER)
    assert (options.copies, options.duplex, options.mono, options.media) == (
        3,
        True,
        True,
        "na_letter_8.5x11in",
    )


def test_values_of_the_wrong_kind_are_unsupported_not_a_crash() -> None:
    options = spool_pb2.JobOptions(copies=1)
    media_col = Collection([Attribute.keyword("media-key", "iso_a4_210x297mm")])
    assert not apply(options, Attribute.collection("media", media_col), PRINTER)
    assert not apply(options, Attribute.boolean("copies", True), PRINTER)
    assert not apply(options, Attribute.integer("copies", 0), PRINTER)
    assert not apply(
        options, Attribute.keyword("sides", "two-sided-long-edge"), device_pb2.Printer()
    )
    assert options == spool_pb2.JobOptions(copies=1)
