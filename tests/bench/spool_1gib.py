"""A 1 GiB job through SubmitJob and DownloadJob on the real TLS cloud: peak RSS and MB/s."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from google.protobuf.descriptor import FileDescriptor
from printfabric.v1 import auth_pb2, spool_pb2

NAME = "spool_1gib"
DEFAULT_SIZE = 1 << 30
# Decimal megabytes throughout: "200 MB" is then the stricter reading (190.7 MiB).
MB = 1_000_000
RSS_LIMIT_MB = 200.0
# SubmitJob takes at most 1 MiB per chunk message.
CHUNK = 1 << 20
# The random block the payload repeats; a multiple of CHUNK so every chunk is one slice of it.
BLOCK = 8 << 20
# The cloud's own gRPC message limit; the client matches it.
MAX_MESSAGE = 8 << 20
SAMPLE_SECONDS = 0.05
STARTUP_SECONDS = 60.0
# Ample for 1 GiB on two slow cores, yet a hung transfer cannot stall `make bench` for long.
TRANSFER_SECONDS = 120.0
STOP_SECONDS = 20.0
# The cloud's dev PKI under PF_HOME/tls, which the TLS baseline borrows.
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "server.pem", "server-key.pem"

Metadata = tuple[tuple[str, str | bytes], ...]


class BenchError(Exception):
    """The benchmark could not measure: the cloud did not start, a transfer broke, ..."""


@dataclass(frozen=True)
class Outcome:
    """The benchmark's figures as (metric, value) rows, and whether it passed."""

    name: str
    rows: tuple[tuple[str, str], ...]
    passed: bool


@dataclass(frozen=True)
class Transfer:
    size: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds

    def describe(self) -> str:
        return f"{self.mb_per_s:8.1f} MB/s  ({self.seconds:.2f} s)"


def parse_size(text: str) -> int:
    """Parses '1G', '256M', '512K', '1GiB' (binary units) or plain bytes, for --size."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    factor = units.get(value[-1:], 1)
    if factor != 1:
        value = value[:-1]
    try:
        size = int(float(value) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G or 256M)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return size


def say(message: str) -> None:
    print(f"[{NAME}] {message}", flush=True)


# The payload ----------------------------------------------------------------------------------


class Payload:
    """size pseudo-random bytes, made anew on each pass and never whole in memory.

    An 8 MiB random block repeats, XORed with an AES-CTR keystream whose counter runs across the
    whole payload: no two chunks are alike, so neither compression nor deduplication could
    flatter a transport, and with AES-NI it costs far less than the transfers it feeds.
    """

    def __init__(self, size: int, seed: int = 20240601) -> None:
        rng = random.Random(seed)
        self.size = size
        self._block = rng.randbytes(BLOCK)
        self._key = rng.randbytes(16)

    def stream(self) -> PayloadStream:
        return PayloadStream(self)

    def chunks(self) -> Iterator[bytes]:
        # The same key and initial counter on every pass: every pass yields the same bytes.
        mixer = Cipher(algorithms.AES(self._key), modes.CTR(bytes(16))).encryptor()
        block = memoryview(self._block)
        for start in range(0, self.size, CHUNK):
            offset = start % BLOCK
            yield mixer.update(block[offset : offset + min(CHUNK, self.size - start)])


class PayloadStream:
    """One pass over a Payload that hashes what it yields, as a real submitter would."""

    def __init__(self, payload: Payload) -> None:
        self._payload = payload
        self._hash = hashlib.sha256()
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._payload.chunks():
            self._hash.update(chunk)
            self.sent += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


# The cloud process and its memory --------------------------------------------------------------


class RssSampler:
    """Samples a process's RSS every 50 ms in a thread; keeps the peak of each phase."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._lock = threading.Lock()
        self._phase = "startup"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peaks: dict[str, int] = {}
        self.samples = 0

    def start(self) -> None:
        self._thread.start()

    def phase(self, name: str) -> None:
        """Closes the current phase with a last sample and opens the next one."""
        with contextlib.suppress(psutil.Error):
            self._sample()
        with self._lock:
            self._phase = name

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        with self._lock:
            return max(self.peaks.values(), default=0)

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        with self._lock:
            self.peaks[self._phase] = max(self.peaks.get(self._phase, 0), rss)
            self.samples += 1

    def _run(self) -> None:
        while True:
            try:
                self._sample()
            except psutil.Error:
                return  # the process is gone: its peak is already recorded
            if self._stop.wait(SAMPLE_SECONDS):
                return


def vm_hwm(pid: int) -> int:
    """The kernel's own peak RSS of the process (VmHWM), in bytes; it misses no short spike."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _cloud_command() -> list[str]:
    # The console script `make run` uses, next to this interpreter (not resolved: a venv's
    # python is a symlink out of the venv); `-m cloud.cli` where it is not installed.
    script = Path(sys.executable).with_name("printfabric-cloud")
    if script.exists():
        return [str(script), "fabric"]
    return [sys.executable, "-m", "cloud.cli", "fabric"]


def start_cloud(home: Path, log: Path) -> subprocess.Popen[bytes]:
    port = _free_port()
    # Only the bench's own settings: a PF_DATABASE_URL or PF_S3_BUCKET left in the caller's
    # shell would send the gigabyte somewhere other than this temp folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PF_")}
    env |= {
        "PF_HOME": str(home),
        "PF_CLOUD_LISTEN": f"127.0.0.1:{port}",
        "PF_MAX_JOB_BYTES": "2G",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            _cloud_command(),
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def wait_ready(process: subprocess.Popen[bytes], home: Path, log: Path) -> dict[str, Any]:
    """Waits for demo.json and for the cloud's port to accept; returns the demo credentials."""
    deadline = time.monotonic() + STARTUP_SECONDS
    demo: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the cloud exited with {process.returncode}:\n{_tail(log)}")
        if demo is None:
            # The cloud may be halfway through writing it: try again on the next round.
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                demo = json.loads((home / "demo.json").read_text())
        if demo is not None and _accepts(int(demo["cloud_target"].rpartition(":")[2])):
            return demo
        time.sleep(0.1)
    raise BenchError(f"the cloud was not ready within {STARTUP_SECONDS:.0f} s:\n{_tail(log)}")


def stop_cloud(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM, as an operator would; SIGKILL only if it does not stop in time."""
    if process.poll() is not None:
        return f"had already exited with {process.returncode}"
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return f"did not stop within {STOP_SECONDS:.0f} s of SIGTERM: killed"
    return f"exit {code} {time.perf_counter() - started:.1f} s after SIGTERM"


# gRPC ------------------------------------------------------------------------------------------


def open_channel(demo: dict[str, Any]) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(Path(demo["ca_cert"]).read_bytes())
    return grpc.secure_channel(
        demo["cloud_target"],
        creds,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            # Loopback only: an http(s)_proxy in the environment must not capture the channel.
            ("grpc.enable_http_proxy", 0),
        ],
    )


def _path(file: FileDescriptor, service: str, method: str) -> str:
    """The RPC path from the descriptors, so no service or method name is spelled twice."""
    desc = file.services_by_name[service]
    return f"/{desc.full_name}/{desc.methods_by_name[method].name}"


class Rpcs:
    """The RPCs the benchmark makes, typed: the generated *_pb2_grpc stubs are untyped."""

    def __init__(self, channel: grpc.Channel) -> None:
        spool = spool_pb2.DESCRIPTOR
        self.authenticate = channel.unary_unary(
            _path(auth_pb2.DESCRIPTOR, "AuthService", "AuthenticateUser"),
            request_serializer=auth_pb2.AuthenticateUserRequest.SerializeToString,
            response_deserializer=auth_pb2.AuthenticateUserResponse.FromString,
        )
        self.submit_job = channel.stream_unary(
            _path(spool, "SpoolService", "SubmitJob"),
            request_serializer=spool_pb2.SubmitJobRequest.SerializeToString,
            response_deserializer=spool_pb2.SubmitJobResponse.FromString,
        )
        self.download_job = channel.unary_stream(
            _path(spool, "SpoolService", "DownloadJob"),
            request_serializer=spool_pb2.DownloadJobRequest.SerializeToString,
            response_deserializer=spool_pb2.DownloadJobResponse.FromString,
        )


def login(rpcs: Rpcs, demo: dict[str, Any]) -> Metadata:
    reply = rpcs.authenticate(
        auth_pb2.AuthenticateUserRequest(
            company_code=demo["company_code"],
            credential=auth_pb2.UserCredential(
                password=auth_pb2.PasswordCredential(login=demo["login"], password=demo["password"])
            ),
        ),
        timeout=30,
    )
    return (("authorization", f"Bearer {reply.tokens.access_token}"),)


def submit(
    rpcs: Rpcs, bearer: Metadata, queue: str, payload: Payload
) -> tuple[spool_pb2.Job, str, Transfer]:
    """Streams the payload as a job; returns the cloud's job, the client's SHA-256 and timing."""
    stream = payload.stream()

    def messages() -> Iterator[spool_pb2.SubmitJobRequest]:
        header = spool_pb2.JobHeader(
            printer=queue,
            title=f"bench {payload.size} bytes",
            origin="tests.bench",
            size_hint=payload.size,
        )
        yield spool_pb2.SubmitJobRequest(header=header)
        for chunk in stream:
            yield spool_pb2.SubmitJobRequest(chunk=chunk)

    started = time.perf_counter()
    reply = rpcs.submit_job(messages(), metadata=bearer, timeout=TRANSFER_SECONDS)
    elapsed = time.perf_counter() - started
    return reply.job, stream.sha256, Transfer(stream.sent, elapsed)


def download(rpcs: Rpcs, bearer: Metadata, job_id: str) -> tuple[spool_pb2.Job, str, Transfer]:
    """Streams the job back; returns the job of the first message, the data's SHA-256, timing."""
    started = time.perf_counter()
    replies = rpcs.download_job(
        spool_pb2.DownloadJobRequest(job_id=job_id), metadata=bearer, timeout=TRANSFER_SECONDS
    )
    first = next(replies, None)
    if first is None or first.WhichOneof("item") != "job":
        raise BenchError("DownloadJob did not start with the job")
    digest = hashlib.sha256()
    size = 0
    for reply in replies:
        digest.update(reply.chunk)
        size += len(reply.chunk)
    return first.job, digest.hexdigest(), Transfer(size, time.perf_counter() - started)


# Baselines: the same bytes over a plain loopback socket, without and with TLS -------------------


def tls_contexts(tls_dir: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tls_dir / CERT_FILE, tls_dir / KEY_FILE)
    # Verifies the chain to the cloud's dev CA and the name "localhost", like the gRPC client.
    client = ssl.create_default_context(cafile=tls_dir / CA_FILE)
    return server, client


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            raise BenchError("the baseline server closed the connection early")
        data += part
    return bytes(data)


def socket_copy(
    payload: Payload, server_ctx: ssl.SSLContext | None, client_ctx: ssl.SSLContext | None
) -> Transfer:
    """Sends the payload in 1 MiB chunks to a thread that hashes it, as the cloud does.

    The clock stops when the server's digest comes back, as SubmitJob's stops at its reply.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TRANSFER_SECONDS)
    port = listener.getsockname()[1]
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:  # wrap_socket detaches conn, so this only closes it if TLS never started
                conn.settimeout(TRANSFER_SECONDS)
                sock = server_ctx.wrap_socket(conn, server_side=True) if server_ctx else conn
                with sock:
                    digest = hashlib.sha256()
                    view = memoryview(bytearray(CHUNK))
                    left = payload.size
                    while left:
                        n = sock.recv_into(view, min(CHUNK, left))
                        if n == 0:
                            raise BenchError("the baseline client closed the connection early")
                        digest.update(view[:n])
                        left -= n
                    sock.sendall(digest.digest())
        except BaseException as exc:  # reported by the client side below
            failures.append(exc)

    server = threading.Thread(target=serve, name="baseline-server", daemon=True)
    server.start()
    stream = payload.stream()
    try:
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=TRANSFER_SECONDS) as raw:
            sock = client_ctx.wrap_socket(raw, server_hostname="localhost") if client_ctx else raw
            with sock:
                for chunk in stream:
                    sock.sendall(chunk)
                ack = _recv_exact(sock, 32)
        elapsed = time.perf_counter() - started
    except (OSError, BenchError) as exc:
        raise BenchError(f"baseline copy failed: {failures[0] if failures else exc}") from exc
    finally:
        server.join(TRANSFER_SECONDS)
        listener.close()
    if failures:
        raise BenchError(f"baseline server failed: {failures[0]}")
    if ack.hex() != stream.sha256:
        raise BenchError("the baseline server's SHA-256 differs from the client's")
    return Transfer(stream.sent, elapsed)


# The benchmark ---------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / MB:6.1f} MB"


def _ratio(fast: Transfer, base: Transfer) -> str:
    return f"{fast.mb_per_s / base.mb_per_s:6.2f}x"


def _integrity(
    size: int, sent_sha: str, stored: spool_pb2.Job, served: spool_pb2.Job, got_sha: str, got: int
) -> list[str]:
    """Every way the cloud's figures or bytes differ from what was sent."""
    problems = []
    if stored.size_bytes != size:
        problems.append(f"SubmitJob says {stored.size_bytes} bytes, {size} were sent")
    if stored.sha256 != sent_sha:
        problems.append(f"SubmitJob says sha256 {stored.sha256[:16]}…, sent {sent_sha[:16]}…")
    if served.sha256 != sent_sha or served.size_bytes != size:
        problems.append("DownloadJob's job header differs from what was sent")
    if got != size:
        problems.append(f"DownloadJob streamed {got} bytes, {size} were sent")
    if got_sha != sent_sha:
        problems.append(f"DownloadJob's data hashes to {got_sha[:16]}…, sent {sent_sha[:16]}…")
    return problems


def run(size: int = DEFAULT_SIZE) -> Outcome:
    payload = Payload(size)
    home = Path(tempfile.mkdtemp(prefix="pf-bench-"))
    log = home / "cloud.log"
    try:
        with contextlib.ExitStack() as cleanup:
            say(f"starting the cloud in {home}")
            process = start_cloud(home, log)
            cleanup.callback(stop_cloud, process)
            sampler = RssSampler(process.pid)
            sampler.start()
            cleanup.callback(sampler.stop)
            demo = wait_ready(process, home, log)
            say(f"cloud pid {process.pid} ready on {demo['cloud_target']}")

            sampler.phase("baselines")
            say(f"baseline: {size} bytes over loopback TCP")
            tcp = socket_copy(payload, None, None)
            say(f"baseline: {size} bytes over loopback TLS (Python ssl)")
            tls = socket_copy(payload, *tls_contexts(home / "tls"))

            with open_channel(demo) as channel:
                sampler.phase("login")
                rpcs = Rpcs(channel)
                bearer = login(rpcs, demo)
                sampler.phase("submit")
                say(f"SubmitJob: {size} bytes in {CHUNK >> 10} KiB chunks")
                try:
                    stored, sent_sha, up = submit(rpcs, bearer, demo["queue"], payload)
                    sampler.phase("download")
                    say(f"DownloadJob: job {stored.job_id}")
                    served, got_sha, down = download(rpcs, bearer, stored.job_id)
                except grpc.RpcError as exc:
                    raise BenchError(f"gRPC failed: {exc.code()}: {exc.details()}") from exc
                sampler.phase("after")

            hwm = vm_hwm(process.pid)
            sampler.stop()
            stopped = stop_cloud(process)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    problems = _integrity(size, sent_sha, stored, served, got_sha, down.size)
    peak = max(sampler.peak, hwm)
    rss_ok = peak < RSS_LIMIT_MB * MB
    rows = [
        ("payload", f"{size} bytes ({size / MB:.1f} MB), sha256 {sent_sha[:16]}…"),
        ("loopback TCP copy (baseline)", tcp.describe()),
        ("loopback TLS copy (baseline)", tls.describe()),
        ("gRPC SubmitJob (TLS)", up.describe()),
        ("gRPC DownloadJob (TLS)", down.describe()),
        ("SubmitJob / TCP, / TLS", f"{_ratio(up, tcp)}  {_ratio(up, tls)}"),
        ("DownloadJob / TCP, / TLS", f"{_ratio(down, tcp)}  {_ratio(down, tls)}"),
        *((f"cloud RSS peak: {phase}", _mb(rss)) for phase, rss in sampler.peaks.items()),
        (f"cloud RSS peak ({sampler.samples} samples)", _mb(sampler.peak)),
        ("cloud VmHWM (kernel peak)", _mb(hwm)),
        ("integrity", "; ".join(problems) or "ok: sizes and SHA-256 match both ways"),
        ("cloud stop", stopped),
        (
            f"peak RSS < {RSS_LIMIT_MB:.0f} MB",
            f"{'PASS' if rss_ok else 'FAIL'} ({peak / MB:.1f} MB)",
        ),
    ]
    return Outcome(NAME, tuple(rows), passed=rss_ok and not problems)
