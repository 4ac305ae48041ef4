"""A file to print: its size and format, found from its bytes before anything is sent."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from printfabric.formats import FORMAT_MIME, HEAD_SIZE, detect_format, is_xps_parts
from printfabric.v1 import common_pb2

from client.errors import DocumentError

CHUNK = 1 << 20
# What a user may name with --format.
FORMAT_NAMES: dict[str, int] = {
    "pdf": common_pb2.DOCUMENT_FORMAT_PDF,
    "ps": common_pb2.DOCUMENT_FORMAT_POSTSCRIPT,
    "pcl": common_pb2.DOCUMENT_FORMAT_PCL,
    "xps": common_pb2.DOCUMENT_FORMAT_XPS,
    "pwg": common_pb2.DOCUMENT_FORMAT_PWG_RASTER,
    "urf": common_pb2.DOCUMENT_FORMAT_URF,
    # The bytes go as they are and the printer makes of them what it can.
    "raw": common_pb2.DOCUMENT_FORMAT_OCTET_STREAM,
}
_LABELS: dict[int, str] = {
    common_pb2.DOCUMENT_FORMAT_PDF: "PDF",
    common_pb2.DOCUMENT_FORMAT_POSTSCRIPT: "PostScript",
    common_pb2.DOCUMENT_FORMAT_PCL: "PCL",
    common_pb2.DOCUMENT_FORMAT_XPS: "XPS",
    common_pb2.DOCUMENT_FORMAT_PWG_RASTER: "PWG raster",
    common_pb2.DOCUMENT_FORMAT_URF: "Apple raster",
    common_pb2.DOCUMENT_FORMAT_OCTET_STREAM: "raw",
}


@dataclass(frozen=True)
class Document:
    path: Path
    size: int
    format: int

    @property
    def mime(self) -> str:
        return FORMAT_MIME.get(self.format, "application/octet-stream")

    @property
    def label(self) -> str:
        return _LABELS.get(self.format, "raw")

    @property
    def name(self) -> str:
        return self.path.name

    async def chunks(self, advance: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
        """The file in 1 MiB chunks, read off the event loop; advance(n) after each."""
        try:
            file = await asyncio.to_thread(self.path.open, "rb")
        except OSError as exc:
            raise DocumentError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            while chunk := await asyncio.to_thread(file.read, CHUNK):
                if advance is not None:
                    advance(len(chunk))
                yield chunk
        finally:
            file.close()


def open_document(path: Path, forced: str = "") -> Document:
    """The document at path; DocumentError if it cannot be read or is no printable format."""
    try:
        with path.open("rb") as file:
            head = file.read(HEAD_SIZE)
            size = file.seek(0, 2)
    except IsADirectoryError:
        raise DocumentError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise DocumentError(f"{path} is empty: there is nothing to print")
    if forced:
        return Document(path, size, FORMAT_NAMES[forced])
    fmt = detect_format(head)
    if fmt == common_pb2.DOCUMENT_FORMAT_OCTET_STREAM and head.startswith(b"PK\x03\x04"):
        # The first 4 KiB may end before an XPS part's name; the zip's directory tells.
        fmt = _zip_format(path)
    if fmt == common_pb2.DOCUMENT_FORMAT_OCTET_STREAM:
        raise DocumentError(
            f"{path} is not a PDF, PostScript, PCL or XPS file, so no printer would print it; "
            "save or export it as PDF, or use --format if you know what the printer takes"
        )
    return Document(path, size, fmt)


def _zip_format(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return common_pb2.DOCUMENT_FORMAT_OCTET_STREAM
    if is_xps_parts(names):
        return common_pb2.DOCUMENT_FORMAT_XPS
    return common_pb2.DOCUMENT_FORMAT_OCTET_STREAM
