# ruff: noqa: F811  (the tests take the imported fixtures as arguments)
"""The CUPS test harness (tests/support/cups.py) against the real peers: cupsd, ippeveprinter,
ipptool, lpadmin and lp. The gateway's conformance tests build on what these prove works.
"""

from __future__ import annotations

import base64
import datetime
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader

from tests.support.cups import (
    IppEvePrinter,
    PrivateCupsd,
    cups_avahi,  # noqa: F401  (fixture behind ippeveprinter)
    cupsd,  # noqa: F401  (fixture)
    ippeveprinter,  # noqa: F401  (fixture)
    ipptool_dir,  # noqa: F401  (fixture)
    ipptool_print_rate,
    ipptool_print_throughput,
    make_big_document,
    require,
    run_ipptool,
)

# Each test takes < 1 s once the documents are cached (the first run makes them in ~5 s).
pytestmark = pytest.mark.timeout(60)

PRINT_JOB_11 = "RFC 8011 section 4.2.1: Print-Job Operation"


def test_workdir_has_every_document_the_suites_print(ipptool_dir: Path) -> None:
    for name in (
        "document-a4.pdf",
        "document-letter.ps",
        "color.jpg",
        "gray.jpg",
        "onepage-a4.pdf",
    ):
        assert (ipptool_dir / name).stat().st_size > 500, name
    assert (ipptool_dir / "document-a4.pdf").read_bytes().startswith(b"%PDF-")
    assert (ipptool_dir / "document-a4.ps").read_bytes().startswith(b"%!PS")
    assert (ipptool_dir / "color.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    sample = ipptool_dir / "pwg-raster-samples-600dpi/cmyk-8/document-a4-cmyk-8-600dpi.pwg"
    data = sample.read_bytes()
    assert data.startswith(b"RaS2PwgRaster")
    header = data[4 : 4 + 1796]
    fields = struct.unpack(">" + "I" * 385, header[256:1796])
    assert fields[5:7] == (600, 600)  # HWResolution
    assert fields[24:26] == (595, 842)  # PageSize in points
    assert fields[32] == 8 and fields[36] == 6  # cupsBitsPerColor, cupsColorSpace (CMYK)
    assert header[1732:].rstrip(b"\0") == b"iso_a4_210x297mm"
    assert data.count(b"PwgRaster\0") == 2  # two pages
    samples = list(ipptool_dir.glob("pwg-raster-samples-*dpi/*/*.pwg"))
    assert len(samples) == 144


def test_ipp_1_1_suite_against_cupsd(cupsd: PrivateCupsd, ipptool_dir: Path) -> None:
    """(a) ipptool's IPP/1.1 suite against a raw file:///dev/null queue of a private cupsd."""
    cupsd.add_queue("null", "file:///dev/null")
    result = run_ipptool(
        cupsd.uri("null"),
        "ipp-1.1.test",
        workdir=ipptool_dir,
        document="document-a4.pdf",
        version="1.1",
    )
    print(result.summary())
    assert not any(name == "(ipptool)" for name, _ in result.failed), result.summary()
    assert len(result.passed) > 20, result.summary()
    assert PRINT_JOB_11 in result.passed
    assert len(result.passed) + len(result.failed) + len(result.skipped) == len(result.tests)


def test_ipp_everywhere_suite_reads_every_document(cupsd: PrivateCupsd, ipptool_dir: Path) -> None:
    """ipp-everywhere.test (which includes ipp-2.0 and ipp-1.1) parses: no document is missing.

    A raw cupsd queue is no IPP Everywhere printer: it fails the attribute checks and skips the
    raster prints, but ipptool must get through the whole file (one missing FILE aborts it).
    """
    cupsd.add_queue("null", "file:///dev/null")
    result = run_ipptool(
        cupsd.uri("null"), "ipp-everywhere.test", workdir=ipptool_dir, document="document-a4.pdf"
    )
    print(result.summary())
    assert not any(name == "(ipptool)" for name, _ in result.failed), result.summary()
    assert PRINT_JOB_11 in result.passed
    assert len(result.tests) > 400  # 1.1 + 2.0 + the raster prints, one test each
    assert any(name.startswith("Print onepage-a4 @ 300dpi") for name in result.skipped)


def test_print_job_suite_to_ippeveprinter(ippeveprinter: IppEvePrinter, ipptool_dir: Path) -> None:
    """(b) print-job.test over ipps:// (self-signed key): the bytes land in ippeveprinter's spool."""
    document = ipptool_dir / "document-a4.pdf"
    result = run_ipptool(
        ippeveprinter.ipps_uri, "print-job.test", workdir=ipptool_dir, document=str(document)
    )
    assert result.ok, result.summary()
    assert result.passed == ["Print file using Print-Job"]
    job_id = result.test("Print file using Print-Job")["ResponseAttributes"][1]["job-id"]
    [received] = ippeveprinter.wait_documents(1)
    assert received.name.startswith(f"{job_id}-") and received.suffix == ".pdf"
    assert received.read_bytes() == document.read_bytes()


def test_everywhere_queue_prints_to_ippeveprinter(
    cupsd: PrivateCupsd, ippeveprinter: IppEvePrinter, ipptool_dir: Path
) -> None:
    """(c) lpadmin -m everywhere to ipps://ippeveprinter, then lp, end to end.

    The PDF goes through pdftopdf: the printer gets another PDF with the same pages, put on the
    PPD's default medium (ippeveprinter's: US Letter) and in reverse order (its output bin is
    face-up). With `-o raw` no filter runs and the bytes arrive unchanged.
    """
    cupsd.add_queue("eve", ippeveprinter.ipps_uri, everywhere=True)
    ppd = (cupsd.base / "etc" / "ppd" / "eve.ppd").read_text("utf-8", "replace")
    assert '*cupsFilter2: "application/vnd.cups-pdf application/pdf 10 -"' in ppd
    document = ipptool_dir / "document-a4.pdf"

    job = cupsd.lp("eve", document, title="everywhere")
    assert cupsd.wait_job_done("eve", job, timeout=30) == "completed", cupsd.error_log_tail()
    [filtered] = ippeveprinter.wait_documents(1)
    assert filtered.suffix == ".pdf"
    sent, got = PdfReader(document), PdfReader(filtered)
    sent_text = [page.extract_text() for page in sent.pages]
    got_text = [page.extract_text() for page in got.pages]
    assert sorted(got_text) == sorted(sent_text)
    print(f"pdftopdf: {len(got_text)} pages, media {[float(x) for x in got.pages[0].mediabox]}")

    job = cupsd.lp("eve", document, raw=True, user="alice")
    assert cupsd.wait_job_done("eve", job, timeout=30) == "completed", cupsd.error_log_tail()
    raw = ippeveprinter.wait_documents(2)[1]
    assert raw.read_bytes() == document.read_bytes()


def test_file_queue_gets_exact_bytes(
    cupsd: PrivateCupsd, ipptool_dir: Path, tmp_path: Path
) -> None:
    """A file:///path queue (pass-through PPD) writes exactly what lp sent, JPEG or PDF."""
    out = tmp_path / "printed.bin"
    cupsd.add_queue("tofile", f"file://{out}")
    for name in ("color.jpg", "document-letter.pdf"):
        document = ipptool_dir / name
        job = cupsd.lp("tofile", document)
        assert cupsd.wait_job_done("tofile", job, timeout=30) == "completed", cupsd.error_log_tail()
        assert out.read_bytes() == document.read_bytes(), name


def test_benchmark_helpers_against_cupsd(
    cupsd: PrivateCupsd, ipptool_dir: Path, tmp_path: Path
) -> None:
    cupsd.add_queue("null", "file:///dev/null")
    rate = ipptool_print_rate(
        cupsd.uri("null"), ipptool_dir / "onepage-a4.pdf", count=40, workdir=tmp_path, concurrency=2
    )
    big = make_big_document(tmp_path / "big.pdf", 32 << 20)
    assert big.read_bytes()[-6:] == b"%%EOF\n"
    throughput = ipptool_print_throughput(cupsd.uri("null"), big, tmp_path)
    print(f"cupsd raw /dev/null: {rate:.0f} Print-Job/s, {throughput:.0f} MB/s")
    assert rate > 1
    assert throughput > 1


@pytest.mark.parametrize("durable", [False, True], ids=["default", "durable"])
def test_what_cupsd_accepted_survives_kill_9_only_when_durable(
    durable: bool, ipptool_dir: Path, tmp_path: Path
) -> None:
    """The two cupsd baselines of bench gateway_ipp: by default cupsd answers successful-ok
    with the job's state only in memory (written up to DirtyCleanInterval, 30 s, later), so
    kill -9 loses every job just accepted; durable=True writes each job at once."""
    jobs = 20
    with PrivateCupsd(tmp_path / "cupsd", durable=durable) as server:
        server.add_queue("held", "file:///dev/null")
        server._client("cupsdisable", "held")  # stopped: accepted jobs stay pending
        ipptool_print_rate(
            server.uri("held"), ipptool_dir / "onepage-a4.pdf", count=jobs, workdir=tmp_path
        )
        assert len(server._client("lpstat", "-o").splitlines()) == jobs
        assert server.process is not None
        server.process.kill9()
        server.start()
        kept = len(server._client("lpstat", "-o").splitlines())
    assert kept == (jobs if durable else 0)


# --- ipptool's credentials over TLS, against a tiny server of our own --------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-this-host.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _ipp_attr(tag: int, name: bytes, value: bytes) -> bytes:
    return (
        bytes([tag]) + struct.pack(">H", len(name)) + name + struct.pack(">H", len(value)) + value
    )


class BasicAuthIppServer:
    """HTTPS on 127.0.0.1 that answers 401 (Basic) without credentials, else a Print-Job reply."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        # libcups (CUPS 2.4.2, GnuTLS) drops the connection when a TLS 1.3 server sends session
        # tickets, as Python does by default: a server for CUPS clients must not send any.
        self.context.num_tickets = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.seen: list[tuple[str, str | None]] = []  # (request line, Authorization)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> BasicAuthIppServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    self._handle(conn)
            except (OSError, ValueError):
                pass
            if len(self.seen) > 20:  # a client looping: stop answering
                return

    def _handle(self, conn: ssl.SSLSocket) -> None:
        reader = conn.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return
            headers: dict[str, str] = {}
            while (header := reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            auth = headers.get("authorization")
            self.seen.append((line.decode().strip(), auth))
            if auth is None:
                conn.sendall(
                    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="pf"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            if headers.get("expect") == "100-continue":
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = b""
            if headers.get("transfer-encoding") == "chunked":
                while size := int(reader.readline().strip(), 16):
                    body += reader.read(size)
                    reader.readline()
                reader.readline()
            else:
                body = reader.read(int(headers.get("content-length", "0")))
            reply = (
                b"\x01\x01\x00\x00"
                + body[4:8]
                + b"\x01"
                + _ipp_attr(0x47, b"attributes-charset", b"utf-8")
                + _ipp_attr(0x48, b"attributes-natural-language", b"en")
                + b"\x02"
                + _ipp_attr(0x45, b"job-uri", b"ipps://localhost/ipp/print/7")
                + _ipp_attr(0x21, b"job-id", struct.pack(">i", 7))
                + _ipp_attr(0x23, b"job-state", struct.pack(">i", 3))
                + _ipp_attr(0x44, b"job-state-reasons", b"none")
                + b"\x03"
            )
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\n"
                + f"Content-Length: {len(reply)}\r\n\r\n".encode()
                + reply
            )


@pytest.fixture
def basic_auth_server(tmp_path: Path) -> Iterator[BasicAuthIppServer]:
    cert, key = _self_signed(tmp_path)
    with BasicAuthIppServer(cert, key) as server:
        yield server


def test_ipptool_sends_uri_credentials_after_401_over_tls(
    basic_auth_server: BasicAuthIppServer, ipptool_dir: Path
) -> None:
    """ipps://user:pass@... : a self-signed certificate for another host is accepted, the first
    request goes without credentials, the retry after 401 carries them as HTTP Basic."""
    require("ipptool")
    uri = f"ipps://alice:s3cr%40t@127.0.0.1:{basic_auth_server.port}/ipp/print/q"
    result = run_ipptool(
        uri,
        "print-job.test",
        workdir=ipptool_dir,
        document="onepage-a4.pdf",
        version="1.1",
        timeout=30,
    )
    assert result.ok, result.summary() + f"\n{basic_auth_server.seen}"
    requests = basic_auth_server.seen
    assert requests[0] == ("POST /ipp/print/q HTTP/1.1", None)
    expected = "Basic " + base64.b64encode(b"alice:s3cr@t").decode()
    assert requests[-1] == ("POST /ipp/print/q HTTP/1.1", expected)
    sent = result.test("Print file using Print-Job")["RequestAttributes"][0]
    assert sent["printer-uri"] == f"ipps://127.0.0.1:{basic_auth_server.port}/ipp/print/q"
    # $user in the suites is the local user, not the one of the URI.
    assert sent["requesting-user-name"] != "alice"
