"""Spooled documents are recognised and their pages counted from their bytes alone."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from cloud.domain.enums import DocumentFormat
from cloud.domain.formats import (
    HEAD_SIZE,
    StreamSniffer,
    count_pages,
    detect_format,
    format_from_mime,
)

UEL = b"\x1b%-12345X"


def pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pjl(language: bytes | None, body: bytes) -> bytes:
    enter = b"@PJL ENTER LANGUAGE=" + language + b"\r\n" if language else b""
    header = UEL + b'@PJL JOB NAME="report"\r\n@PJL SET DUPLEX=ON\r\n' + enter
    return header + body + UEL + b"@PJL EOJ\r\n" + UEL


def postscript(*lines: bytes) -> bytes:
    return b"%!PS-Adobe-3.0\n" + b"\n".join(lines) + b"\n%%EOF\n"


def page(number: int) -> bytes:
    return b"%%%%Page: %d %d\nshowpage" % (number, number)


def zip_of(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name in names:
            package.writestr(name, b"<x/>" * 50)
    return out.getvalue()


XPS_PARTS = (
    "_rels/.rels",
    "FixedDocumentSequence.fdseq",
    "Documents/1/FixedDocument.fdoc",
    "Documents/1/Pages/1.fpage",
    "Documents/1/Pages/2.fpage",
    "[Content_Types].xml",
)


def pwg_page(width: int, lines: list[bytes], height: int | None = None) -> bytes:
    """One 8-bit sGray page; each compressed line already carries its repeat byte."""
    header = bytearray(1796)
    header[0:9] = b"PwgRaster"
    struct.pack_into(">7I", header, 372, width, height or len(lines), 0, 8, 8, width, 0)
    return bytes(header) + b"".join(lines)


# Two pages of 8x4 pixels: a white line repeated 3 times (repeat byte 2) and a line of
# literal pixels; then a line of one pixel repeated 8 times and the rest cleared with 128.
PWG_RASTER = (
    b"RaS2"
    + pwg_page(8, [b"\x02\x80", b"\x00\xf9" + bytes(range(8))], height=4)
    + pwg_page(8, [b"\x00\x07\x10", b"\x00\x01\x20\x80"])
)
URF = b"UNIRAST\x00" + struct.pack(">I", 5) + bytes(32)
PCL_XL = b") HP-PCL XL;3;0;Comment Copyright Hewlett-Packard\n\xc0\x00\xf8\x86\x41"

SAMPLES: dict[str, tuple[bytes, DocumentFormat, int]] = {
    "3-page pdf": (pdf(3), DocumentFormat.PDF, 3),
    "pdf behind pjl": (pjl(b"PDF", pdf(3)), DocumentFormat.PDF, 3),
    "pdf after bom and blank lines": (b"\xef\xbb\xbf\r\n  \n" + pdf(2), DocumentFormat.PDF, 2),
    "garbage pdf": (b"%PDF-1.7\n1 0 obj << /Type /Pages /Kids [", DocumentFormat.PDF, 0),
    "postscript with %%Pages: 2": (
        postscript(b"%%Pages: 2", b"%%EndComments", page(1), page(2)),
        DocumentFormat.POSTSCRIPT,
        2,
    ),
    "postscript with pages (atend)": (
        postscript(b"%%Pages: (atend)", b"%%EndComments", page(1), b"%%Trailer", b"%%Pages: 1"),
        DocumentFormat.POSTSCRIPT,
        1,
    ),
    "postscript after ctrl-d with only %%Page: comments": (
        b"\x04" + postscript(b"%%Creator: x", page(1), page(2), page(3)),
        DocumentFormat.POSTSCRIPT,
        3,
    ),
    "postscript behind pjl": (
        pjl(b"POSTSCRIPT", postscript(b"%%Pages: 4")),
        DocumentFormat.POSTSCRIPT,
        4,
    ),
    "pcl behind pjl": (pjl(b"PCL", b"\x1bE\x1b&l0O text\x0c\x1bE"), DocumentFormat.PCL, 0),
    "pcl xl behind pjl": (pjl(b"PCLXL", PCL_XL), DocumentFormat.PCL, 0),
    "pcl behind pjl without a language": (pjl(None, b"\x1b&l1O\x1b(s0P"), DocumentFormat.PCL, 0),
    "bare pcl xl": (PCL_XL, DocumentFormat.PCL, 0),
    "pjl around an unknown language": (pjl(b"ZJS", b"JZJZ"), DocumentFormat.OCTET_STREAM, 0),
    "xps with 2 pages": (zip_of(*XPS_PARTS), DocumentFormat.XPS, 2),
    "interleaved xps with 2 pages": (
        zip_of(
            *XPS_PARTS[:3],
            "Documents/1/Pages/1.fpage/[0].piece",
            "Documents/1/Pages/2.fpage",
            "Documents/1/Pages/1.fpage/[1].last.piece",
        ),
        DocumentFormat.XPS,
        2,
    ),
    "docx is not xps": (
        zip_of("[Content_Types].xml", "_rels/.rels", "word/document.xml"),
        DocumentFormat.OCTET_STREAM,
        0,
    ),
    "plain zip": (zip_of("photos/a.jpg", "notes.txt"), DocumentFormat.OCTET_STREAM, 0),
    "urf with 5 pages": (URF, DocumentFormat.URF, 5),
    "pwg raster with 2 pages": (PWG_RASTER, DocumentFormat.PWG_RASTER, 2),
    "pwg raster cut short": (PWG_RASTER[:-3], DocumentFormat.PWG_RASTER, 0),
    "pwg raster header of zeros": (b"RaS2" + bytes(1796), DocumentFormat.PWG_RASTER, 0),
    "random bytes": (b"\x8f" + random.Random(7).randbytes(5000), DocumentFormat.OCTET_STREAM, 0),
    "empty file": (b"", DocumentFormat.OCTET_STREAM, 0),
}


@pytest.mark.parametrize(("data", "fmt", "pages"), SAMPLES.values(), ids=SAMPLES.keys())
def test_sample_documents_are_recognised_and_counted(
    tmp_path: Path, data: bytes, fmt: DocumentFormat, pages: int
) -> None:
    path = tmp_path / "job"
    path.write_bytes(data)

    assert detect_format(data[:HEAD_SIZE]) is fmt
    assert count_pages(path, fmt) == pages


def test_postscript_trailer_is_found_past_a_long_body(tmp_path: Path) -> None:
    body = [page(n) + b"\n" + b"0 0 moveto " * 2000 for n in range(1, 8)]
    path = tmp_path / "long.ps"
    path.write_bytes(postscript(b"%%Pages: (atend)", *body, b"%%Trailer", b"%%Pages: 7"))

    assert path.stat().st_size > 64 * 1024
    assert count_pages(path, DocumentFormat.POSTSCRIPT) == 7


def test_postscript_ignores_pages_of_an_embedded_eps(tmp_path: Path) -> None:
    eps = (b"%%BeginDocument: logo.eps", b"%!PS-Adobe-3.0 EPSF-3.0", b"%%Pages: 1", page(1))
    trailer = (b"%%Trailer", b"%%Pages: 9", b"%%EndDocument")
    path = tmp_path / "embedded.ps"
    path.write_bytes(postscript(b"%%Pages: (atend)", page(1), *eps, *trailer, page(2)))

    assert count_pages(path, DocumentFormat.POSTSCRIPT) == 2


def test_postscript_with_classic_mac_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "mac.ps"
    path.write_bytes(postscript(page(1), page(2)).replace(b"\n", b"\r"))

    assert count_pages(path, DocumentFormat.POSTSCRIPT) == 2


def test_xps_whose_directory_claims_a_future_zip_version_counts_zero(tmp_path: Path) -> None:
    data = bytearray(zip_of(*XPS_PARTS))
    directory = data.index(b"PK\x01\x02")
    data[directory + 6] = 0xFF  # version needed to extract: zipfile raises NotImplementedError
    path = tmp_path / "future.xps"
    path.write_bytes(data)

    assert detect_format(bytes(data[:HEAD_SIZE])) is DocumentFormat.XPS
    assert count_pages(path, DocumentFormat.XPS) == 0


def test_formats_that_do_not_tell_count_zero_pages(tmp_path: Path) -> None:
    path = tmp_path / "job"
    path.write_bytes(pdf(1))

    for fmt in (DocumentFormat.UNSPECIFIED, DocumentFormat.OCTET_STREAM, DocumentFormat.PCL):
        assert count_pages(path, fmt) == 0


def test_a_missing_spool_file_is_an_error_not_zero_pages(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        count_pages(tmp_path / "gone", DocumentFormat.PDF)


@pytest.mark.parametrize(
    ("mime", "fmt"),
    [
        ("application/pdf", DocumentFormat.PDF),
        ("Application/PostScript", DocumentFormat.POSTSCRIPT),
        ("application/vnd.hp-PCL", DocumentFormat.PCL),
        ("application/vnd.hp-pclxl", DocumentFormat.PCL),
        ("application/oxps", DocumentFormat.XPS),
        ("application/vnd.ms-xpsdocument", DocumentFormat.XPS),
        ("image/pwg-raster", DocumentFormat.PWG_RASTER),
        ("image/urf", DocumentFormat.URF),
        ("application/octet-stream", DocumentFormat.OCTET_STREAM),
        ("application/pdf; charset=binary", DocumentFormat.PDF),
        (" IMAGE/URF ;x=y", DocumentFormat.URF),
        ("text/plain", None),
        ("image/jpeg", None),
        ("", None),
    ],
)
def test_mime_types_name_formats(mime: str, fmt: DocumentFormat | None) -> None:
    assert format_from_mime(mime) is fmt


def test_every_format_has_a_mime_type_that_maps_back() -> None:
    for fmt in DocumentFormat:
        if fmt is not DocumentFormat.UNSPECIFIED:
            assert format_from_mime(fmt.mime_type) is fmt


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, or a real sample truncated or overwritten in places, to reach deep."""
    noise = draw(st.binary(max_size=512))
    if draw(st.booleans()):
        return noise
    sample = draw(st.sampled_from([data for data, _, _ in SAMPLES.values() if data]))
    at = draw(st.integers(0, len(sample)))
    if draw(st.booleans()):
        return sample[:at]
    return sample[:at] + noise + sample[at + len(noise) :]


# The job file is rewritten for every example, so sharing one tmp_path between them is safe.
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=documents(), fmt=st.sampled_from(DocumentFormat))
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes, fmt: DocumentFormat) -> None:
    path = tmp_path / "job"
    path.write_bytes(data)

    assert isinstance(detect_format(data[:HEAD_SIZE]), DocumentFormat)
    assert count_pages(path, fmt) >= 0


@given(data=st.binary(max_size=3 * HEAD_SIZE), cuts=st.lists(st.integers(0, 3 * HEAD_SIZE)))
def test_sniffer_is_the_same_however_the_stream_is_chunked(data: bytes, cuts: list[int]) -> None:
    sniffer = StreamSniffer()
    bounds = [0, *sorted(cut for cut in cuts if cut <= len(data)), len(data)]
    for start, end in pairwise(bounds):
        sniffer.feed(data[start:end])

    assert sniffer.head == data[:HEAD_SIZE]
    assert sniffer.size == len(data)
    assert sniffer.sha256_hex == hashlib.sha256(data).hexdigest()


def test_sniffer_head_feeds_detection() -> None:
    sniffer = StreamSniffer()
    for chunk in (b"%P", b"DF-1.7\n", bytes(10_000)):
        sniffer.feed(chunk)

    assert detect_format(sniffer.head) is DocumentFormat.PDF
    assert len(sniffer.head) == HEAD_SIZE
