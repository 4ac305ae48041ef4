"""IPP Everywhere printer and job attributes of a queue (RFC 8011, PWG 5100.14).

The gateway describes each cloud queue with them and the workstation client's local printer
(`printfabric serve-printer`) describes the queue it forwards to the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from printfabric.formats import FORMAT_MIME
from printfabric.ipp import (
    Attribute,
    Collection,
    JobState,
    Operation,
    PrinterState,
    RangeOfInteger,
    Resolution,
    ResolutionUnit,
    Tag,
)
from printfabric.v1 import device_pb2, spool_pb2

OPERATIONS = (
    Operation.PRINT_JOB,
    Operation.VALIDATE_JOB,
    Operation.CREATE_JOB,
    Operation.SEND_DOCUMENT,
    Operation.CANCEL_JOB,
    Operation.GET_JOB_ATTRIBUTES,
    Operation.GET_JOBS,
    Operation.GET_PRINTER_ATTRIBUTES,
    Operation.CANCEL_MY_JOBS,
    Operation.CLOSE_JOB,
    Operation.IDENTIFY_PRINTER,
)

# PWG media names with their size in hundredths of millimetres.
MEDIA: dict[str, tuple[int, int]] = {
    "iso_a4_210x297mm": (21000, 29700),
    "na_letter_8.5x11in": (21590, 27940),
    "na_legal_8.5x14in": (21590, 35560),
    "iso_a3_297x420mm": (29700, 42000),
    "iso_a5_148x210mm": (14800, 21000),
}
MEDIA_DEFAULT = "iso_a4_210x297mm"
MARGIN = 423  # 4.23 mm, a usual laser printer margin; 0 (borderless) is not offered
COPIES_MAX = 999
RESOLUTIONS = (300, 600)
# Raster documents (PWG raster, URF) are accepted at this resolution.
RASTER_RESOLUTIONS = (300,)
SIDES_ALL = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
COLOR_MODES = ("auto", "color", "monochrome")
QUALITIES = (3, 4, 5)
ORIENTATIONS = (3, 4, 5, 6)
SCALINGS = ("auto", "auto-fit", "fill", "fit", "none")
JOB_CREATION = (
    "copies",
    "finishings",
    "media",
    "media-col",
    "orientation-requested",
    "output-bin",
    "print-color-mode",
    "print-quality",
    "print-scaling",
    "printer-resolution",
    "sides",
)
STARTED = time.time()
# Sizes of the printer icons the gateway serves (PWG 5100.13: 48 and 128 pixels, plus 512).
ICON_SIZES = (48, 128, 512)

# Spool job state -> (IPP job-state, job-state-reasons).
JOB_STATES: dict[int, tuple[JobState, tuple[str, ...]]] = {
    spool_pb2.JOB_STATE_INCOMING: (JobState.PENDING_HELD, ("job-incoming",)),
    spool_pb2.JOB_STATE_HELD: (JobState.PENDING_HELD, ("job-hold-until-specified",)),
    spool_pb2.JOB_STATE_RELEASED: (JobState.PENDING, ("job-queued",)),
    spool_pb2.JOB_STATE_PRINTING: (JobState.PROCESSING, ("job-printing",)),
    spool_pb2.JOB_STATE_COMPLETED: (JobState.COMPLETED, ("job-completed-successfully",)),
    spool_pb2.JOB_STATE_FAILED: (JobState.ABORTED, ("aborted-by-system",)),
    spool_pb2.JOB_STATE_CANCELED: (JobState.CANCELED, ("job-canceled-by-user",)),
    spool_pb2.JOB_STATE_EXPIRED: (JobState.ABORTED, ("job-canceled-at-device",)),
}
OPEN_STATES = [
    spool_pb2.JOB_STATE_INCOMING,
    spool_pb2.JOB_STATE_HELD,
    spool_pb2.JOB_STATE_RELEASED,
    spool_pb2.JOB_STATE_PRINTING,
]
DONE_STATES = [
    spool_pb2.JOB_STATE_COMPLETED,
    spool_pb2.JOB_STATE_FAILED,
    spool_pb2.JOB_STATE_CANCELED,
    spool_pb2.JOB_STATE_EXPIRED,
]


def queue_formats(printer: device_pb2.Printer) -> list[str]:
    """document-format-supported of a queue: what it takes, plus octet-stream (detected)."""
    formats = [FORMAT_MIME[f] for f in printer.formats if f in FORMAT_MIME] or list(
        dict.fromkeys(FORMAT_MIME.values())
    )
    if "application/oxps" in formats:
        formats.append("application/vnd.ms-xpsdocument")
    return [*formats, "application/octet-stream"]


def _media_col(name: str) -> Collection:
    x, y = MEDIA[name]
    return Collection(
        [
            Attribute.collection(
                "media-size",
                Collection(
                    [Attribute.integer("x-dimension", x), Attribute.integer("y-dimension", y)]
                ),
            ),
            Attribute.keyword("media-size-name", name),
            Attribute.integer("media-bottom-margin", MARGIN),
            Attribute.integer("media-left-margin", MARGIN),
            Attribute.integer("media-right-margin", MARGIN),
            Attribute.integer("media-top-margin", MARGIN),
            Attribute.keyword("media-source", "auto"),
            Attribute.keyword("media-type", "stationery"),
        ]
    )


def _date(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _group_of(name: str) -> str:
    if name in JOB_TEMPLATE_PRINTER:
        return "job-template"
    return "printer-description"


# Printer attributes that describe job template attributes (RFC 8011 5.2).
JOB_TEMPLATE_PRINTER = frozenset(
    f"{base}-{suffix}"
    for base in (
        *JOB_CREATION,
        "number-up",
        "job-sheets",
        "multiple-document-handling",
        "page-ranges",
        "job-priority",
        "job-hold-until",
    )
    for suffix in ("default", "supported", "ready", "database")
) | {"media-size-supported", "media-source-supported", "media-type-supported"}


def printer_attributes(
    printer: device_pb2.Printer,
    queued_job_count: int,
    company: str,
    printer_uri: str,
    more_info: str,
    icon_base: str,
    *,
    authentication: str = "basic",
    printer_uuid: str | None = None,
    info: str | None = None,
    state_message: str = "Ready",
) -> list[Attribute]:
    """Every attribute of the queue's printer object, in one list.

    authentication is uri-authentication-supported; printer_uuid (a urn:uuid: URI) defaults to
    one derived from company and queue; info (printer-info) to the queue's display name.
    """
    color = printer.color
    duplex = printer.duplex
    now = time.time()
    sides = SIDES_ALL if duplex else SIDES_ALL[:1]
    modes = COLOR_MODES if color else ("monochrome",)
    formats = queue_formats(printer)
    device_id = (
        "MFG:PrintFabric;MDL:Cloud Queue;CMD:"
        + ",".join(
            {
                "application/pdf": "PDF",
                "application/postscript": "PS",
                "image/urf": "URF",
                "image/pwg-raster": "PWGRaster",
                "application/vnd.hp-PCL": "PCL",
                "application/oxps": "OXPS",
            }[f]
            for f in formats
            if f in FORMAT_MIME.values()
        )
        + ";"
    )
    name = printer.display_name or printer.name
    if printer_uuid is None:
        printer_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"printfabric:{company}:{printer.name}").urn
    urf = [
        "V1.4",
        "CP1",
        "W8",
        "RS300",
        *(["SRGB24"] if color else []),
        *(["DM1"] if duplex else []),
    ]
    raster_types = ["black_1", "sgray_8", *(["srgb_8"] if color else [])]
    attrs = [
        Attribute.charset("charset-configured", "utf-8"),
        Attribute.charset("charset-supported", "utf-8", "us-ascii"),
        Attribute.boolean("color-supported", color),
        Attribute.keyword("compression-supported", "none", "deflate", "gzip"),
        Attribute.integer("copies-default", 1),
        Attribute.range("copies-supported", RangeOfInteger(1, COPIES_MAX)),
        Attribute.mime_type("document-format-default", "application/octet-stream"),
        Attribute.mime_type("document-format-supported", *formats),
        Attribute.enum("finishings-default", 3),
        Attribute.enum("finishings-supported", 3),
        Attribute.natural_language("generated-natural-language-supported", "en"),
        Attribute.keyword("identify-actions-default", "display"),
        Attribute.keyword("identify-actions-supported", "display"),
        Attribute.keyword("ipp-features-supported", "ipp-everywhere"),
        Attribute.keyword("ipp-versions-supported", "1.1", "2.0"),
        Attribute.keyword("job-creation-attributes-supported", *JOB_CREATION),
        Attribute.boolean("job-ids-supported", True),
        Attribute.keyword("job-sheets-default", "none"),
        Attribute.keyword("job-sheets-supported", "none"),
        Attribute.keyword("media-default", MEDIA_DEFAULT),
        Attribute.keyword("media-supported", *MEDIA),
        Attribute.keyword("media-ready", MEDIA_DEFAULT),
        Attribute.collection("media-col-default", _media_col(MEDIA_DEFAULT)),
        Attribute.collection("media-col-ready", _media_col(MEDIA_DEFAULT)),
        Attribute.collection("media-col-database", *(_media_col(m) for m in MEDIA)),
        Attribute.keyword(
            "media-col-supported",
            "media-bottom-margin",
            "media-left-margin",
            "media-right-margin",
            "media-size",
            "media-size-name",
            "media-source",
            "media-top-margin",
            "media-type",
        ),
        Attribute.integer("media-bottom-margin-supported", MARGIN),
        Attribute.integer("media-left-margin-supported", MARGIN),
        Attribute.integer("media-right-margin-supported", MARGIN),
        Attribute.integer("media-top-margin-supported", MARGIN),
        Attribute.collection(
            "media-size-supported",
            *(
                Collection(
                    [Attribute.integer("x-dimension", x), Attribute.integer("y-dimension", y)]
                )
                for x, y in MEDIA.values()
            ),
        ),
        Attribute.keyword("media-source-supported", "auto"),
        Attribute.keyword("media-type-supported", "stationery"),
        Attribute.boolean("multiple-document-jobs-supported", False),
        Attribute.keyword(
            "multiple-document-handling-supported", "separate-documents-uncollated-copies"
        ),
        Attribute.integer("multiple-operation-time-out", 300),
        Attribute.keyword("multiple-operation-time-out-action", "abort-job"),
        Attribute.natural_language("natural-language-configured", "en"),
        Attribute.integer("number-up-default", 1),
        Attribute.integer("number-up-supported", 1),
        Attribute.enum("operations-supported", *(int(op) for op in OPERATIONS)),
        Attribute.enum("orientation-requested-default", 3),
        Attribute.enum("orientation-requested-supported", *ORIENTATIONS),
        Attribute.keyword("output-bin-default", "face-down"),
        Attribute.keyword("output-bin-supported", "face-down"),
        Attribute.boolean("page-ranges-supported", False),
        Attribute.integer("pages-per-minute", 30),
        *([Attribute.integer("pages-per-minute-color", 30)] if color else []),
        Attribute.keyword("pdl-override-supported", "attempted"),
        Attribute.keyword("print-color-mode-default", modes[0]),
        Attribute.keyword("print-color-mode-supported", *modes),
        Attribute.boolean("preferred-attributes-supported", False),
        Attribute.keyword("print-content-optimize-default", "auto"),
        Attribute.keyword("print-content-optimize-supported", "auto"),
        Attribute.keyword("print-rendering-intent-default", "auto"),
        Attribute.keyword("print-rendering-intent-supported", "auto"),
        Attribute.enum("print-quality-default", 4),
        Attribute.enum("print-quality-supported", *QUALITIES),
        Attribute.keyword("print-scaling-default", "auto"),
        Attribute.keyword("print-scaling-supported", *SCALINGS),
        Attribute.date_time("printer-config-change-date-time", _date(STARTED)),
        Attribute.integer("printer-config-change-time", int(STARTED)),
        Attribute.date_time("printer-current-time", _date(now)),
        Attribute.text("printer-device-id", device_id),
        Attribute.out_of_band("printer-geo-location", Tag.UNKNOWN),
        Attribute.keyword("printer-get-attributes-supported", "document-format"),
        Attribute.uri("printer-icons", *(f"{icon_base}/icons/printer-{n}.png" for n in ICON_SIZES)),
        Attribute.text("printer-info", name if info is None else info),
        Attribute.boolean("printer-is-accepting-jobs", True),
        Attribute.text("printer-location", printer.location),
        Attribute.text("printer-make-and-model", "PrintFabric Cloud Queue"),
        Attribute.uri("printer-more-info", more_info),
        Attribute.name_("printer-name", printer.name),
        Attribute.text("printer-organization", company),
        Attribute.text("printer-organizational-unit", ""),
        Attribute.resolution(
            "printer-resolution-default", Resolution(600, 600, ResolutionUnit.DPI)
        ),
        Attribute.resolution(
            "printer-resolution-supported",
            *(Resolution(r, r, ResolutionUnit.DPI) for r in RESOLUTIONS),
        ),
        Attribute.date_time("printer-state-change-date-time", _date(STARTED)),
        Attribute.integer("printer-state-change-time", int(STARTED)),
        Attribute.enum("printer-state", int(PrinterState.IDLE)),
        Attribute.text("printer-state-message", state_message),
        Attribute.keyword("printer-state-reasons", "none"),
        Attribute.integer("printer-up-time", int(now)),
        Attribute.uri("printer-uri-supported", printer_uri),
        Attribute.uri("printer-uuid", printer_uuid),
        Attribute.resolution(
            "pwg-raster-document-resolution-supported",
            *(Resolution(r, r, ResolutionUnit.DPI) for r in RASTER_RESOLUTIONS),
        ),
        Attribute.keyword("pwg-raster-document-sheet-back", "normal"),
        Attribute.keyword("pwg-raster-document-type-supported", *raster_types),
        Attribute.integer("queued-job-count", queued_job_count),
        Attribute.keyword("sides-default", "one-sided"),
        Attribute.keyword("sides-supported", *sides),
        Attribute.keyword("uri-authentication-supported", authentication),
        Attribute.keyword("uri-security-supported", "tls"),
        Attribute.keyword("urf-supported", *urf),
        Attribute.keyword("which-jobs-supported", "completed", "not-completed"),
    ]
    return attrs


def select_printer_attributes(
    attrs: Iterable[Attribute], requested: list[str] | None
) -> list[Attribute]:
    """The attributes requested-attributes asks for (RFC 8011 4.2.5.1, with its group names)."""
    wanted = set(requested or ["all"])
    if "all" in wanted:
        return [
            a for a in attrs if a.name != "media-col-database" or "media-col-database" in wanted
        ]
    out = []
    for a in attrs:
        group = _group_of(a.name)
        if a.name in wanted or group in wanted:
            if a.name == "media-col-database" and a.name not in wanted:
                continue
            out.append(a)
    return out


# Job description attributes by requested-attributes group.
JOB_TEMPLATE_JOB = frozenset({"copies", "media", "sides", "print-color-mode", "finishings"})


def job_attributes(
    job: spool_pb2.Job,
    printer_uri: str,
    requested: list[str] | None,
    default: tuple[str, ...] = ("all",),
) -> list[Attribute]:
    state, reasons = JOB_STATES.get(job.state, (JobState.PENDING, ("none",)))
    created = job.create_time.seconds
    completed = job.complete_time.seconds if job.HasField("complete_time") else 0
    processing = job.update_time.seconds if state >= JobState.PROCESSING else 0
    opts = job.options
    builders: dict[str, Callable[[], Attribute]] = {
        "job-id": lambda: Attribute.integer("job-id", job.number),
        "job-uri": lambda: Attribute.uri("job-uri", f"{printer_uri}/{job.number}"),
        "job-printer-uri": lambda: Attribute.uri("job-printer-uri", printer_uri),
        "job-name": lambda: Attribute.name_("job-name", job.title or "Untitled"),
        "job-originating-user-name": lambda: Attribute.name_(
            "job-originating-user-name", job.owner_login
        ),
        "job-state": lambda: Attribute.enum("job-state", int(state)),
        "job-state-reasons": lambda: Attribute.keyword("job-state-reasons", *reasons),
        "job-state-message": lambda: Attribute.text("job-state-message", job.state_message[:1023]),
        "job-printer-up-time": lambda: Attribute.integer("job-printer-up-time", int(time.time())),
        "time-at-creation": lambda: Attribute.integer("time-at-creation", created),
        "time-at-processing": lambda: (
            Attribute.integer("time-at-processing", processing)
            if processing
            else Attribute.out_of_band("time-at-processing", Tag.NO_VALUE)
        ),
        "time-at-completed": lambda: (
            Attribute.integer("time-at-completed", completed)
            if completed
            else Attribute.out_of_band("time-at-completed", Tag.NO_VALUE)
        ),
        "date-time-at-creation": lambda: Attribute.date_time(
            "date-time-at-creation", _date(created)
        ),
        "date-time-at-completed": lambda: (
            Attribute.date_time("date-time-at-completed", _date(completed))
            if completed
            else Attribute.out_of_band("date-time-at-completed", Tag.NO_VALUE)
        ),
        "job-k-octets": lambda: Attribute.integer(
            "job-k-octets", min((job.size_bytes + 1023) // 1024, 2**31 - 1)
        ),
        "job-impressions": lambda: Attribute.integer("job-impressions", job.page_count),
        "job-impressions-completed": lambda: Attribute.integer(
            "job-impressions-completed",
            job.page_count if job.state == spool_pb2.JOB_STATE_COMPLETED else 0,
        ),
        "number-of-documents": lambda: Attribute.integer(
            "number-of-documents", 0 if job.state == spool_pb2.JOB_STATE_INCOMING else 1
        ),
        "number-of-intervening-jobs": lambda: Attribute.integer("number-of-intervening-jobs", 0),
        "document-format": lambda: Attribute.mime_type(
            "document-format", FORMAT_MIME.get(job.format, "application/octet-stream")
        ),
        "copies": lambda: Attribute.integer("copies", opts.copies or 1),
        "sides": lambda: Attribute.keyword(
            "sides", "two-sided-long-edge" if opts.duplex else "one-sided"
        ),
        "print-color-mode": lambda: Attribute.keyword(
            "print-color-mode", "monochrome" if opts.mono else "auto"
        ),
        "media": lambda: Attribute.keyword("media", opts.media or MEDIA_DEFAULT),
        "finishings": lambda: Attribute.enum("finishings", 3),
    }
    wanted = set(requested or default)
    if "all" in wanted or ("job-description" in wanted and "job-template" in wanted):
        names = list(builders)
    else:
        names = [
            n
            for n in builders
            if n in wanted
            or ("job-template" in wanted and n in JOB_TEMPLATE_JOB)
            or ("job-description" in wanted and n not in JOB_TEMPLATE_JOB)
        ]
    return [builders[n]() for n in names]
