"""Document formats: MIME types <-> the spool's DocumentFormat (shared by gateway, node, client)."""

from __future__ import annotations

from printfabric.v1 import common_pb2

# MIME type (lowercase) -> DocumentFormat.
FORMATS: dict[str, int] = {
    "application/pdf": common_pb2.DOCUMENT_FORMAT_PDF,
    "application/postscript": common_pb2.DOCUMENT_FORMAT_POSTSCRIPT,
    "application/vnd.hp-pcl": common_pb2.DOCUMENT_FORMAT_PCL,
    "application/oxps": common_pb2.DOCUMENT_FORMAT_XPS,
    "application/vnd.ms-xpsdocument": common_pb2.DOCUMENT_FORMAT_XPS,
    "image/pwg-raster": common_pb2.DOCUMENT_FORMAT_PWG_RASTER,
    "image/urf": common_pb2.DOCUMENT_FORMAT_URF,
    "application/octet-stream": common_pb2.DOCUMENT_FORMAT_OCTET_STREAM,
}
# DocumentFormat -> the MIME type printers are told.
FORMAT_MIME: dict[int, str] = {
    common_pb2.DOCUMENT_FORMAT_PDF: "application/pdf",
    common_pb2.DOCUMENT_FORMAT_POSTSCRIPT: "application/postscript",
    common_pb2.DOCUMENT_FORMAT_PCL: "application/vnd.hp-PCL",
    common_pb2.DOCUMENT_FORMAT_XPS: "application/oxps",
    common_pb2.DOCUMENT_FORMAT_PWG_RASTER: "image/pwg-raster",
    common_pb2.DOCUMENT_FORMAT_URF: "image/urf",
}


def mime_type(document_format: int) -> str:
    return FORMAT_MIME.get(document_format, "application/octet-stream")
