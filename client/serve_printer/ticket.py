"""Job template attributes (RFC 8011 5.2) as the forwarded job's options, the way the gateway
takes them (printfabric.ipp.job_template), and two things more: a media-col names its size, and
print-rendering-intent (advertised) is accepted too."""

from __future__ import annotations

from printfabric.ipp import Attribute, Collection, job_template
from printfabric.ipp import everywhere as attrs
from printfabric.v1 import device_pb2, spool_pb2

_ACCEPTED: dict[str, tuple[object, ...]] = {
    **job_template.ACCEPTED,
    "print-rendering-intent": ("auto",),
}


def apply(ticket: spool_pb2.JobOptions, attr: Attribute, printer: device_pb2.Printer) -> bool:
    """Takes one job template attribute into ticket; False if the queue does not support it."""
    if attr.name == "media-col" and len(attr.values) == 1:
        # The size is what matters (the printer picks the tray): take a known size's name.
        value = attr.values[0]
        if isinstance(value, Collection):
            size_name = value.get("media-size-name")
            if size_name is not None and size_name.value in attrs.MEDIA:
                ticket.media = str(size_name.value)
        return True
    return job_template.apply(ticket, attr, printer, _ACCEPTED)
