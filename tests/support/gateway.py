"""`make run` as a process for the gateway tests: cloud, demo node and gateway on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from printfabric.ipp import Attribute, IppClient, Operation, Tag, new_request

from tests.support.processes import (
    STARTUP_SECONDS,
    ChildProcess,
    clean_env,
    command_argv,
    free_port,
    wait_until,
)


@dataclass
class Fabric:
    """A running `printfabric-cloud fabric` with its demo tenant."""

    home: Path
    process: ChildProcess
    gateway_port: int
    cloud_port: int
    creds: dict[str, Any]
    node_mfp_port: int = 0
    node_lpd_port: int = 0
    killed: bool = False

    @property
    def login(self) -> str:
        return str(self.creds["login"])

    @property
    def password(self) -> str:
        return str(self.creds["password"])

    @property
    def ca_cert(self) -> Path:
        return Path(self.creds["ca_cert"])

    @property
    def printed(self) -> Path:
        return self.home / "printed"

    def uri(self, queue: str = "direct", *, auth: bool = True, prefix: str = "") -> str:
        """ipps://[login:password@]127.0.0.1:PORT[prefix]/ipp/print/{queue}."""
        who = f"{self.login}:{self.password}@" if auth else ""
        return f"ipps://{who}127.0.0.1:{self.gateway_port}{prefix}/ipp/print/{queue}"

    @property
    def node_mfp_url(self) -> str:
        return f"https://127.0.0.1:{self.node_mfp_port}/mfp/v1"

    @property
    def node_ca_cert(self) -> Path:
        """The CA of the demo node's own MFP certificate."""
        return self.home / "node" / "tls" / "ca.pem"

    async def print_job(self, document: bytes, title: str, queue: str = "secure") -> int:
        """Print-Job of a PDF over IPPS as the demo user; the job's number (IPP job-id)."""
        uri = self.uri(queue, auth=False)
        request = new_request(Operation.PRINT_JOB, uri, user=self.login)
        request.operation_attributes.add(Attribute.name_("job-name", title))
        request.operation_attributes.add(Attribute.mime_type("document-format", "application/pdf"))
        async with IppClient(
            uri, username=self.login, password=self.password, ssl_context=self.ssl_context()
        ) as ipp:
            reply = await ipp.request(request, document)
        group = reply.group(Tag.JOB)
        assert reply.code == 0 and group is not None, reply
        return int(group["job-id"].value)  # type: ignore[arg-type]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def kill9(self) -> None:
        """SIGKILL to the fabric (the cloud runs in it) and to its gateway and node, at once:
        a crash, with no chance to flush or finish anything."""
        parent = psutil.Process(self.process.pid)
        everyone = [parent, *parent.children(recursive=True)]
        for process in everyone:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(everyone, timeout=10)
        self.process.stop()
        self.killed = True

    def gateway_log(self) -> str:
        path = self.home / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_fabric(home: Path, **settings: str) -> Iterator[Fabric]:
    """Starts `printfabric-cloud fabric` (what `make run` runs) and stops it with Ctrl-C.

    settings are environment variables, over the defaults (PF_PUBLIC_URL among them).
    """
    cloud_port, gateway_port, node_mfp_port = free_port(), free_port(), free_port()
    node_lpd_port = free_port()
    defaults = {
        "PF_HOME": str(home),
        "PF_CLOUD_LISTEN": f"127.0.0.1:{cloud_port}",
        "PF_GATEWAY_LISTEN": f"127.0.0.1:{gateway_port}",
        "PF_PUBLIC_URL": f"https://localhost:{gateway_port}",
        "PF_NODE_MFP_LISTEN": f"127.0.0.1:{node_mfp_port}",
        "PF_NODE_LPD_LISTEN": f"127.0.0.1:{node_lpd_port}",
    }
    env = clean_env(**(defaults | settings))
    process = ChildProcess(
        "fabric", [*command_argv("printfabric-cloud"), "fabric"], env, home / "fabric.log"
    )
    # A fabric started again in the same home appends to the logs: only what this run writes
    # says it is up.
    logs = {name: _size(home / name) for name in ("fabric.log", "gateway.log", "node.log")}
    process.start()
    fabric: Fabric | None = None
    try:
        wait_until(
            lambda: "Ctrl-C stops everything" in _read(home / "fabric.log", logs["fabric.log"]),
            STARTUP_SECONDS,
            "the fabric's banner",
            [process],
        )
        wait_until(
            lambda: "gateway listening" in _read(home / "gateway.log", logs["gateway.log"]),
            STARTUP_SECONDS,
            "the gateway to listen",
            [process],
        )
        wait_until(
            lambda: _node_has_directory(_read(home / "node.log", logs["node.log"])),
            STARTUP_SECONDS,
            "the demo node to link and hold the directory (MFP log-ins answer from it)",
            [process],
        )
        creds = json.loads((home / "demo.json").read_text())
        fabric = Fabric(
            home, process, gateway_port, cloud_port, creds, node_mfp_port, node_lpd_port
        )
        yield fabric
    finally:
        if process.running:
            os.kill(process.pid, signal.SIGINT)
        code = process.stop(timeout=20)
        if fabric is None or not fabric.killed:
            assert code in (0, None), f"fabric exited with {code}\n{process.tail()}"


@contextmanager
def running_gateway(home: Path, cloud_target: str, company: str) -> Iterator[int]:
    """One more `printfabric-gateway` on a free port, over the PKI of home (a fabric's $PF_HOME),
    calling the cloud at cloud_target, with company as the tenant of /ipp/print/{queue}.

    Yields its port; it logs to home/gateway-<port>.log.
    """
    port = free_port()
    env = clean_env(
        PF_HOME=str(home),
        PF_GATEWAY_LISTEN=f"127.0.0.1:{port}",
        PF_GATEWAY_CLOUD_TARGET=cloud_target,
        PF_GATEWAY_COMPANY=company,
    )
    log = home / f"gateway-{port}.log"
    process = ChildProcess("gateway", command_argv("printfabric-gateway"), env, log)
    process.start()
    try:
        wait_until(
            lambda: "gateway listening" in _read(log), STARTUP_SECONDS, "the gateway", [process]
        )
        yield port
    finally:
        process.stop()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read(path: Path, offset: int = 0) -> str:
    """The text of path from byte offset on ("" if there is no such file)."""
    if not path.exists():
        return ""
    with path.open("rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")


_LINKED = re.compile(r"directory revision (\d+), cloud's (\d+)")


def _node_has_directory(log: str) -> bool:
    """The node linked and holds the cloud's directory (a snapshot applied, or already current)."""
    if "directory snapshot of revision" in log:
        return True
    return any(held == current for held, current in _LINKED.findall(log))
