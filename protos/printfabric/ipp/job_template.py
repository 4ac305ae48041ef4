"""Job template attributes (RFC 8011 5.2) as a job's options: copies, sides, print-color-mode and
media are honoured; the other values a queue advertises (printfabric.ipp.everywhere) are taken
and change nothing, since the printer a job is released at decides them."""

from __future__ import annotations

from printfabric.ipp import everywhere as attrs
from printfabric.ipp.model import Attribute, Resolution
from printfabric.v1 import device_pb2, spool_pb2

# Advertised values that are accepted and do not change the job.
ACCEPTED: dict[str, tuple[object, ...]] = {
    "print-quality": attrs.QUALITIES,
    "orientation-requested": attrs.ORIENTATIONS,
    "finishings": (3,),
    "output-bin": ("face-down",),
    "print-scaling": attrs.SCALINGS,
    "print-content-optimize": ("auto",),
    "number-up": (1,),
    "job-sheets": ("none",),
    "multiple-document-handling": ("separate-documents-uncollated-copies",),
}


def apply(
    options: spool_pb2.JobOptions,
    attr: Attribute,
    printer: device_pb2.Printer,
    accepted: dict[str, tuple[object, ...]] = ACCEPTED,
) -> bool:
    """Takes one job template attribute into options; False if the queue does not support it.

    accepted: the attributes taken without effect, with their values.
    """
    if len(attr.values) != 1:
        return False
    name, value = attr.name, attr.values[0]
    if name == "copies":
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if not 1 <= value <= attrs.COPIES_MAX:
            return False
        options.copies = value
        return True
    if name == "sides":
        allowed = attrs.SIDES_ALL if printer.duplex else attrs.SIDES_ALL[:1]
        if value not in allowed:
            return False
        options.duplex = value != "one-sided"
        return True
    if name == "print-color-mode":
        allowed = attrs.COLOR_MODES if printer.color else ("monochrome",)
        if value not in allowed:
            return False
        options.mono = value == "monochrome"
        return True
    if name == "media":
        # A collection value is not a media name (and cannot be looked up: it is unhashable).
        if not isinstance(value, str) or value not in attrs.MEDIA:
            return False
        options.media = str(value)
        return True
    if name == "media-col":
        return True  # the size is what matters and the printer picks from its trays
    if name == "printer-resolution":
        return isinstance(value, Resolution) and any(
            value.x == r and value.y == r for r in attrs.RESOLUTIONS
        )
    if name in accepted:
        return value in accepted[name]
    return False
