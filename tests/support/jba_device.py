"""A Xerox device's JBA log export for the collector's tests: real HTTPS on loopback, a test CA.

The device serves its job log as CWIS does (`GET /jba/log.csv`, a UTF-8 CSV with a BOM and CRLF
line ends, HTTP Basic when it has a log-in) from records a test appends, and can misbehave on
demand: a header that is not the export's, a record garbled in the middle, an answer cut off
halfway, an error status.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import socket
import ssl
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from printfabric.tls import ensure_dev_pki, server_ssl_context

__all__ = ["HEADER", "LogRecord", "XeroxDevice"]

# The export's columns in the device's order, with one the node does not read.
HEADER = (
    "Job Index",
    "Job Type",
    "User Name",
    "Host Name",
    "Job Name",
    "Account ID",
    "Sheets",
    "Pages",
    "Color Pages",
    "B&W Pages",
    "Paper Size",
    "Duplex",
    "Start Time",
    "End Time",
    "Status",
)


@dataclass(frozen=True)
class LogRecord:
    """One job as the device logs it."""

    index: int
    start: datetime
    end: datetime | None
    job_type: str = "Print"
    user: str = "alice"
    host: str = "WS-ALICE"
    job_name: str = "report.pdf"
    sheets: int = 1
    pages: int = 2
    color_pages: int = 0
    mono_pages: int = 2
    paper_size: str = "A4"
    duplex: bool = True
    status: str = "Completed"

    def row(self, offset: timedelta) -> list[str]:
        zone = timezone(offset)
        return [
            str(self.index),
            self.job_type,
            self.user,
            self.host,
            self.job_name,
            "ACC-1",
            str(self.sheets),
            str(self.pages),
            str(self.color_pages),
            str(self.mono_pages),
            self.paper_size,
            "Yes" if self.duplex else "No",
            self.start.astimezone(zone).isoformat(),
            self.end.astimezone(zone).isoformat() if self.end else "",
            self.status,
        ]


@dataclass
class XeroxDevice:
    """The device; a context manager that serves it on 127.0.0.1 at an ephemeral port."""

    folder: Path
    # The log-in the export asks for (HTTP Basic); none when user is empty.
    user: str = ""
    password: str = ""
    path: str = "/jba/log.csv"
    # The device's clock: the next record starts here; each record moves it on.
    clock: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    )
    # Times are written in ISO 8601 with this UTC offset (the device's zone).
    utc_offset: timedelta = timedelta(hours=1)
    bom: bool = True
    # Misbehaviour: a header that is not the export's, an answer cut off halfway, a status.
    malformed_header: bool = False
    cut_off: bool = False
    status: int = 200
    records: list[LogRecord] = field(default_factory=list)
    # Lines served in place of a record's own (by its Job Index).
    corrupted: dict[int, str] = field(default_factory=dict)
    # Requests served: (path, whether the log-in was right).
    requests: list[tuple[str, bool]] = field(default_factory=list)
    next_index: int = 1
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.tls = ensure_dev_pki(self.folder / "tls", ("127.0.0.1", "localhost"))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"

    @property
    def ca_path(self) -> Path:
        return self.tls.ca_cert

    # The log -------------------------------------------------------------------------------

    def add(self, **fields: Any) -> LogRecord:
        """Logs one job; fields override LogRecord's defaults (start/end default to the clock)."""
        with self._lock:
            start = fields.pop("start", self.clock)
            end = fields.pop("end", start + timedelta(seconds=20))
            record = LogRecord(index=self.next_index, start=start, end=end, **fields)
            self.records.append(record)
            self.next_index += 1
            self.clock = max(self.clock, start) + timedelta(seconds=2)
            return record

    def add_records(self, count: int, **fields: Any) -> list[LogRecord]:
        return [self.add(**fields) for _ in range(count)]

    def reset_index(self, keep_old: bool = False) -> None:
        """Starts numbering again from 1, as after a service reset; the old records go unless
        keep_old (a device that keeps its log across the reset)."""
        with self._lock:
            self.next_index = 1
            if not keep_old:
                self.records.clear()
            self.clock += timedelta(minutes=5)

    def corrupt(self, index: int, line: str | None = None) -> None:
        """Serves a malformed line in place of the record with this index: by default the record
        with its page counts not adding up (its Job Index and times still readable)."""
        with self._lock:
            if line is None:
                (record,) = [r for r in self.records if r.index == index]
                line = _csv_line(replace(record, color_pages=record.pages + 1).row(self.utc_offset))
            self.corrupted[index] = line.removesuffix("\r\n") + "\r\n"

    def body(self) -> bytes:
        with self._lock:
            out = io.StringIO()
            if self.malformed_header:
                # A semicolon export (another locale's setting): one column as far as CSV goes.
                out.write(";".join(HEADER) + "\r\n")
            else:
                out.write(_csv_line(list(HEADER)))
            for record in self.records:
                out.write(
                    self.corrupted.get(record.index) or _csv_line(record.row(self.utc_offset))
                )
            text = out.getvalue()
        return ("\ufeff" + text if self.bom else text).encode()

    # The server ----------------------------------------------------------------------------

    def __enter__(self) -> XeroxDevice:
        context = server_ssl_context(self.tls)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.device = self
        # The handshake happens in the request's thread, not in accept().
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="jba-device", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def authorized(self, header: str | None) -> bool:
        if not self.user:
            return True
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(fields)
    return out.getvalue()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    device: XeroxDevice

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that refuse our certificate (a test of exactly that) are not errors here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def setup(self) -> None:
        sock = self.request
        assert isinstance(sock, ssl.SSLSocket)
        sock.settimeout(self.timeout)
        sock.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        device = self.server.device
        authorized = device.authorized(self.headers.get("Authorization"))
        device.requests.append((self.path, authorized))
        if self.path != device.path:
            self.send_error(404)
            return
        if not authorized:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="CentreWare Internet Services"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if device.status != 200:
            self.send_error(device.status)
            return
        body = device.body()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if device.cut_off:
            # The full length announced, half of it sent, then the connection drops.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
