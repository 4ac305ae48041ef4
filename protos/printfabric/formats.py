"""Document formats: MIME types <-> the spool's DocumentFormat, and detection from the first bytes.

Shared by the cloud (which checks what it spools), the gateway, the node and the client (which
tells the user before sending a file no printer can print).
"""

from __future__ import annotations

import re
import struct

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


class _F:
    """DocumentFormat values, short for the detection tables below."""

    PDF = common_pb2.DOCUMENT_FORMAT_PDF
    POSTSCRIPT = common_pb2.DOCUMENT_FORMAT_POSTSCRIPT
    PCL = common_pb2.DOCUMENT_FORMAT_PCL
    XPS = common_pb2.DOCUMENT_FORMAT_XPS
    PWG_RASTER = common_pb2.DOCUMENT_FORMAT_PWG_RASTER
    URF = common_pb2.DOCUMENT_FORMAT_URF
    OCTET_STREAM = common_pb2.DOCUMENT_FORMAT_OCTET_STREAM


HEAD_SIZE = 4096
"""How many leading bytes detect_format looks at."""

_BOM = b"\xef\xbb\xbf"
# Ctrl-D ends a previous PostScript job; Windows drivers often send one before the next job.
_PREAMBLE_BYTES = frozenset(b" \t\r\n\x0c\x04")
_PREAMBLE_MAX = 1024  # Acrobat accepts %PDF- this far in; drivers never pad more
_UEL = b"\x1b%-12345X"
_PJL_ENTER = re.compile(rb"@PJL[ \t]+ENTER[ \t]+LANGUAGE[ \t]*=[ \t]*([A-Za-z0-9_-]+)", re.I)
_PJL_LANGUAGES = {
    b"PDF": _F.PDF,
    b"POSTSCRIPT": _F.POSTSCRIPT,
    b"XPS": _F.XPS,
}
# Reset (ESC E) or a parameterised command such as ESC &l1O, ESC *t300R, ESC (s0P, ESC (8U.
_PCL_ESCAPE = re.compile(rb"\x1b(?:E|[&*()][`-~]?[-+]?[0-9.]+[@-Z`-~])")
# The binding byte before the name says ASCII or which byte order; all three are PCL XL.
_PCL_XL = re.compile(rb"['()] HP-PCL XL;")
_ZIP_LOCAL = b"PK\x03\x04"
# OPC lets one part be split into pieces named part/[0].piece ... part/[n].last.piece.
_OPC_PIECE = re.compile(r"/\[\d+\](?:\.last)?\.piece$")
_XPS_SUFFIXES = (".fdseq", ".fdoc", ".fpage")


def detect_format(head: bytes) -> int:
    """The format of a document from its first bytes (up to HEAD_SIZE); OCTET_STREAM if unknown."""
    binary = _binary_format(head)
    if binary is not None:
        return binary
    start = len(_BOM) if head.startswith(_BOM) else 0
    limit = min(len(head), _PREAMBLE_MAX)
    while start < limit and head[start] in _PREAMBLE_BYTES:
        start += 1
    text = head[start:]
    if text.startswith((_UEL, b"@PJL")):
        return _pjl_format(text)
    return _text_format(text) or _F.OCTET_STREAM


def _binary_format(data: bytes) -> int | None:
    if data.startswith(b"RaS2"):
        return _F.PWG_RASTER
    if data.startswith(b"UNIRAST\x00"):
        return _F.URF
    if data.startswith(_ZIP_LOCAL):
        xps = is_xps_parts(_zip_entry_names(data))
        return _F.XPS if xps else _F.OCTET_STREAM
    return None


def _text_format(data: bytes) -> int | None:
    if data.startswith(b"%PDF-"):
        return _F.PDF
    if data.startswith(b"%!"):
        return _F.POSTSCRIPT
    if _PCL_ESCAPE.match(data) or _PCL_XL.match(data):
        return _F.PCL
    return None


def _pjl_format(data: bytes) -> int:
    """A PJL job declares its language; without ENTER LANGUAGE the printer sniffs the body."""
    pos = 0
    while True:
        while pos < len(data) and data[pos] in b"\r\n\t ":
            pos += 1
        if data.startswith(_UEL, pos):
            pos += len(_UEL)
        elif data.startswith(b"@PJL", pos):
            end = data.find(b"\n", pos)
            line, pos = (data[pos:], len(data)) if end < 0 else (data[pos:end], end + 1)
            if enter := _PJL_ENTER.match(line):
                language = enter.group(1).upper()
                if language.startswith(b"PCL"):  # PCL, PCLXL, PCL5C, PCL3GUI ...
                    return _F.PCL
                return _PJL_LANGUAGES.get(language, _F.OCTET_STREAM)
        else:
            return _text_format(data[pos:]) or _F.OCTET_STREAM


def _zip_entry_names(data: bytes) -> list[str]:
    """Names of the local file headers found in the leading bytes of a zip."""
    names: list[str] = []
    pos = 0
    while (pos := data.find(_ZIP_LOCAL, pos)) >= 0 and pos + 30 <= len(data):
        flags, size, name_len, extra_len = struct.unpack_from("<2xH10xI4xHH", data, pos + 4)
        names.append(data[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace"))
        if flags & 0x08 or size == 0xFFFFFFFF:
            # Size is in a trailing descriptor or zip64 extra: search for the next header.
            pos += 30 + name_len
        else:
            pos += 30 + name_len + extra_len + size
    return names


def opc_part_name(name: str) -> str:
    return _OPC_PIECE.sub("", name).lower()


def is_xps_parts(names: list[str]) -> bool:
    """[Content_Types].xml and _rels/.rels are in every OPC file (docx too), so need more."""
    parts = {opc_part_name(name) for name in names}
    if any(part.endswith(_XPS_SUFFIXES) for part in parts):
        return True
    opc = "[content_types].xml" in parts or "_rels/.rels" in parts
    return opc and any(part.startswith("documents/") for part in parts)
