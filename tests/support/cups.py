"""Real CUPS peers for the tests: ipptool, a private cupsd and ippeveprinter (CUPS 2.4, Debian 12).

- `ipptool_workdir(dest)` copies CUPS's ipptool `.test` files into dest and generates every
  document they print (PDF, PostScript, JPEG and the PWG raster samples of ipp-everywhere.test)
  with ghostscript; the `ipptool_dir` session fixture caches that once per machine.
- `run_ipptool(uri, test_file, workdir=...)` runs a suite and parses ipptool's XML plist report.
- `PrivateCupsd` is a cupsd on its own config, spool and port; `IppEvePrinter` is CUPS's
  reference IPP Everywhere printer (it needs DNS-SD: a private avahi is started when none runs).
- `ipptool_print_rate` / `ipptool_print_throughput` measure a target with ipptool as the client.

Findings the helpers rely on (CUPS 2.4.2, GnuTLS 3.7):
- ipptool takes credentials from the URI (`ipps://user:pass@host:port/...`): it sends HTTP Basic
  only after a 401 challenge and strips them from printer-uri. Without credentials a 401 makes
  libcups ask for a password on /dev/tty, so every CUPS client here runs in a new session with
  stdin from /dev/null: a prompt fails at once instead of hanging.
- ipptool (and lpadmin, and the ipp backend) do not verify the server certificate: a self-signed
  certificate for another host name is accepted, with or without `ValidateCerts` in client.conf,
  and nothing is written to ~/.cups/ssl. No `-E`/`-S` is needed: `ipps://` implies TLS.
- But libcups's TLS client breaks on TLS 1.3 session tickets: against a server that sends
  NewSessionTicket (Python's `ssl` does by default, 2 tickets) ipptool drops the connection after
  the first response and loops reconnecting (on a 401 it never gets to send the credentials). A
  Python server must set `SSLContext.num_tickets = 0` (or cap at TLS 1.2) for CUPS clients.
  The Host header libcups sends for 127.0.0.1 is `localhost:PORT`.
- cupsd runs filters and backends as user `lp`, so every directory above its spool and config
  must be traversable by `lp`: `PrivateCupsd` adds o+x to its parents inside the temp dir.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import fcntl
import hashlib
import http.client
import os
import plistlib
import random
import re
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from printfabric.ipp import Attribute, JobState, Message, Operation, Tag, decode, encode
from printfabric.ipp.client import RESPONSE_LIMITS

from tests.support.processes import ChildProcess, free_port, peer_missing, tail, wait_until

__all__ = [
    "CUPS_PACKAGES",
    "IppEvePrinter",
    "IpptoolResult",
    "PrivateCupsd",
    "cups_avahi",
    "cupsd",
    "ipp_request",
    "ippeveprinter",
    "ipptool_dir",
    "ipptool_print_rate",
    "ipptool_print_throughput",
    "ipptool_workdir",
    "make_big_document",
    "require",
    "run_ipptool",
    "stop_shared_daemons",
]

HOST = "127.0.0.1"
IPPTOOL_TESTS = Path("/usr/share/cups/ipptool")
STOP_SECONDS = 10.0

# Program -> Debian package that ships it (for the install hint of require()).
CUPS_PACKAGES: dict[str, str] = {
    "ipptool": "cups-ipp-utils",
    "ippeveprinter": "cups-ipp-utils",
    "ippfind": "cups-ipp-utils",
    "cupsd": "cups-daemon",
    "lpadmin": "cups-client",
    "lp": "cups-client",
    "lpstat": "cups-client",
    "cancel": "cups-client",
    "lpr": "cups-bsd",
    "gs": "ghostscript",
    "avahi-daemon": "avahi-daemon",
    "dbus-daemon": "dbus-daemon",
    "unshare": "util-linux",
    "socat": "socat",
    "rlpr": "rlpr",
    "pdftopdf": "cups-filters",
    "gziptoany": "cups-core-drivers",
}
_PROGRAM_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/lib/cups/filter")


def _which(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in _PROGRAM_DIRS:
        candidate = Path(directory) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require(*programs: str) -> dict[str, str]:
    """The paths of the given peer programs; a missing one fails the test in CI, skips it elsewhere.

    Our rule: no test skips itself in CI (CI=true), where the peers must be installed.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for program in programs:
        path = _which(program)
        if path is None:
            missing.append(program)
        else:
            found[program] = path
    if missing:
        packages = sorted({CUPS_PACKAGES.get(p, p) for p in missing})
        message = (
            f"missing peer program(s) {', '.join(missing)}: install the Debian package(s) "
            f"{' '.join(packages)} (make test installs them when run as root)"
        )
        peer_missing(message)
    return found


# --------------------------------------------------------------------------------------------
# IPP requests to the peers (readiness checks and job states), with the project's own codec.

_BUILDERS: dict[str, Callable[..., Attribute]] = {
    "integer": Attribute.integer,
    "boolean": Attribute.boolean,
    "enum": Attribute.enum,
    "text": Attribute.text,
    "name": Attribute.name_,
    "keyword": Attribute.keyword,
    "uri": Attribute.uri,
    "charset": Attribute.charset,
    "language": Attribute.natural_language,
    "mimeMediaType": Attribute.mime_type,
}
IPP_GET_PRINTER_ATTRIBUTES = Operation.GET_PRINTER_ATTRIBUTES
IPP_GET_JOB_ATTRIBUTES = Operation.GET_JOB_ATTRIBUTES


def ipp_request(
    url: str,
    operation: int,
    attributes: Sequence[tuple[str, str, object]] = (),
    *,
    timeout: float = 10.0,
) -> tuple[int, dict[str, list[Any]]]:
    """One IPP request over http(s) (ipp:// or ipps:// URL; certificates are not checked).

    attributes are (syntax, name, value or list of values) for the operation group. Returns
    (IPP status-code, response attributes by name over all groups). Raises OSError or
    ValueError when the server does not answer with HTTP 200 and an IPP body.
    """
    request = Message((2, 0), int(operation), 1)
    group = request.add_group(Tag.OPERATION)
    group.add(Attribute.charset("attributes-charset", "utf-8"))
    group.add(Attribute.natural_language("attributes-natural-language", "en"))
    for syntax, name, value in attributes:
        values = list(value) if isinstance(value, list | tuple) else [value]
        group.add(_BUILDERS[syntax](name, *values))
    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port_text = hostport.rpartition(":")
    port = int(port_text)
    conn: http.client.HTTPConnection
    if scheme in ("ipps", "https"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/" + path, encode(request), {"Content-Type": "application/ipp"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status} {response.reason} from {url}")
    finally:
        conn.close()
    reply, _ = decode(data, RESPONSE_LIMITS)
    found: dict[str, list[Any]] = {}
    for reply_group in reply.groups:
        for attr in reply_group:
            found.setdefault(attr.name, []).extend(attr.values)
    return reply.code, found


def _answers_ipp(printer_uri: str, http_url: str, timeout: float = 2.0) -> bool:
    """Whether an IPP request gets an IPP response (any status: cupsd without queues says 0x0406)."""
    try:
        ipp_request(
            http_url,
            IPP_GET_PRINTER_ATTRIBUTES,
            [
                ("uri", "printer-uri", printer_uri),
                ("keyword", "requested-attributes", "printer-state"),
            ],
            timeout=timeout,
        )
    except (OSError, ValueError, http.client.HTTPException):
        return False
    return True


# --------------------------------------------------------------------------------------------
# Documents for the ipptool suites.

# Bump when the generated documents change, so that old caches are not reused.
_DOCS_VERSION = "1"
_MEDIA = {  # name -> (width pt, height pt, PWG self-describing name)
    "a4": (595, 842, "iso_a4_210x297mm"),
    "letter": (612, 792, "na_letter_8.5x11in"),
    "4x6": (288, 432, "na_index-4x6_4x6in"),
}
# PWG raster type -> (cupsColorSpace, cupsBitsPerColor) for ghostscript's pwgraster device.
_RASTER_TYPES = {
    "black-1": (3, 1),
    "sgray-8": (18, 8),
    "srgb-8": (19, 8),
    "srgb-16": (19, 16),
    "cmyk-8": (6, 8),
}
# The raster samples are made of four pages, each rendered once per resolution and type by its
# own ghostscript run (ghostscript 10.0's pwgraster device loses pages when one run changes the
# page size or writes one file per page), then put together: "document" files hold two pages.
# Raster pages carry less text than the PDFs, as text is what makes PWG raster big and slow.
_RASTER_PAGES = {
    "a4": ("a4", "/lines 4 def 1 textpages"),
    "letter": ("letter", "/lines 4 def 1 textpages"),
    "color": ("4x6", "false picture"),
    "gray": ("4x6", "true picture"),
}
# Raster sample base name -> (page of _RASTER_PAGES, number of pages).
_RASTER_SOURCES = {
    "document-a4": ("a4", 2),
    "document-letter": ("letter", 2),
    "onepage-a4": ("a4", 1),
    "onepage-letter": ("letter", 1),
    "color.jpg-4x6": ("color", 1),
    "gray.jpg-4x6": ("gray", 1),
}
_RASTER_FILE = re.compile(
    r"^pwg-raster-samples-(?P<res>\d+)dpi/(?P<type>[a-z]+-\d+)/(?P<base>.+)-(?P=type)-(?P=res)dpi\.pwg$"
)
# Plain documents: file name -> (ghostscript device, media, drawing).
_DOCUMENTS = {
    "document-a4.pdf": ("pdfwrite", "a4", "3 textpages"),
    "document-letter.pdf": ("pdfwrite", "letter", "3 textpages"),
    "onepage-a4.pdf": ("pdfwrite", "a4", "1 textpages"),
    "onepage-letter.pdf": ("pdfwrite", "letter", "1 textpages"),
    "testfile.pdf": ("pdfwrite", "letter", "2 textpages"),
    "document-a4.ps": ("ps2write", "a4", "3 textpages"),
    "document-letter.ps": ("ps2write", "letter", "3 textpages"),
    "onepage-a4.ps": ("ps2write", "a4", "1 textpages"),
    "onepage-letter.ps": ("ps2write", "letter", "1 textpages"),
    "testfile.ps": ("ps2write", "letter", "2 textpages"),
    "color.jpg": ("jpeg", "4x6", "false picture"),
    "gray.jpg": ("jpeggray", "4x6", "true picture"),
    "testfile.jpg": ("jpeg", "4x6", "false picture"),
    "onepage-a4-300-srgb-8.pwg": ("pwgraster:300:srgb-8", "a4", "1 textpages"),
    "onepage-letter-300-srgb-8.pwg": ("pwgraster:300:srgb-8", "letter", "1 textpages"),
    "onepage-a4-300-srgb-8.urf": ("urf:300:srgb-8", "a4", "1 textpages"),
}
_JPEG_DPI = 150

# The pages: text, colour bars and a grey ramp; the "photo" is a colour (or grey) field with
# rings. Everything is drawn from the page size, so one program serves every medium.
_POSTSCRIPT = r"""%!PS
/lines where { pop } { /lines 25 def } ifelse
/pagesize { clippath pathbbox /ury exch def /urx exch def pop pop newpath } def
/textpages {
  /n exch def
  1 1 n {
    /i exch def
    pagesize
    /Helvetica-Bold findfont 26 scalefont setfont
    0 setgray 54 ury 80 sub moveto (PrintFabric test document) show
    /Helvetica findfont 14 scalefont setfont
    54 ury 104 sub moveto (Page ) show i 4 string cvs show ( of ) show n 4 string cvs show
    /Times-Roman findfont 11 scalefont setfont
    0 1 lines 1 sub {
      /l exch def
      54 ury 140 sub l 16 mul sub moveto
      (The quick brown fox jumps over the lazy dog. 0123456789 !@#$%^&*) show
    } for
    0 1 5 { /k exch def k 6 div 1 1 sethsbcolor 54 k 80 mul add 150 70 70 rectfill } for
    0 1 9 { /k exch def k 9 div setgray 54 k 48 mul add 90 48 40 rectfill } for
    0 0 1 setrgbcolor 4 setlinewidth 54 60 moveto urx 54 sub 60 lineto stroke
    showpage
  } for
} def
/picture {
  /isgray exch def
  pagesize
  /dx urx 24 div def /dy ury 36 div def
  0 1 35 {
    /y exch def
    0 1 23 {
      /x exch def
      isgray { x y add 59 div setgray } { x 24 div y 36 div 0.3 mul 0.6 add 0.9 sethsbcolor } ifelse
      x dx mul y dy mul dx dy rectfill
    } for
  } for
  1 1 8 {
    /r exch def
    isgray { r 8 div setgray } { r 8 div 0.8 0.8 sethsbcolor } ifelse
    6 setlinewidth urx 2 div ury 2 div r urx 20 div mul 0 360 arc stroke
  } for
  /Helvetica-Bold findfont 20 scalefont setfont
  isgray { 0 setgray } { 1 1 1 setrgbcolor } ifelse
  20 24 moveto (PrintFabric photo) show
  showpage
} def
"""


def _gs_argv(gs: str, source: Path, output: Path, device: str, media: str, draw: str) -> list[str]:
    width, height, pwg_name = _MEDIA[media]
    argv = [gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER"]
    kind, _, raster = device.partition(":")
    if kind in ("pwgraster", "urf"):
        res, _, rtype = raster.partition(":")
        space, bits = _RASTER_TYPES[rtype]
        argv += [f"-sDEVICE={kind}", f"-r{res}"]
        if kind == "pwgraster":
            argv += [f"-dcupsColorSpace={space}", f"-dcupsBitsPerColor={bits}"]
            argv += [f"-scupsPageSizeName={pwg_name}"]
    elif kind in ("jpeg", "jpeggray"):
        argv += [f"-sDEVICE={kind}", f"-r{_JPEG_DPI}", "-dJPEGQ=85"]
    else:
        argv += [f"-sDEVICE={kind}"]
    argv += [f"-dDEVICEWIDTHPOINTS={width}", f"-dDEVICEHEIGHTPOINTS={height}", "-dFIXEDMEDIA"]
    argv += [f"-sOutputFile={output}", "-f", str(source), "-c", draw]
    return argv


def _raster_page(path: Path) -> bytes:
    """The one page (header and data) of a PWG raster file made by ghostscript."""
    data = path.read_bytes()
    if not data.startswith(b"RaS2PwgRaster"):
        raise AssertionError(f"{path} is not PWG raster (starts with {data[:13]!r})")
    return data[4:]


def _referenced_files(tests: Sequence[Path]) -> set[str]:
    """Relative FILE/SKIP-IF-MISSING names in the .test files (not $variables, not ../)."""
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:FILE|SKIP-IF-MISSING)\s+(\S+)", re.MULTILINE)
    for test in tests:
        for match in pattern.finditer(test.read_text("utf-8", "replace")):
            name = match.group(1).strip('"')
            if "$" in name or name.startswith(("/", "..")):
                continue
            names.add(name)
    return names


def ipptool_workdir(dest: Path, *, raster: bool = True) -> Path:
    """Copies CUPS's ipptool .test files into dest and generates every document they print.

    The documents: document-{a4,letter}.{pdf,ps} (3 pages), onepage-{a4,letter}.{pdf,ps},
    color.jpg, gray.jpg (4x6 in at 150 dpi), testfile.{pdf,ps,jpg,txt}, a few loose PWG/URF
    pages, and every PWG raster sample that ipp-everywhere.test names
    (`pwg-raster-samples-{150,180,300,360,600,720}dpi/{black-1,sgray-8,srgb-8,srgb-16,cmyk-8}/
    {document-a4,document-letter,onepage-a4,onepage-letter,color.jpg-4x6,gray.jpg-4x6}-TYPE-RESdpi.pwg`;
    srgb-16 only for color.jpg-4x6), 144 files, ~35 MB. raster=False leaves those out (the
    suites then stop at the first missing one: ipptool checks FILE names while parsing).
    The CUPS-specific tests that print `../data/testprint.ps` are copied but not served.

    Done once: a complete dest (marked by a stamp file) is returned as it is. Concurrent calls
    for the same dest wait on a lock. Returns dest.
    """
    gs = require("gs")["gs"]
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dest / f".complete-v{_DOCS_VERSION}{'' if raster else '-noraster'}"
    with (dest / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return dest
        tests = sorted(IPPTOOL_TESTS.glob("*.test"))
        if not tests:
            require("ipptool")
            raise AssertionError(f"no .test files in {IPPTOOL_TESTS}")
        for test in tests:
            shutil.copyfile(test, dest / test.name)
        source = dest / ".pfdocs.ps"
        source.write_text(_POSTSCRIPT)
        jobs: list[list[str]] = []
        for name, (device, media, draw) in _DOCUMENTS.items():
            jobs.append(_gs_argv(gs, source, dest / name, device, media, draw))
        wanted = _referenced_files([dest / t.name for t in tests]) if raster else set()
        samples: dict[tuple[str, str], dict[str, Path]] = {}
        unknown: list[str] = []
        for name in sorted(wanted):
            if name in _DOCUMENTS or name == "testfile.txt":
                continue
            match = _RASTER_FILE.match(name)
            if (
                not match
                or match["base"] not in _RASTER_SOURCES
                or match["type"] not in _RASTER_TYPES
            ):
                unknown.append(name)
                continue
            samples.setdefault((match["res"], match["type"]), {})[match["base"]] = dest / name
        if unknown:
            raise AssertionError(
                f"the .test files print documents this helper cannot make: {unknown}"
            )
        pages_dir = dest / ".pages"
        pages_dir.mkdir(exist_ok=True)
        page_files: dict[tuple[str, str, str], Path] = {}
        for (res, rtype), files in samples.items():
            for base in files:
                page = _RASTER_SOURCES[base][0]
                key = (res, rtype, page)
                if key not in page_files:
                    page_files[key] = pages_dir / f"{res}-{rtype}-{page}.pwg"
                    media, draw = _RASTER_PAGES[page]
                    device = f"pwgraster:{res}:{rtype}"
                    jobs.append(_gs_argv(gs, source, page_files[key], device, media, draw))
        (dest / "testfile.txt").write_text(
            "".join(
                f"PrintFabric test file, line {n}: the quick brown fox.\n" for n in range(1, 61)
            )
        )
        _run_all(jobs)
        for (res, rtype), files in samples.items():
            for base, path in files.items():
                page, count = _RASTER_SOURCES[base]
                data = _raster_page(page_files[(res, rtype, page)])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"RaS2" + data * count)
        shutil.rmtree(pages_dir, ignore_errors=True)
        _check_pwg(dest)
        stamp.write_text(f"{len(jobs)} files\n")
    return dest


def _run_all(jobs: Sequence[list[str]]) -> None:
    """Runs the ghostscript commands, as many at once as there are CPUs."""

    def run(argv: list[str]) -> None:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr.decode()[-2000:]}"
            )

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for future in [pool.submit(run, argv) for argv in jobs]:
            future.result()


def _check_pwg(dest: Path) -> None:
    for path in dest.rglob("*.pwg"):
        with path.open("rb") as fh:
            head = fh.read(13)
        if head != b"RaS2PwgRaster":
            raise AssertionError(f"{path} is not PWG raster (starts with {head!r})")


def _cache_root(factory: pytest.TempPathFactory) -> Path:
    """A directory beside pytest's numbered base temp dirs, so it outlives one session."""
    base = factory.getbasetemp()
    root = next((p for p in [base, *base.parents] if p.name.startswith("pytest-of-")), base)
    version = subprocess.run(
        [_which("gs") or "gs", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    key = hashlib.sha256(f"{_DOCS_VERSION}:{version}:{_POSTSCRIPT}".encode()).hexdigest()[:12]
    return root / f"printfabric-ipptool-{key}"


@pytest.fixture(scope="session")
def ipptool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ipptool_workdir() made once per machine (kept beside pytest's temp dirs) and reused."""
    require("ipptool", "gs")
    return ipptool_workdir(_cache_root(tmp_path_factory))


# --------------------------------------------------------------------------------------------
# ipptool


@dataclass
class IpptoolResult:
    """What one ipptool run reported: test names by outcome, and ipptool's own output."""

    passed: list[str]
    failed: list[tuple[str, list[str]]]  # (test name, its error lines)
    skipped: list[str]
    returncode: int
    output: str  # ipptool's stdout (the plist) and stderr
    tests: list[dict[str, Any]] = field(default_factory=list, repr=False)  # plist entries
    seconds: float = 0.0
    # Why ipptool stopped early (a FILE it cannot read, no connection, ...); also listed in
    # failed as the pseudo-test "(ipptool)".
    fatal: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed

    def summary(self) -> str:
        lines = [
            f"ipptool: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, exit {self.returncode}, {self.seconds:.1f} s"
        ]
        for name, errors in self.failed:
            lines.append(f"  FAIL {name}")
            lines.extend(f"       {error}" for error in errors[:12])
        return "\n".join(lines)

    def test(self, name: str) -> dict[str, Any]:
        """The plist entry of the first test with this name (KeyError if none)."""
        for entry in self.tests:
            if entry.get("Name") == name:
                return entry
        raise KeyError(name)


def _cups_client_env(home: Path) -> dict[str, str]:
    """Environment for CUPS client programs: private HOME/client.conf, no inherited CUPS_*."""
    cups_dir = home / ".cups"
    cups_dir.mkdir(parents=True, exist_ok=True)
    conf = cups_dir / "client.conf"
    if not conf.exists():
        # Not needed by CUPS 2.4.2's ipptool (it accepts any certificate), but explicit.
        conf.write_text("AllowAnyRoot Yes\nAllowExpiredCerts Yes\nValidateCerts No\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUPS_", "IPP_", "PF_"))}
    env["HOME"] = str(home)
    env["LC_ALL"] = "C"
    return env


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def parse_ipptool_plist(stdout: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """(test entries, fatal error message) from ipptool -X output ([] and a message if none).

    CUPS 2.4.2's ipptool starts a new XML document for every INCLUDEd file and leaves the
    previous one open (ipp-2.0.test includes ipp-1.1.test), so the output is split at each XML
    declaration and each part closed as needed. Anything after the last </plist> (the
    "Summary:" lines) is ignored.
    """
    parts = re.split(rb"<\?xml[^>]*\?>", stdout)[1:]
    if not parts:
        return [], "ipptool printed no plist report"
    tests: list[dict[str, Any]] = []
    messages: list[str] = []
    for part in parts:
        end = part.rfind(b"</plist>")
        body = part[: end + len(b"</plist>")] if end >= 0 else part.rstrip()
        report: Any = None
        for suffix in (
            b"",
            b"\n</array>\n</dict>\n</plist>\n",
            b"\n</dict>\n</array>\n</dict>\n</plist>\n",
        ):
            try:
                report = plistlib.loads(_XML_DECLARATION + body + suffix, fmt=plistlib.FMT_XML)
                break
            except Exception:  # plistlib raises several types on bad or cut XML
                continue
        if not isinstance(report, dict):
            messages.append(f"a part of ipptool's plist report does not parse: {body[-300:]!r}")
            continue
        tests.extend(t for t in report.get("Tests", []) if isinstance(t, dict))
        if report.get("ErrorMessage"):
            messages.append(str(report["ErrorMessage"]))
    return tests, ("; ".join(messages) or None)


def run_ipptool(
    uri: str,
    test_file: str | Path,
    *,
    workdir: Path,
    document: str | Path | None = None,
    version: str = "2.0",
    timeout: float = 300,
    extra: Sequence[str] = (),
    ignore_errors: bool = True,
    retry_busy: bool = True,
    defines: Mapping[str, str] | None = None,
) -> IpptoolResult:
    """Runs `ipptool -X` on one .test file against uri and parses its plist report.

    test_file: a name in workdir (e.g. "ipp-2.0.test") or a path. document: the `-f` file
    ($filename/$filetype in the suites), a name in workdir or a path. Credentials go in the URI
    (ipps://user:pass@127.0.0.1:PORT/...). `-I` (go on after failures) and `-R` (retry on
    server-error-busy) are on by default. The run never prompts (stdin /dev/null, new session,
    private HOME) and is killed after timeout seconds (AssertionError).
    """
    ipptool = require("ipptool")["ipptool"]
    argv = [ipptool, "-X", "-V", version]
    if ignore_errors:
        argv.append("-I")
    if retry_busy:
        argv.append("-R")
    if document is not None:
        argv += ["-f", str(document)]
    for name, value in (defines or {}).items():
        argv += ["-d", f"{name}={value}"]
    argv += [*extra, uri, str(test_file)]
    env = _cups_client_env(workdir / ".cups-home")
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=workdir,
            env=env,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")[-4000:].decode("utf-8", "replace")
        raise AssertionError(f"ipptool ran over {timeout:.0f} s: {argv}\n{out}") from exc
    seconds = time.monotonic() - started
    tests, fatal = parse_ipptool_plist(done.stdout)
    passed: list[str] = []
    failed: list[tuple[str, list[str]]] = []
    skipped: list[str] = []
    for entry in tests:
        name = str(entry.get("Name", "?"))
        if entry.get("Skipped"):
            skipped.append(name)
        elif entry.get("Successful"):
            passed.append(name)
        else:
            errors = [str(e) for e in entry.get("Errors", [])]
            if not errors:
                errors = [f"status {entry.get('StatusCode', '?')}"]
            failed.append((name, errors))
    stderr = done.stderr.decode("utf-8", "replace")
    if fatal:
        failed.append(("(ipptool)", [fatal, *stderr.splitlines()[-10:]]))
    output = done.stdout.decode("utf-8", "replace") + ("\n" + stderr if stderr else "")
    return IpptoolResult(passed, failed, skipped, done.returncode, output, tests, seconds, fatal)


# --------------------------------------------------------------------------------------------
# Shared daemons for ippeveprinter: the system D-Bus and avahi (DNS-SD).

_SYSTEM_BUS = Path("/run/dbus/system_bus_socket")


def _bus_answers() -> bool:
    if not _SYSTEM_BUS.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(_SYSTEM_BUS))
        except OSError:
            return False
    return True


class _SharedDaemons:
    """Starts dbus-daemon and avahi-daemon only when none runs, and remembers what it started.

    Daemons found running are left alone. Those started here are stopped, by their own pid, by
    stop_shared_daemons() (the cups_avahi session fixture calls it) or at interpreter exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.dbus: ChildProcess | None = None
        self.avahi: ChildProcess | None = None
        self.log_dir: Path | None = None

    def ensure(self, log_dir: Path) -> None:
        with self._lock:
            if self.log_dir is None:
                self.log_dir = log_dir
            bus, avahi = _bus_answers(), self._avahi_running()
            if (not bus or not avahi) and os.geteuid() != 0:
                peer_missing("ippeveprinter needs avahi-daemon: start it, or run the tests as root")
            if not bus:
                self._start_dbus()
            if not avahi:
                self._start_avahi()

    def _start_dbus(self) -> None:
        dbus = require("dbus-daemon")["dbus-daemon"]
        assert self.log_dir is not None
        Path("/run/dbus").mkdir(parents=True, exist_ok=True)
        # In the foreground and without a pid file: our own child, reaped and gone when stopped.
        argv = [dbus, "--system", "--nofork", "--nopidfile", "--nosyslog"]
        self.dbus = ChildProcess("dbus-daemon", argv, dict(os.environ), self.log_dir / "dbus.log")
        self.dbus.start()
        wait_until(_bus_answers, 10, "the system D-Bus socket", [self.dbus], every=0.05)

    @staticmethod
    def _avahi_running() -> bool:
        avahi = _which("avahi-daemon")
        if avahi is None:
            return False
        done = subprocess.run(
            [avahi, "-c"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False
        )
        return done.returncode == 0

    def _start_avahi(self) -> None:
        paths = require("avahi-daemon", "unshare")
        assert self.log_dir is not None
        # In a network namespace of its own avahi sees no network at all (only a down loopback):
        # it still registers services over D-Bus, which is all ippeveprinter needs.
        argv = [paths["unshare"], "-n", paths["avahi-daemon"], "--no-chroot", "--no-rlimits"]
        self.avahi = ChildProcess(
            "avahi-daemon", argv, dict(os.environ), self.log_dir / "avahi.log"
        )
        self.avahi.start()
        wait_until(self._avahi_running, 20, "avahi-daemon running", [self.avahi], every=0.1)

    def stop(self) -> None:
        with self._lock:
            if self.avahi is not None:
                self.avahi.stop(STOP_SECONDS)
                self.avahi = None
            if self.dbus is not None:
                self.dbus.stop(STOP_SECONDS)
                self.dbus = None


_SHARED = _SharedDaemons()


def stop_shared_daemons() -> None:
    """Stops the dbus-daemon/avahi-daemon this process started (those found running stay)."""
    _SHARED.stop()


atexit.register(stop_shared_daemons)


@pytest.fixture(scope="session")
def cups_avahi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """D-Bus and avahi for ippeveprinter for the whole session; what it started stops at the end."""
    _SHARED.ensure(tmp_path_factory.mktemp("avahi"))
    try:
        yield
    finally:
        stop_shared_daemons()


# --------------------------------------------------------------------------------------------
# ippeveprinter

IPPEVE_FORMATS = (
    "application/pdf,application/postscript,image/jpeg,image/pwg-raster,image/urf,"
    "application/vnd.hp-PCL"
)


class IppEvePrinter:
    """CUPS's ippeveprinter on localhost:PORT keeping every document it receives in spool_dir.

    `-c /bin/true` skips the simulated printing; one job at a time, busy meanwhile. ipp:// and
    ipps:// (a self-signed key made in keys/) share the port.
    """

    def __init__(
        self,
        base: Path,
        *,
        name: str = "Test Printer",
        formats: str = IPPEVE_FORMATS,
        extra: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.base = base
        self.name = name
        self.formats = formats
        self.extra = list(extra)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.spool_dir = base / "spool"
        self.key_dir = base / "keys"
        self.log = base / "ippeveprinter.log"
        self.process: ChildProcess | None = None

    @property
    def uri(self) -> str:
        return f"ipp://localhost:{self.port}/ipp/print"

    @property
    def ipps_uri(self) -> str:
        return f"ipps://localhost:{self.port}/ipp/print"

    def start(self) -> None:
        paths = require("ippeveprinter", "avahi-daemon", "dbus-daemon", "unshare")
        self.base.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(exist_ok=True)
        self.key_dir.mkdir(exist_ok=True)
        _SHARED.ensure(self.base)
        last_error = ""
        for _attempt in range(3):  # the free port may be taken before ippeveprinter binds it
            self.port = free_port()
            argv = [
                paths["ippeveprinter"],
                "-v",
                "-n",
                "localhost",
                "-p",
                str(self.port),
                "-d",
                str(self.spool_dir),
                "-K",
                str(self.key_dir),
                "-k",
                "-s",
                "10,5",
                "-c",
                "/bin/true",
                "-f",
                self.formats,
                *self.extra,
                self.name,
            ]
            env = _cups_client_env(self.base / "home")
            self.process = ChildProcess("ippeveprinter", argv, env, self.log)
            self.process.start()
            http_url = f"ipp://{HOST}:{self.port}/ipp/print"
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self.process.running:
                if _answers_ipp(self.uri, http_url):
                    # ippeveprinter makes its TLS key at the first ipps:// connection, which can
                    # take seconds; a client in a hurry (cupsd making an everywhere PPD) then
                    # fails with "No IPP attributes". Make the key now.
                    ipps_url = f"ipps://{HOST}:{self.port}/ipp/print"
                    if _answers_ipp(self.ipps_uri, ipps_url, timeout=self.startup_timeout):
                        return
                time.sleep(0.05)
            last_error = self.process.tail()
            self.process.stop()
        raise AssertionError(f"ippeveprinter did not start\n{last_error}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(STOP_SECONDS)

    def __enter__(self) -> IppEvePrinter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> IppEvePrinter:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def received_documents(self) -> list[Path]:
        """The documents kept in spool_dir (JOBID-JOBNAME.EXT), oldest job first.

        ippeveprinter types documents by content (pdf, ps, jpg, pwg, urf, pcl, else prn) and
        saves the `-c` command's (empty) output as JOBID-JOBNAME.prn: those are left out, so a
        document of an unknown type, which that output overwrites, is lost.
        """
        files = [
            p
            for p in self.spool_dir.iterdir()
            if p.is_file() and not (p.suffix == ".prn" and p.stat().st_size == 0)
        ]

        def job_id(path: Path) -> tuple[int, str]:
            head = path.name.split("-", 1)[0]
            return (int(head) if head.isdigit() else 1 << 30, path.name)

        return sorted(files, key=job_id)

    def wait_documents(self, count: int, timeout: float = 30.0) -> list[Path]:
        """Waits until at least count documents are in spool_dir and are no longer growing."""

        def settled() -> list[Path] | None:
            docs = self.received_documents()
            if len(docs) < count:
                return None
            sizes = [p.stat().st_size for p in docs]
            time.sleep(0.1)
            return docs if sizes == [p.stat().st_size for p in docs] else None

        watch = [self.process] if self.process is not None else []
        return wait_until(settled, timeout, f"{count} document(s) in {self.spool_dir}", watch)

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log, lines)


@pytest.fixture
def ippeveprinter(tmp_path: Path, cups_avahi: None) -> Iterator[IppEvePrinter]:
    """A fresh ippeveprinter for one test (PDF, PostScript, JPEG, PWG, URF and PCL)."""
    with IppEvePrinter(tmp_path / "ippeveprinter") as printer:
        yield printer


# --------------------------------------------------------------------------------------------
# A private cupsd


def _grant_traverse(path: Path) -> None:
    """Adds o+x to path and its parents inside the temp dir, so that user lp can reach path.

    pytest makes its temp dirs 0700; cupsd's filters and backends run as lp and open the spool
    and PPD files by path. Only traversal is granted (no listing), only to our own dirs.
    """
    temp_root = Path(tempfile.gettempdir()).resolve()
    path = path.resolve()
    for directory in [path, *path.parents]:
        if directory == temp_root or not directory.is_relative_to(temp_root):
            break
        info = directory.stat()
        if info.st_uid == os.getuid() and not info.st_mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


_CUPSD_CONF = """\
# A private cupsd for the tests: loopback only, no browsing, no authentication at all.
Listen {host}:{port}
LogLevel {log_level}
MaxLogSize 0
Browsing No
BrowseLocalProtocols none
WebInterface No
DefaultAuthType None
DefaultEncryption Never
DefaultShared No
# Aborting a job that fails keeps the queue running, so one bad job does not stall the next.
ErrorPolicy abort-job
JobRetryLimit 0
MaxJobs 0
MaxJobsPerPrinter 0
MaxJobsPerUser 0
MaxClients 1000
MaxClientsPerHost 1000
PreserveJobHistory Yes
PreserveJobFiles No
Timeout 300
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  Order allow,deny
  Allow all
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  SubscriptionPrivateValues none
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

_CUPS_FILES_CONF = """\
ServerRoot {root}/etc
RequestRoot {root}/spool
TempDir {root}/spool/tmp
CacheDir {root}/cache
StateDir {root}/state
ServerKeychain {root}/etc/ssl
CreateSelfSignedCerts yes
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
Printcap {root}/etc/printcap
FileDevice Yes
"""

# The ipps backend (run by cupsd as lp) reads $CUPS_SERVERROOT/client.conf. CUPS 2.4.2 trusts a
# self-signed printer certificate without it (AllowAnyRoot and TrustOnFirstUse default to Yes;
# the trust store ServerRoot/ssl is root-only, so nothing is pinned); these lines make that
# explicit and also let an expired certificate through.
_CLIENT_CONF = """\
AllowAnyRoot Yes
AllowExpiredCerts Yes
TrustOnFirstUse Yes
ValidateCerts No
"""

# A queue needs at least one filter for cupsd to write anything to a file: device (a raw queue
# runs no process at all, so file:///path stays empty; see cupsdContinueJob in CUPS 2.4's
# scheduler/job.c). This PPD routes every type through gziptoany, which copies its input
# unchanged (it only inflates gzip'ed input), so the file gets exactly the submitted bytes.
_PASSTHROUGH_PPD = """\
*PPD-Adobe: "4.3"
*FormatVersion: "4.3"
*FileVersion: "1.0"
*LanguageVersion: English
*LanguageEncoding: ISOLatin1
*PCFileName: "PFPASS.PPD"
*Manufacturer: "PrintFabric"
*Product: "(PrintFabric pass-through)"
*ModelName: "PrintFabric pass-through"
*ShortNickName: "PrintFabric pass-through"
*NickName: "PrintFabric pass-through"
*PSVersion: "(3010.000) 0"
*LanguageLevel: "3"
*ColorDevice: True
*DefaultColorSpace: RGB
*FileSystem: False
*Throughput: "1"
*cupsVersion: 2.4
*cupsFilter: "*/* 0 gziptoany"
*OpenUI *PageSize/Media Size: PickOne
*OrderDependency: 10 AnySetup *PageSize
*DefaultPageSize: A4
*PageSize A4/A4: "<</PageSize[595 842]>>setpagedevice"
*PageSize Letter/US Letter: "<</PageSize[612 792]>>setpagedevice"
*CloseUI: *PageSize
*OpenUI *PageRegion/Media Size: PickOne
*OrderDependency: 10 AnySetup *PageRegion
*DefaultPageRegion: A4
*PageRegion A4/A4: "<</PageSize[595 842]>>setpagedevice"
*PageRegion Letter/US Letter: "<</PageSize[612 792]>>setpagedevice"
*CloseUI: *PageRegion
*DefaultImageableArea: A4
*ImageableArea A4/A4: "0 0 595 842"
*ImageableArea Letter/US Letter: "0 0 612 792"
*DefaultPaperDimension: A4
*PaperDimension A4/A4: "595 842"
*PaperDimension Letter/US Letter: "612 792"
"""

_LP_REQUEST_ID = re.compile(r"request id is (\S+)-(\d+)")


class PrivateCupsd:
    """cupsd -f on 127.0.0.1:PORT with its own config, spool, cache, state and log dirs in base.

    Anyone on loopback may administer it (no authentication), so lpadmin/lp/lpstat with
    `-h 127.0.0.1:PORT` just work. `add_queue` makes raw queues (the bytes go to the device
    unchanged) or IPP Everywhere queues (`-m everywhere`: lpadmin queries the printer and builds
    a PPD; documents are then filtered unless printed with `-o raw`).
    """

    def __init__(
        self,
        base: Path,
        *,
        log_level: str = "info",
        startup_timeout: float = 30.0,
        durable: bool = False,
    ) -> None:
        """durable: write each job's state to disk at once (DirtyCleanInterval 0) and fsync
        state files (SyncOnClose Yes). By default cupsd keeps a new job's state in memory for
        up to 30 s: a job it answered successful-ok for is gone if cupsd is killed meanwhile."""
        self.base = base
        self.log_level = log_level
        self.durable = durable
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: ChildProcess | None = None

    # --- lifecycle

    @property
    def server(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def error_log(self) -> Path:
        return self.base / "log" / "error_log"

    def uri(self, queue: str) -> str:
        return f"ipp://{HOST}:{self.port}/printers/{queue}"

    def ipps_uri(self, queue: str) -> str:
        """The same queue over TLS: cupsd negotiates TLS on its port when a client starts with
        a TLS hello (self-signed certificate from CreateSelfSignedCerts)."""
        return f"ipps://{HOST}:{self.port}/printers/{queue}"

    def _write_config(self) -> tuple[Path, Path]:
        for sub in ("etc", "etc/ssl", "etc/ppd", "spool", "spool/tmp", "cache", "state", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        _grant_traverse(self.base)
        conf = self.base / "etc" / "cupsd.conf"
        files = self.base / "etc" / "cups-files.conf"
        text = _CUPSD_CONF.format(host=HOST, port=self.port, log_level=self.log_level)
        conf.write_text(text + ("DirtyCleanInterval 0\n" if self.durable else ""))
        text = _CUPS_FILES_CONF.format(root=self.base)
        files.write_text(text + ("SyncOnClose Yes\n" if self.durable else ""))
        (self.base / "etc" / "client.conf").write_text(_CLIENT_CONF)
        return conf, files

    def start(self) -> None:
        cupsd = require("cupsd", "lpadmin", "lp")["cupsd"]
        last_error = ""
        for _attempt in range(3):  # the free port may be taken before cupsd binds it
            self.port = free_port()
            conf, files = self._write_config()
            env = _cups_client_env(self.base / "home")
            self.process = ChildProcess(
                "cupsd",
                [cupsd, "-f", "-c", str(conf), "-s", str(files)],
                env,
                self.base / "cupsd.out",
            )
            self.process.start()
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline and self.process.running:
                if _answers_ipp(f"ipp://{HOST}:{self.port}/", f"ipp://{HOST}:{self.port}/"):
                    return
                time.sleep(0.05)
            last_error = f"{self.process.tail()}\n{self.error_log_tail()}"
            self.process.stop()
        raise AssertionError(f"cupsd did not start\n{last_error}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(STOP_SECONDS)

    def __enter__(self) -> PrivateCupsd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> PrivateCupsd:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # --- client commands

    def _client(self, program: str, *args: str, timeout: float = 120.0) -> str:
        path = require(program)[program]
        argv = [path, "-h", self.server, *args]
        env = _cups_client_env(self.base / "home")
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"{argv} ran over {timeout:.0f} s\n{self.error_log_tail()}"
            ) from exc
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited with {done.returncode}:\n{done.stdout}{done.stderr}\n"
                f"{self.error_log_tail()}"
            )
        return done.stdout + done.stderr

    def add_queue(
        self,
        name: str,
        device_uri: str,
        *,
        everywhere: bool = False,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """lpadmin -p NAME -E -v URI [-m everywhere] [-o k=v ...]: enabled and accepting.

        Without everywhere the queue passes documents through unchanged: a raw queue (no PPD,
        no filter, no process: the cheapest path, used for file:///dev/null and for network
        devices, whose backend reads the spool file), except for a file:///path device, which
        gets a pass-through PPD (see _PASSTHROUGH_PPD) because a raw queue writes nothing
        there. A file device is truncated by every job: it holds the last job's bytes.
        """
        args = ["-p", name, "-E", "-v", device_uri]
        if everywhere:
            args += ["-m", "everywhere"]
        elif device_uri.startswith("file:") and device_uri not in (
            "file:/dev/null",
            "file:///dev/null",
        ):
            require("gziptoany")
            ppd = self.base / "etc" / "passthrough.ppd"
            ppd.write_text(_PASSTHROUGH_PPD)
            args += ["-P", str(ppd)]
        for key, value in (options or {}).items():
            args += ["-o", f"{key}={value}"]
        self._client("lpadmin", *args)
        if everywhere:
            self._wait_everywhere_ppd(name)

    def _wait_everywhere_ppd(self, name: str, timeout: float = 30.0) -> None:
        """Waits until cupsd has made the queue's PPD from the printer's IPP attributes.

        lpadmin returns before that (cupsd queries the printer in the background); meanwhile the
        queue is a "Local Raw Printer", and a job sent then would skip the everywhere filters.
        """
        failed = f"{name}: PPD creation failed"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, attrs = ipp_request(
                self.uri(name),
                IPP_GET_PRINTER_ATTRIBUTES,
                [
                    ("uri", "printer-uri", self.uri(name)),
                    ("keyword", "requested-attributes", "printer-make-and-model"),
                ],
            )
            model = attrs.get("printer-make-and-model", [""])[0]
            if model and model != "Local Raw Printer":
                return
            if failed in tail(self.error_log, 200):
                break
            time.sleep(0.02)
        raise AssertionError(f"no IPP Everywhere PPD for {name}\n{self.error_log_tail()}")

    def lp(
        self,
        queue: str,
        file: Path,
        *,
        user: str | None = None,
        title: str | None = None,
        options: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> int:
        """Submits file with lp; returns the job id. raw=True adds `-o raw` (no filtering)."""
        args = ["-d", queue]
        if user is not None:
            args += ["-U", user]
        if title is not None:
            args += ["-t", title]
        if raw:
            args += ["-o", "raw"]
        for key, value in (options or {}).items():
            args += ["-o", f"{key}={value}"]
        out = self._client("lp", *args, str(file))
        match = _LP_REQUEST_ID.search(out)
        if match is None:
            raise AssertionError(f"lp printed no request id: {out!r}")
        return int(match.group(2))

    def job_attributes(self, queue: str, job_id: int) -> dict[str, list[Any]]:
        status, attrs = ipp_request(
            f"ipp://{HOST}:{self.port}/jobs/{job_id}",
            IPP_GET_JOB_ATTRIBUTES,
            [
                ("uri", "printer-uri", self.uri(queue)),
                ("integer", "job-id", job_id),
                ("name", "requesting-user-name", "root"),
                (
                    "keyword",
                    "requested-attributes",
                    [
                        "job-state",
                        "job-state-reasons",
                        "job-state-message",
                        "job-printer-state-message",
                    ],
                ),
            ],
        )
        if status >= 0x0400:
            raise AssertionError(f"Get-Job-Attributes {queue}-{job_id}: status 0x{status:04x}")
        return attrs

    def job_state(self, queue: str, job_id: int) -> str:
        """pending, pending-held, processing, processing-stopped, canceled, aborted or completed."""
        state = self.job_attributes(queue, job_id).get("job-state", [0])[0]
        try:
            return JobState(int(state)).name.lower().replace("_", "-")
        except ValueError:
            return str(state)

    def wait_job_done(self, queue: str, job_id: int, timeout: float = 60.0) -> str:
        """Waits until the job is completed, canceled or aborted; returns that state.

        Raises AssertionError (with the job's reasons and the error log) after timeout.
        """
        deadline = time.monotonic() + timeout
        state = "unknown"
        while time.monotonic() < deadline:
            state = self.job_state(queue, job_id)
            if state in ("completed", "canceled", "aborted"):
                return state
            if self.process is not None:
                self.process.check_alive()
            time.sleep(0.05)
        attrs = self.job_attributes(queue, job_id)
        raise AssertionError(
            f"job {queue}-{job_id} still {state} after {timeout:.0f} s: {attrs}\n"
            f"{self.error_log_tail()}"
        )

    async def wait_job_done_async(self, queue: str, job_id: int, within: float = 60.0) -> str:
        """wait_job_done in a worker thread, for async tests."""
        return await asyncio.to_thread(self.wait_job_done, queue, job_id, within)

    def error_log_tail(self, lines: int = 60) -> str:
        return f"----- last lines of {self.error_log}:\n{tail(self.error_log, lines)}"


@pytest.fixture
def cupsd(tmp_path: Path) -> Iterator[PrivateCupsd]:
    """A fresh private cupsd for one test (no queues yet)."""
    with PrivateCupsd(tmp_path / "cupsd") as server:
        yield server


# --------------------------------------------------------------------------------------------
# Benchmarks with ipptool as the client

_PRINT_JOB_TEST = """\
{{
  NAME "Print-Job {n}"
  OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "bench-{n}"
  ATTR mimeMediaType document-format {format}
  FILE {file}
  STATUS successful-ok
  STATUS successful-ok-ignored-or-substituted-attributes
  STATUS server-error-busy REPEAT-MATCH REPEAT-LIMIT 1000
}}
"""


_FORMATS = {
    ".pdf": "application/pdf",
    ".ps": "application/postscript",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".pwg": "image/pwg-raster",
    ".urf": "image/urf",
    ".pcl": "application/vnd.hp-PCL",
    ".txt": "text/plain",
}


def _document_format(document: Path, document_format: str | None) -> str:
    if document_format:
        return document_format
    return _FORMATS.get(document.suffix.lower(), "application/octet-stream")


def _print_job_suite(path: Path, document: Path, count: int, document_format: str) -> Path:
    path.write_text(
        "".join(
            _PRINT_JOB_TEST.format(n=n, format=document_format, file=f'"{document.resolve()}"')
            for n in range(1, count + 1)
        )
    )
    return path


def _run_quiet(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


def _wait_all(processes: list[subprocess.Popen[bytes]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                if other.poll() is None:
                    other.kill()
                    other.wait(STOP_SECONDS)
            raise AssertionError(f"{what} ran over {timeout:.0f} s") from None
        if process.returncode != 0:
            failures.append(
                f"exit {process.returncode}: {out.decode()[-1500:]}{err.decode()[-1500:]}"
            )
    if failures:
        raise AssertionError(f"{what} failed:\n" + "\n".join(failures))


def ipptool_print_rate(
    uri: str,
    document: Path,
    *,
    count: int,
    workdir: Path,
    concurrency: int = 1,
    document_format: str | None = None,
    timeout: float = 600.0,
) -> float:
    """Print-Job acceptance rate in jobs/s, with ipptool as the client.

    Each of `concurrency` ipptool processes runs a generated .test file of count/concurrency
    Print-Job requests on one kept-alive connection (ipptool's `-n` would reconnect for every
    repeat, which on ipps:// measures TLS handshakes rather than requests). The time runs from
    starting the processes until the last one exits; any request that is not answered
    successful-ok (busy is retried) fails the measurement.
    """
    ipptool = require("ipptool")["ipptool"]
    workdir.mkdir(parents=True, exist_ok=True)
    concurrency = max(1, min(concurrency, count))
    shares = [
        count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)
    ]
    env = _cups_client_env(workdir / ".cups-home")
    suites = [
        _print_job_suite(
            workdir / f"bench-print-{i}.test",
            document,
            n,
            _document_format(document, document_format),
        )
        for i, n in enumerate(shares)
    ]
    argvs = [[ipptool, "-t", "-T", "60", uri, str(suite)] for suite in suites]
    started = time.monotonic()
    processes = [_run_quiet(argv, env, workdir) for argv in argvs]
    _wait_all(processes, timeout, f"ipptool Print-Job x{count} to {uri}")
    elapsed = time.monotonic() - started
    return count / elapsed


def ipptool_print_throughput(
    uri: str,
    big_file: Path,
    workdir: Path,
    *,
    document_format: str | None = None,
    timeout: float = 900.0,
) -> float:
    """MB/s (10**6 bytes) of one Print-Job of big_file: wall time from start to the response."""
    ipptool = require("ipptool")["ipptool"]
    workdir.mkdir(parents=True, exist_ok=True)
    suite = _print_job_suite(
        workdir / "bench-throughput.test", big_file, 1, _document_format(big_file, document_format)
    )
    env = _cups_client_env(workdir / ".cups-home")
    size = big_file.stat().st_size
    started = time.monotonic()
    process = _run_quiet([ipptool, "-t", "-T", "300", uri, str(suite)], env, workdir)
    _wait_all([process], timeout, f"ipptool Print-Job of {size} bytes to {uri}")
    elapsed = time.monotonic() - started
    return size / 1e6 / elapsed


def make_big_document(path: Path, size: int) -> Path:
    """A valid one-page PDF of about size bytes (the bulk is an unreferenced binary stream)."""
    block = random.Random(1179).randbytes(1 << 20)  # 1 MiB that does not compress
    header = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
    ]
    content = b"BT /F1 24 Tf 72 760 Td (PrintFabric big document) Tj ET"
    padding = max(0, size - 1024)
    offsets: list[int] = []
    with path.open("wb") as out:
        out.write(header)
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        offsets.append(out.tell())
        out.write(
            b"4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (len(content), content)
        )
        offsets.append(out.tell())
        out.write(b"5 0 obj\n<< /Length %d >>\nstream\n" % padding)
        left = padding
        while left > 0:
            chunk = block[: min(left, len(block))]
            out.write(chunk)
            left -= len(chunk)
        out.write(b"\nendstream\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 6\n0000000000 65535 f \n")
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        out.write(b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return path
