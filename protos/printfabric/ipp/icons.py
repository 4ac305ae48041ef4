"""The printer icon operating systems show for a printer (printer-icons): a PNG drawn here."""

from __future__ import annotations

import struct
import zlib
from functools import cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@cache
def printer_icon(size: int) -> bytes:
    """A size x size RGBA PNG: a grey printer with a white sheet coming out of it."""
    rows = []
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            fx, fy = x / size, y / size
            if 0.25 <= fx <= 0.75 and 0.1 <= fy <= 0.45:
                pixel = (255, 255, 255, 255)  # the sheet
            elif 0.1 <= fx <= 0.9 and 0.4 <= fy <= 0.85:
                pixel = (70, 80, 95, 255)  # the body
            else:
                pixel = (0, 0, 0, 0)
            row += bytes(pixel)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )
