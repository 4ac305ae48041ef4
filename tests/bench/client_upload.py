"""The workstation client sending one big file by each of its routes: MB/s against a plain
loopback copy of the same bytes to disk, and the client process's peak memory.

`make run`'s fabric (cloud, gateway, demo node) runs on free ports and a workstation logs in to
it with `printfabric login --demo`. Then `printfabric print FILE -P secure --via ROUTE --json`
runs once per route as a child process, exactly as a user or a script would run it: IPPS to the
gateway (one streamed Print-Job), upload to storage (an HTTPS PUT to the signed URL the gateway
serves, then commit) and LPR to the demo node's LPD server. Each is timed from its start to its
exit, so the figure is what the user waits for, interpreter start-up and the job look-ups
included (the `printfabric status` row shows what start-up alone costs). The client's peak RSS
is the kernel's own account of it (`wait4`'s ru_maxrss, which misses no spike), taken by a
small spawner process (see SPAWNER for why); `true` spawned the same way shows the floor.

The payload is random, so no format detection or page counting could make it cheap; it goes as
`--format raw`. The baseline is lpd_receive's: the same file over loopback TCP into a file,
hashed and fsynced, timed from connect to the server's answer. After one unmeasured warm-up
copy, ROUNDS rounds of a baseline copy and then each route once; each side's figure is its
fastest round, its peak RSS the highest. The cloud's job of every route must hold exactly the payload
(size and SHA-256; for LPR once the node has passed it on); each is canceled afterwards, which
deletes its document, so the disk holds one job at a time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.bench.lpd_receive import baseline_copy, describe_rounds, fastest, write_payload
from tests.bench.spool_1gib import DEFAULT_SIZE, MB, BenchError, Transfer
from tests.support.gateway import Fabric, running_fabric
from tests.support.processes import clean_env, command_argv, tail

NAME = "client_upload"
QUEUE = "secure"
ROUTES = ("ipps", "upload", "lpr")
MIB = 1 << 20
# The client's peak RSS must stay below this whatever the file's size: it streams the file
# (1 MiB at a time) and never holds it whole.
RSS_LIMIT_MIB = 200.0
# Ample for 1 GiB on two slow cores (each route takes seconds), yet a hung client cannot stall
# the bench for long.
PRINT_SECONDS = 180.0
COMMAND_SECONDS = 60.0
# Each figure is the fastest of this many rounds: whatever else runs on the machine can only
# slow a transfer down, so the fastest is the nearest to what the code can do.
ROUNDS = 3
# How long the node may take to pass an LPR job on to the cloud once it has taken it.
ARRIVAL_SECONDS = 180.0


# Runs a command and reports its wall time and peak RSS (to the file named by its second
# argument). A process's peak RSS (ru_maxrss) starts at whatever RSS the process that spawned it
# had, because exec carries the old memory's high-water mark over: spawned straight from this
# bench, the client would show the bench's own RSS. So a fresh, small interpreter (-S: no site
# imports, ~9 MiB) spawns it; the clock runs from just before the spawn to the exit (seen on a
# pidfd, so the wait can time out without racing the pid), and wait4 reaps the client and hands
# over its rusage: ru_maxrss, KiB on Linux.
SPAWNER = """
import json, os, select, signal, sys, time

timeout, report, *argv = sys.argv[1:]
started = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
pidfd = os.pidfd_open(pid)
poller = select.poll()
poller.register(pidfd, select.POLLIN)
exited = bool(poller.poll(float(timeout) * 1000))
if not exited:
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(report, "w") as out:
    json.dump({"seconds": seconds, "exit": os.waitstatus_to_exitcode(status),
               "timed_out": not exited, "maxrss_kib": usage.ru_maxrss}, out)
"""
SPAWNER_GRACE = 30.0


@dataclass(frozen=True)
class Exited:
    """One run of the client: its output, how long it ran, and its peak RSS in bytes."""

    stdout: str
    seconds: float
    peak_rss: int


@dataclass(frozen=True)
class Sent:
    """The payload printed by one route: the timing, the client's peak RSS, the cloud's job."""

    route: str
    transfer: Transfer
    peak_rss: int
    job_number: int


@dataclass(frozen=True)
class Outcome:
    """The figures as (metric, value) rows and whether they pass; the measurements themselves
    for a test to check."""

    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool
    baseline: Transfer
    floor: Exited
    startup: Exited
    sent: tuple[Sent, ...]


def say(message: str) -> None:
    print(f"[{NAME}] {message}", flush=True)


# The client as a child process -----------------------------------------------------------------


def _client_env(folder: Path) -> dict[str, str]:
    """The client's own config and state folders; nothing from the caller's shell that would
    change where it goes (PRINTFABRIC_* defaults, a proxy for the loopback connections)."""
    env = {
        k: v
        for k, v in clean_env().items()
        if not k.startswith("PRINTFABRIC_") and not k.lower().endswith("_proxy")
    }
    env["PRINTFABRIC_CONFIG_DIR"] = str(folder / "config")
    env["PRINTFABRIC_STATE_DIR"] = str(folder / "state")
    return env


def run_client(argv: list[str], env: Mapping[str, str], folder: Path, timeout: float) -> Exited:
    """Runs argv (the client) to its exit through SPAWNER; its stdout, wall time, peak RSS."""
    out, err, report = folder / "stdout.txt", folder / "stderr.txt", folder / "spawned.json"
    report.unlink(missing_ok=True)
    spawner = [sys.executable, "-I", "-S", "-c", SPAWNER, str(timeout), str(report), *argv]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(
            spawner,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=dict(env),
            cwd=folder,
        )
        try:
            # The spawner kills the client at the timeout itself; this only guards the spawner.
            child.wait(timeout + SPAWNER_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    command = " ".join(Path(a).name if n == 0 else a for n, a in enumerate(argv))
    try:
        spawned = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"`{command}`: the spawner exited with {child.returncode}") from exc
    if spawned["timed_out"]:
        raise BenchError(f"`{command}` ran over {timeout:.0f} s: killed")
    if spawned["exit"] != 0:
        raise BenchError(f"`{command}` exited with {spawned['exit']}: {tail(err, 5)}")
    return Exited(out.read_text(), float(spawned["seconds"]), int(spawned["maxrss_kib"]) * 1024)


class Workstation:
    """A computer with the client logged in to the fabric; every command runs in its folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.env = _client_env(folder)

    def run(self, *args: str, timeout: float = COMMAND_SECONDS) -> Exited:
        return run_client([*command_argv("printfabric"), *args], self.env, self.folder, timeout)

    def json(self, *args: str, timeout: float = COMMAND_SECONDS) -> Any:
        exited = self.run(*args, "--json", timeout=timeout)
        try:
            return json.loads(exited.stdout)
        except ValueError as exc:
            raise BenchError(
                f"`printfabric {' '.join(args)}` printed {exited.stdout[:200]!r}"
            ) from exc

    def print_file(self, payload: Path, via: str, title: str) -> tuple[Exited, dict[str, Any]]:
        """Prints the payload as raw bytes by one route; the run and what it printed."""
        args = ["print", str(payload), "-P", QUEUE, "--via", via, "--format", "raw", "-t", title]
        exited = self.run(*args, "--json", timeout=PRINT_SECONDS)
        try:
            printed: dict[str, Any] = json.loads(exited.stdout)["printed"][0]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BenchError(f"`printfabric print` printed {exited.stdout[:200]!r}") from exc
        return exited, printed

    def find_job(self, title: str) -> dict[str, Any] | None:
        """The user's job of that title that is not canceled yet, if the cloud has it."""
        jobs: list[dict[str, Any]] = self.json("jobs", "--all")["jobs"]
        return next((j for j in jobs if j["title"] == title and j["state"] != "canceled"), None)

    def cancel(self, number: int) -> str:
        """Cancels a job (its document is deleted); what is wrong, if it did not go."""
        try:
            jobs = self.json("cancel", str(number))["jobs"]
        except BenchError as exc:
            return f"job {number} was not canceled: {exc}"
        if [j.get("state") for j in jobs] != ["canceled"]:
            return f"job {number} was not canceled: {jobs}"
        return ""


# The routes ------------------------------------------------------------------------------------


def _job_problems(route: str, job: dict[str, Any], size: int, sha256: str) -> list[str]:
    problems = []
    if job.get("size_bytes") != size:
        problems.append(f"{route}: job {job.get('number')} has {job.get('size_bytes')} bytes")
    if job.get("sha256") != sha256:
        problems.append(f"{route}: job {job.get('number')} hashes to {job.get('sha256')}")
    return problems


def _arrived(station: Workstation, title: str, sha256: str) -> dict[str, Any] | None:
    """Waits until the cloud holds the node's copy of an LPR job, whole and held; the job as
    last seen when it does not within ARRIVAL_SECONDS (None if never)."""
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while True:
        job = station.find_job(title)
        if job is not None and job.get("sha256") == sha256 and job.get("state") == "held":
            return job
        if time.monotonic() > deadline:
            return job
        time.sleep(1.0)


def print_by(
    station: Workstation, fabric: Fabric, route: str, payload: Path, size: int, sha256: str
) -> tuple[Sent, list[str]]:
    """Prints the payload by route, checks the cloud's job and cancels it; the measurement and
    what is wrong with the job."""
    via = f"lpr://127.0.0.1:{fabric.node_lpd_port}/{QUEUE}" if route == "lpr" else route
    title = f"{NAME} {route} {uuid.uuid4().hex[:8]}"
    exited, printed = station.print_file(payload, via, title)
    job: dict[str, Any] | None = printed.get("job")
    problems = []
    if route == "lpr":
        if not isinstance(printed.get("lpd_job_number"), int):
            problems.append(f"lpr: the node gave no LPD job number ({printed})")
        job = _arrived(station, title, sha256)
    if job is None:
        problems.append(f"{route}: no job {title!r} in the cloud")
        return Sent(route, Transfer(size, exited.seconds), exited.peak_rss, 0), problems
    problems += _job_problems(route, job, size, sha256)
    number = int(job["number"])
    if cancel_problem := station.cancel(number):
        problems.append(cancel_problem)
    return Sent(route, Transfer(size, exited.seconds), exited.peak_rss, number), problems


# The benchmark ---------------------------------------------------------------------------------


def _baseline(work: Path, payload: Path, size: int, sha256: str, problems: list[str]) -> Transfer:
    target = work / "baseline.bin"
    transfer, copied_sha, copied = asyncio.run(baseline_copy(payload, target))
    target.unlink()
    if copied != size or copied_sha != sha256:
        problems.append(f"a baseline copy has {copied} bytes, sha256 {copied_sha[:16]}…")
    return transfer


def _measure(work: Path, payload: Path, size: int, sha256: str, rounds: int) -> Outcome:
    problems: list[str] = []
    say(f"warm-up: {size} bytes over loopback TCP into a file")
    _baseline(work, payload, size, sha256, problems)
    limits = {"PF_MAX_JOB_BYTES": str(size + MIB), "PF_NODE_LPD_MAX_JOB": str(size + MIB)}
    say("starting the fabric (cloud, gateway, demo node) and logging a workstation in")
    with running_fabric(work / "fabric", **limits) as fabric:
        station = Workstation(work / "workstation")
        station.json("login", "--demo", str(fabric.home))
        floor = run_client([shutil.which("true") or "/bin/true"], station.env, work, 30.0)
        startup = station.run("status", "--json")
        baselines: list[Transfer] = []
        sends: dict[str, list[Sent]] = {route: [] for route in ROUTES}
        for n in range(1, rounds + 1):
            say(f"round {n}/{rounds}: baseline copy (hashed, fsynced), then {', '.join(ROUTES)}")
            baselines.append(_baseline(work, payload, size, sha256, problems))
            for route in ROUTES:
                measured, wrong = print_by(station, fabric, route, payload, size, sha256)
                sends[route].append(measured)
                problems += wrong

    baseline = fastest(baselines)
    # Each route's fastest round; its peak RSS is the highest of all its rounds.
    sent = [
        replace(
            min(rounds_of, key=lambda s: s.transfer.seconds),
            peak_rss=max(s.peak_rss for s in rounds_of),
        )
        for rounds_of in sends.values()
    ]
    peak = max(s.peak_rss for s in sent)
    rss_ok = peak < RSS_LIMIT_MIB * MIB
    rows = [
        ("payload", f"{size} bytes ({size / MB:.1f} MB) of random data, sha256 {sha256[:16]}…"),
        (
            "rounds",
            f"{rounds}, after a warm-up copy: a baseline copy, then each route; fastest [range]",
        ),
        ("loopback TCP copy to disk (baseline)", describe_rounds(baselines)),
        ("peak RSS of `true` measured alike (the floor)", f"{floor.peak_rss / MIB:.1f} MiB"),
        (
            "client start-up and exit (`printfabric status`)",
            f"{startup.seconds:.2f} s, peak RSS {startup.peak_rss / MIB:.1f} MiB",
        ),
    ]
    for s in sent:
        rows += [
            (
                f"printfabric print --via {s.route}",
                describe_rounds([r.transfer for r in sends[s.route]]),
            ),
            (f"{s.route} / baseline", f"{s.transfer.mb_per_s / baseline.mb_per_s:6.2f}x"),
            (f"{s.route}: client peak RSS (highest)", f"{s.peak_rss / MIB:6.1f} MiB"),
        ]
    rows += [
        (
            "integrity",
            "; ".join(problems) or "ok: every route's job holds the payload (size, sha256)",
        ),
        (
            f"client peak RSS < {RSS_LIMIT_MIB:.0f} MiB",
            f"{'PASS' if rss_ok else 'FAIL'} ({peak / MIB:.1f} MiB)",
        ),
    ]
    passed = rss_ok and not problems
    return Outcome(NAME, tuple(rows), passed, baseline, floor, startup, tuple(sent))


def run(size: int = DEFAULT_SIZE, rounds: int = ROUNDS) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="pf-bench-client-"))
    try:
        payload = work / "payload.bin"
        say(f"writing a payload of {size} bytes in {work}")
        sha256 = write_payload(payload, size)
        return _measure(work, payload, size, sha256, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
