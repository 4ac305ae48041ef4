"""What a spooled document is and how many pages it has, from its bytes alone."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import struct
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from printfabric import formats as shared_formats
from printfabric.formats import HEAD_SIZE
from pypdf import PdfReader

from cloud.domain.enums import DocumentFormat

__all__ = ["HEAD_SIZE", "detect_format", "format_from_mime"]

# The enum's own MIME types (UNSPECIFIED shares octet-stream with OCTET_STREAM), plus aliases.
_MIME_FORMATS = {
    fmt.mime_type.lower(): fmt for fmt in DocumentFormat if fmt is not DocumentFormat.UNSPECIFIED
} | {
    "application/vnd.hp-pclxl": DocumentFormat.PCL,
    "application/vnd.ms-xpsdocument": DocumentFormat.XPS,
}


def format_from_mime(mime: str) -> DocumentFormat | None:
    """The format a MIME type names, ignoring case and parameters; None for any other type."""
    return _MIME_FORMATS.get(mime.split(";", 1)[0].strip().lower())


def detect_format(head: bytes) -> DocumentFormat:
    """The format of a document from its first bytes (up to HEAD_SIZE); OCTET_STREAM if unknown."""
    return DocumentFormat(shared_formats.detect_format(head))


class StreamSniffer:
    """Watches a job's bytes go by: keeps the head for detect_format, hashes and counts them."""

    __slots__ = ("_hash", "_head", "_size")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_SIZE:
            self._head += chunk[: HEAD_SIZE - len(self._head)]
        self._hash.update(chunk)
        self._size += len(chunk)

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha256_hex(self) -> str:
        return self._hash.hexdigest()


_WRITE_BATCH = 1 << 20


async def stream_to_file(
    part: Path,
    chunks: AsyncIterator[bytes],
    limit: int,
    over_limit: Callable[[], Exception],
) -> StreamSniffer:
    """Writes chunks into the new file part (never whole in memory), hashed and counted as they
    pass; raises over_limit() as soon as more than limit bytes arrived.

    Small chunks are gathered so the thread hop is paid per MiB, not per chunk; writelines
    avoids copying them into one buffer.
    """
    sniffer = StreamSniffer()
    fh: IO[bytes] = await asyncio.to_thread(_new_file, part)
    synced = False
    try:
        pending: list[bytes] = []
        pending_bytes = 0
        async for chunk in chunks:
            sniffer.feed(chunk)
            if sniffer.size > limit:
                raise over_limit()
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= _WRITE_BATCH:
                await asyncio.to_thread(fh.writelines, pending)
                pending, pending_bytes = [], 0
        # The last bytes, then fsync and close, in one hop: a job is acknowledged only once its
        # document is on disk (the database row that names it is committed durably too).
        await asyncio.to_thread(_write_sync_close, fh, pending)
        synced = True
    finally:
        if not synced:
            await asyncio.to_thread(fh.close)
    return sniffer


def _new_file(part: Path) -> IO[bytes]:
    """part, created; its folder too if it went missing (a staging folder cleaned by hand)."""
    try:
        return part.open("xb")
    except FileNotFoundError:
        part.parent.mkdir(parents=True, exist_ok=True)
        return part.open("xb")


def _write_sync_close(fh: IO[bytes], pending: list[bytes]) -> None:
    try:
        if pending:
            fh.writelines(pending)
        fh.flush()
        os.fsync(fh.fileno())
    finally:
        fh.close()


def count_pages(path: Path, fmt: DocumentFormat) -> int:
    """Pages in the document at path, or 0 when its format does not tell or it is malformed.

    Blocking: run it in a thread. Reads the file in a streaming way, except that pypdf reads
    a PDF whose cross-reference table is broken in full to rebuild it. Malformed content never
    raises; an OSError opening the file does, as a missing spool file is not the document's fault.
    PCL always counts 0: its page breaks (form feeds, resets, PCL XL EndPage) can only be told
    from the same bytes inside raster data by a full tokenizer, so a cheap count would be a guess.
    """
    counter = _COUNTERS.get(fmt)
    if counter is None:
        return 0
    with path.open("rb") as file:
        return counter(file)


def _count_pdf(file: BinaryIO) -> int:
    # An open file rather than the path: given a path, pypdf reads the whole file into memory.
    try:
        return len(PdfReader(file, strict=False).pages)
    except Exception:  # pypdf lets KeyError, RecursionError, ... escape on hostile input
        return 0


_BLOCK = 64 * 1024
_DSC_LINE_MAX = 256  # DSC comment lines are at most 255 bytes; longer lines are data
_EOL = re.compile(rb"\r\n|\r|\n")
_DSC_PAGES = re.compile(rb"%%Pages:[ \t]*(\(atend\)|\d+)")


def _lines(file: BinaryIO) -> Iterator[bytes]:
    """Lines ending in CR, LF or CRLF, cut to _DSC_LINE_MAX bytes so binary data stays cheap."""
    carry = b""
    while block := file.read(_BLOCK):
        *lines, carry = _EOL.split(carry + block)
        carry = carry[:_DSC_LINE_MAX]
        for line in lines:
            yield line[:_DSC_LINE_MAX]
    if carry:
        yield carry


def _count_postscript(file: BinaryIO) -> int:
    """DSC %%Pages from the header, else from the trailer, else the %%Page: comments counted."""
    header = _dsc_header_pages(file)
    if header is not None:
        return header
    trailer = _dsc_trailer_pages(file)
    if trailer is not None:
        return trailer
    file.seek(0)
    depth = pages = 0
    for line in _lines(file):
        if line.startswith(b"%%BeginDocument"):
            depth += 1
        elif line.startswith(b"%%EndDocument"):
            depth = max(0, depth - 1)
        elif depth == 0 and line.startswith(b"%%Page:"):
            pages += 1
    return pages


def _dsc_header_pages(file: BinaryIO) -> int | None:
    started = False
    for skipped, line in enumerate(_lines(file)):
        if not started:
            # The header starts at %!, possibly after a PJL envelope or Ctrl-D on earlier lines.
            started = b"%!" in line
            if not started and skipped >= 64:
                return None
            continue
        if line.startswith(b"%%EndComments") or not line.startswith(b"%"):
            return None
        if match := _DSC_PAGES.match(line):
            value = match.group(1)
            return None if value == b"(atend)" else int(value)
    return None


def _dsc_trailer_pages(file: BinaryIO) -> int | None:
    """%%Pages in the last trailer of the file, which belongs to the outermost document."""
    start = max(0, file.seek(0, 2) - _BLOCK)
    file.seek(start)
    lines = _lines(file)
    if start:
        next(lines, None)  # begins mid-line
    pages: int | None = None
    in_trailer = False
    for line in lines:
        if line.startswith(b"%%Trailer"):
            in_trailer, pages = True, None
        elif line.startswith(b"%%EndDocument"):
            # That trailer closed an embedded document, not ours.
            in_trailer, pages = False, None
        elif in_trailer and (match := _DSC_PAGES.match(line)) and match.group(1).isdigit():
            pages = int(match.group(1))
    return pages


def _count_xps(file: BinaryIO) -> int:
    """FixedPage parts in the package; zipfile reads only the central directory to list them."""
    try:
        with zipfile.ZipFile(file) as package:
            names = package.namelist()
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError):
        # What zipfile raises for a corrupt directory: an unknown version, a name that is not
        # the UTF-8 its flag claims, an offset that makes it seek before the file's start.
        return 0
    return len(
        {part for name in names if (part := shared_formats.opc_part_name(name)).endswith(".fpage")}
    )


def _count_urf(file: BinaryIO) -> int:
    """The page count in the file header: UNIRAST\\0, then a big-endian uint32."""
    header = file.read(12)
    if len(header) < 12 or not header.startswith(b"UNIRAST\x00"):
        return 0
    return int.from_bytes(header[8:12], "big")


_PWG_HEADER_SIZE = 1796


def _count_pwg_raster(file: BinaryIO) -> int:
    """Pages found by walking each page's compressed lines to the next header, as CUPS reads.

    Any inconsistency (a header that does not add up, a page cut short) gives 0, not a guess.
    The walk costs time in proportion to the file: a few MB/s when every run is one pixel.
    """
    if file.read(4) != b"RaS2":
        return 0
    pages = 0
    while header := file.read(_PWG_HEADER_SIZE):
        if len(header) < _PWG_HEADER_SIZE:
            return 0
        width, height, _, bits_per_color, bits_per_pixel, bytes_per_line, color_order = (
            struct.unpack_from(">7I", header, 372)
        )
        pixel_size = (bits_per_pixel + 7) // 8
        valid = (
            0 < bits_per_pixel <= 240
            and 0 < bits_per_color <= 16
            and color_order == 0  # PWG raster is always chunked
            and height > 0
            and bytes_per_line == (width * bits_per_pixel + 7) // 8 > 0
            and bytes_per_line % pixel_size == 0
        )
        if not valid or not _skip_pwg_lines(file, height, bytes_per_line, pixel_size):
            return 0
        pages += 1
    return pages


def _skip_pwg_lines(file: BinaryIO, height: int, line_size: int, pixel_size: int) -> bool:
    """Skips one page of lines; a line is a repeat count, then PackBits-like pixel runs.

    Reads a byte at a time: the file object's own buffer makes that cheap enough.
    """
    lines = 0
    while lines < height:
        if not (repeat := file.read(1)):
            return False
        lines += repeat[0] + 1
        left = line_size
        while left > 0:
            if not (control := file.read(1)):
                return False
            if control[0] == 128:  # rest of the line is blank
                left = 0
                continue
            if control[0] > 128:  # literal pixels; like CUPS, a run stops at the line's end
                run = skip = min((257 - control[0]) * pixel_size, left)
            else:  # one pixel repeated
                run, skip = min((control[0] + 1) * pixel_size, left), pixel_size
            if len(file.read(skip)) < skip:
                return False
            left -= run
    return True


_COUNTERS: dict[DocumentFormat, Callable[[BinaryIO], int]] = {
    DocumentFormat.PDF: _count_pdf,
    DocumentFormat.POSTSCRIPT: _count_postscript,
    DocumentFormat.XPS: _count_xps,
    DocumentFormat.URF: _count_urf,
    DocumentFormat.PWG_RASTER: _count_pwg_raster,
}
