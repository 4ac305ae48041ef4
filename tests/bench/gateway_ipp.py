"""IPPS gateway against cupsd, both driven by CUPS's ipptool.

Print-Job acceptance rate for a small PDF (gateway `direct` queue of `make run` against a
private cupsd's raw file:///dev/null queue, both over IPPS), from one client and from CLIENTS
clients at once, and one 1 GiB Print-Job to each
(MB/s), with the gateway's peak RSS (VmHWM) to show the document streams through with flat
memory.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
from pypdf import PdfWriter

from tests.bench.spool_1gib import DEFAULT_SIZE, say, vm_hwm
from tests.support.cups import (
    PrivateCupsd,
    ipptool_print_rate,
    ipptool_print_throughput,
    make_big_document,
)
from tests.support.gateway import running_fabric

NAME = "gateway_ipp"
JOBS = 300
# Also measured with this many ipptool processes at once (many workstations printing).
CLIENTS = 4
MB = 1_000_000
# Targets from the issue: match cupsd's acceptance rate; at least half its rate for 1 GiB.
RATE_TARGET = 1.0
THROUGHPUT_TARGET = 0.5
RSS_LIMIT = 200 << 20


@dataclass(frozen=True)
class Outcome:
    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool


def _small_pdf(path: Path) -> Path:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())
    return path


def _gateway_pid(fabric_pid: int) -> int:
    for child in psutil.Process(fabric_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any("printfabric-gateway" in part for part in child.cmdline()):
                return child.pid
    raise RuntimeError("no printfabric-gateway process under the fabric")


def run(size: int = DEFAULT_SIZE) -> Outcome:
    base = Path(tempfile.mkdtemp(prefix="pf-bench-ipp-"))
    try:
        with running_fabric(base / "fabric") as fabric, PrivateCupsd(base / "cupsd") as cupsd:
            cupsd.add_queue("null", "file:///dev/null")
            gateway_pid = _gateway_pid(fabric.process.pid)
            small = _small_pdf(base / "small.pdf")
            work = base / "ipptool"
            say(f"Print-Job x{JOBS}, small PDF: cupsd file:///dev/null queue")
            cups_rate = ipptool_print_rate(cupsd.ipps_uri("null"), small, count=JOBS, workdir=work)
            say(f"Print-Job x{JOBS}, small PDF: gateway direct queue")
            gw_rate = ipptool_print_rate(fabric.uri("direct"), small, count=JOBS, workdir=work)
            say(f"Print-Job x{JOBS}, small PDF, {CLIENTS} clients at once: cupsd, then gateway")
            cups_many = ipptool_print_rate(
                cupsd.ipps_uri("null"), small, count=JOBS, workdir=work, concurrency=CLIENTS
            )
            gw_many = ipptool_print_rate(
                fabric.uri("direct"), small, count=JOBS, workdir=work, concurrency=CLIENTS
            )
            big = make_big_document(base / "big.pdf", size)
            say(f"one Print-Job of {size} bytes: cupsd")
            cups_mb = ipptool_print_throughput(cupsd.ipps_uri("null"), big, work)
            say(f"one Print-Job of {size} bytes: gateway (secure queue, held)")
            gw_mb = ipptool_print_throughput(fabric.uri("secure"), big, work)
            rss = vm_hwm(gateway_pid)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rate_ratio = gw_rate / cups_rate
    mb_ratio = gw_mb / cups_mb
    rows = (
        ("Print-Job/s, small PDF, cupsd (baseline)", f"{cups_rate:8.1f}"),
        ("Print-Job/s, small PDF, gateway", f"{gw_rate:8.1f}"),
        ("acceptance ratio gateway/cupsd (goal 1.0)", f"{rate_ratio:8.2f}"),
        (f"Print-Job/s, {CLIENTS} clients, cupsd (baseline)", f"{cups_many:8.1f}"),
        (f"Print-Job/s, {CLIENTS} clients, gateway", f"{gw_many:8.1f}"),
        (f"acceptance ratio with {CLIENTS} clients", f"{gw_many / cups_many:8.2f}"),
        (f"MB/s, {size >> 20} MiB job, cupsd (baseline)", f"{cups_mb:8.1f}"),
        (f"MB/s, {size >> 20} MiB job, gateway", f"{gw_mb:8.1f}"),
        ("throughput ratio gateway/cupsd (goal >= 0.5)", f"{mb_ratio:8.2f}"),
        ("gateway peak RSS (VmHWM)", f"{rss / (1 << 20):8.1f} MB"),
    )
    # Pass/fail is on what the design promises (flat memory, at least half cupsd's rate for a
    # big job); the small-job rate is reported against its goal, not enforced.
    passed = rss < RSS_LIMIT and mb_ratio >= THROUGHPUT_TARGET
    return Outcome(NAME, rows, passed)
