"""What the NodeLink benchmarks share: a seeded cloud process, gRPC channels, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psutil
from printfabric.v1 import auth_pb2, auth_pb2_grpc, common_pb2, directory_pb2

from cloud.config import CloudConfig
from cloud.domain.devices import DeviceFields, Devices
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.directory_sync import SyncHeader, SyncRecord, SyncSummary, sync_users
from cloud.domain.enums import AccessRight, DeviceKind, PrincipalKind, UserSource
from cloud.domain.principal import Principal
from cloud.domain.runtime import Runtime
from cloud.domain.tenants import Tenants
from cloud.server import build_runtime
from tests.bench.spool_1gib import BenchError, stop_cloud

T = TypeVar("T")

STARTUP_SECONDS = 60.0
# The cloud's and the node's own message limit.
MAX_MESSAGE = 8 << 20
ADMIN_RIGHTS = frozenset(
    {AccessRight.PRINT, AccessRight.COPY, AccessRight.SCAN, AccessRight.COLOR, AccessRight.ADMIN}
)

Metadata = tuple[tuple[str, str], ...]


def say(name: str, message: str) -> None:
    print(f"[{name}] {message}", flush=True)


# Statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 200 samples is the 198th smallest."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def spread(values: Sequence[float]) -> str:
    """p50 / p99 / max in milliseconds."""
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms  p99 {percentile(values, 99) * 1000:.1f} ms"
        f"  max {max(values) * 1000:.1f} ms  (n={len(values)})"
    )


# The synthetic directory -----------------------------------------------------------------------


def login(i: int) -> str:
    return f"user{i:06d}"


def pin(i: int) -> str:
    # Eight digits, unique per user: PINs are unique in a tenant.
    return f"{10_000_000 + i}"


def card(i: int) -> str:
    return str(4_000_000_000 + i)


def domain_records(count: int, cards: bool) -> Iterator[SyncRecord]:
    for i in range(count):
        yield SyncRecord(
            login=login(i),
            email=f"{login(i)}@bench.example",
            full_name=f"Bench User {i}",
            department=f"Department {i % 40}",
            pin=pin(i),
            cards=(card(i),) if cards else (),
        )


def wire_records(count: int, cards: bool) -> Iterator[directory_pb2.SyncUsersRequest]:
    """The same users as domain_records, as a sync agent streams them."""
    yield directory_pb2.SyncUsersRequest(
        header=directory_pb2.SyncUsersHeader(
            source=common_pb2.USER_SOURCE_LDAP, request_id=secrets.token_hex(8)
        )
    )
    for r in domain_records(count, cards):
        yield directory_pb2.SyncUsersRequest(
            record=directory_pb2.SyncUserRecord(
                login=r.login,
                email=r.email,
                full_name=r.full_name,
                department=r.department,
                pin=r.pin,
                cards=list(r.cards),
            )
        )


# Seeding the cloud's database before its process starts ----------------------------------------


@dataclass(frozen=True)
class Agent:
    """A node or sync agent: what it presents in its hello or AuthenticateDevice."""

    serial: str
    token: str


@dataclass(frozen=True)
class SeededTenant:
    tenant_id: str
    company_code: str
    admin_login: str
    admin_password: str


def cloud_config(home: Path) -> CloudConfig:
    return CloudConfig(home=home).resolved()


def seed(home: Path, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Runs work against the cloud's database (created and migrated) with the domain code."""

    async def run() -> T:
        rt = await build_runtime(cloud_config(home))
        try:
            return await work(rt)
        finally:
            await rt.blobs.close()
            await rt.bus.close()
            await rt.db.close()

    return asyncio.run(run())


async def create_tenant(rt: Runtime, code: str) -> SeededTenant:
    tenant = await Tenants(rt).create(None, code, f"{code} benchmark tenant")
    password = secrets.token_urlsafe(12)
    await Directory(rt).create(
        None,
        tenant.id,
        NewUser(UserFields(login="admin", full_name="Bench Admin", rights=ADMIN_RIGHTS), password),
    )
    return SeededTenant(tenant.id, tenant.company_code, "admin", password)


async def create_sync_agent(rt: Runtime, tenant: SeededTenant) -> Agent:
    device, token = await Devices(rt).create_device(
        None,
        tenant.tenant_id,
        DeviceFields(kind=DeviceKind.SYNC_AGENT, serial_number="BENCH-SYNC-1"),
    )
    return Agent(device.serial_number, token)


async def create_nodes(rt: Runtime, tenant: SeededTenant, count: int) -> list[Agent]:
    devices = Devices(rt)
    nodes = []
    for i in range(count):
        node, token = await devices.create_node(
            None, tenant.tenant_id, f"BENCH-NODE-{i:05d}", f"Site {i}", "Bench"
        )
        nodes.append(Agent(node.serial_number, token))
    return nodes


async def sync_directly(rt: Runtime, tenant: SeededTenant, count: int) -> SyncSummary:
    """The sync agent's work done by the domain function itself, without gRPC."""

    async def records() -> AsyncIterator[SyncRecord]:
        for record in domain_records(count, cards=False):
            yield record

    agent = Principal(PrincipalKind.SYNC_AGENT, tenant.tenant_id, "bench-setup", "bench")
    return await sync_users(
        rt, agent, tenant.tenant_id, SyncHeader(source=UserSource.LDAP), records()
    )


# The cloud process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def clean_env(**pf: str) -> dict[str, str]:
    """This environment without the caller's PF_* settings, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PF_")}
    return env | pf


def console_script(name: str, module: str) -> list[str]:
    # Next to this interpreter (not resolved: a venv's python is a symlink out of the venv).
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


class CloudProcess:
    """`printfabric-cloud serve` over a seeded home, on a free loopback port."""

    def __init__(self, home: Path, heartbeat: str = "15s") -> None:
        self.home = home
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log = home / "cloud.log"
        env = clean_env(
            PF_HOME=str(home),
            PF_CLOUD_LISTEN=self.target,
            PF_NODE_HEARTBEAT=heartbeat,
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*console_script("printfabric-cloud", "cloud.cli"), "serve"],
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.ca_file = cloud_config(home).tls_dir / "ca.pem"
        self.ca = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the cloud exited with {self.process.returncode}:\n{self.tail()}")
            if self.ca_file.exists() and accepts(self.port):
                self.ca = self.ca_file.read_bytes()
                return
            time.sleep(0.1)
        raise BenchError(f"the cloud was not ready within {STARTUP_SECONDS:.0f} s:\n{self.tail()}")

    def rss(self) -> int:
        if self.process.poll() is not None:
            raise BenchError(f"the cloud exited with {self.process.returncode}:\n{self.tail()}")
        return int(psutil.Process(self.pid).memory_info().rss)

    def tail(self) -> str:
        return tail(self.log)

    def stop(self) -> str:
        return stop_cloud(self.process)


# gRPC -------------------------------------------------------------------------------------------


def aio_channel(target: str, ca: bytes, own_connection: bool = False) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        # Loopback only: an http(s)_proxy in the environment must not capture the channel.
        ("grpc.enable_http_proxy", 0),
    ]
    if own_connection:
        # Channels with equal arguments otherwise share one TCP connection.
        options.append(("grpc.use_local_subchannel_pool", 1))
    return grpc.aio.secure_channel(
        target, grpc.ssl_channel_credentials(root_certificates=ca), options=options
    )


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


async def login_admin(channel: grpc.aio.Channel, tenant: SeededTenant) -> Metadata:
    reply = await auth_pb2_grpc.AuthServiceStub(channel).AuthenticateUser(
        auth_pb2.AuthenticateUserRequest(
            company_code=tenant.company_code,
            credential=auth_pb2.UserCredential(
                password=auth_pb2.PasswordCredential(
                    login=tenant.admin_login, password=tenant.admin_password
                )
            ),
        ),
        timeout=30,
    )
    return bearer(reply.tokens.access_token)


async def login_agent(
    channel: grpc.aio.Channel, tenant: SeededTenant, agent: Agent, kind: int
) -> Metadata:
    reply = await auth_pb2_grpc.AuthServiceStub(channel).AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=tenant.company_code,
            serial_number=agent.serial,
            access_token=agent.token,
            kind=kind,  # type: ignore[arg-type]
        ),
        timeout=30,
    )
    return bearer(reply.tokens.access_token)
