"""`printfabric serve-printer` as a process for the tests, and the client logged in beside it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from printfabric.ipp import Attribute, IppClient, Message, Operation, Tag, new_request

from tests.support.gateway import Fabric
from tests.support.processes import ROOT, ChildProcess, clean_env, wait_until

_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 30.0


def printfabric_argv() -> list[str]:
    script = _BIN / "printfabric"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "client"]


def run_client(*args: str, env: Mapping[str, str], timeout: float = 60) -> str:
    """`printfabric ARGS` to completion; its stdout (anything but exit 0 fails the test)."""
    done = subprocess.run(
        [*printfabric_argv(), *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"`printfabric {' '.join(args)}` exited with {done.returncode}:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


def logged_in_client(base: Path, fabric: Fabric, gateway_url: str = "") -> dict[str, str]:
    """An environment whose client (config and state in base) is logged in as the demo user.

    gateway_url: log in there (e.g. through a proxy) instead of the fabric's own gateway.
    """
    env = clean_env(
        PRINTFABRIC_CONFIG_DIR=str(base / "config"),
        PRINTFABRIC_STATE_DIR=str(base / "state"),
        PRINTFABRIC_PASSWORD=fabric.password,
    )
    env.pop("PRINTFABRIC_PRINTER", None)
    if gateway_url:
        args = [gateway_url, "--company", str(fabric.creds["company_code"])]
        args += ["--login", fabric.login, "--ca", str(fabric.ca_cert)]
        run_client("login", *args, env=env)
    else:
        run_client("login", "--demo", str(fabric.home), env=env)
    return env


def cloud_jobs(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every job of the logged-in user in the cloud (`printfabric jobs --all --json`)."""
    answer = json.loads(run_client("jobs", "--all", "--json", env=env))
    return list(answer["jobs"])


class ServePrinter:
    """`printfabric serve-printer --json` on 127.0.0.1:0; the port from its first JSON line."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.env = dict(env)
        self.log = log
        self.args = list(args)
        self.process: ChildProcess | None = None
        self.started: dict[str, Any] = {}

    @property
    def port(self) -> int:
        return int(self.started["port"])

    @property
    def uri(self) -> str:
        return str(self.started["uri"])

    @property
    def state_dir(self) -> Path:
        return Path(self.env["PRINTFABRIC_STATE_DIR"]) / "serve-printer"

    def start(self) -> ServePrinter:
        argv = [*printfabric_argv(), "serve-printer", "--listen", "127.0.0.1:0", "--json"]
        self.process = ChildProcess("serve-printer", [*argv, *self.args], self.env, self.log)
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.process.start()

        def announced() -> dict[str, Any] | None:
            with self.log.open("rb") as fh:
                fh.seek(offset)
                for line in fh.read().decode("utf-8", "replace").splitlines():
                    if line.startswith("{"):
                        data: dict[str, Any] = json.loads(line)
                        return data
            return None

        self.started = wait_until(
            announced, STARTUP_SECONDS, "serve-printer's start line", [self.process], every=0.05
        )
        assert "port" in self.started, self.started
        return self

    def stop(self) -> int | None:
        """SIGTERM; its exit status."""
        return None if self.process is None else self.process.stop()

    def __enter__(self) -> ServePrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        code = self.stop()
        assert code == 0, f"serve-printer exited with {code}\n{self.tail()}"

    def tail(self) -> str:
        return self.process.tail(60) if self.process else ""

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.started["ca_cert"]))

    async def request(
        self,
        operation: Operation,
        attributes: Sequence[Attribute] = (),
        document: Any = None,
        job: Sequence[Attribute] = (),
    ) -> Message:
        """One IPP request to the printer (TLS checked against its own CA)."""
        request = new_request(operation, self.uri, user=os.environ.get("USER", "tester"))
        for attr in attributes:
            request.operation_attributes.add(attr)
        if job:
            group = request.add_group(Tag.JOB)
            for attr in job:
                group.add(attr)
        async with IppClient(self.uri, ssl_context=self.ssl_context(), timeout=120) as ipp:
            return await ipp.request(request, document)

    async def job(self, job_id: int) -> dict[str, Any]:
        """Get-Job-Attributes: the job's attributes by name (first value each)."""
        reply = await self.request(
            Operation.GET_JOB_ATTRIBUTES, [Attribute.integer("job-id", job_id)]
        )
        group = reply.group(Tag.JOB)
        assert reply.code == 0 and group is not None, reply
        return {a.name: a.value if len(a.values) == 1 else list(a.values) for a in group}
