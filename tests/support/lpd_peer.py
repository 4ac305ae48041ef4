"""A real LPD server for the LPR client's tests: CUPS's cups-lpd behind socat, into a PrivateCupsd.

socat listens on 127.0.0.1:PORT and runs one `cups-lpd -n` per connection with the socket as
its stdin/stdout (as inetd would); cups-lpd turns each job into IPP requests to the private
cupsd named by CUPS_SERVER. A queue made with `add_file_queue` writes every job to a file, so a
test reads back exactly the bytes that arrived.

What cups-lpd does (CUPS 2.4, scheduler/cups-lpd.c), which the tests rely on:
- It takes a job only for a queue that is accepting jobs AND shared (printer-is-shared); the
  private cupsd shares nothing by default, so `add_file_queue` shares the queue. An unknown or
  unshared queue gets negative acknowledgement 1 for the "receive a printer job" command.
- It reads subcommands until the client closes its side, and only then creates the job in
  cupsd (Create-Job with requesting-user-name = the P line, job-name = the J line, then
  Send-Document per data file with document-name = the N line before it): the job exists once
  cups-lpd has closed the connection.
- An `l` (raw) data file becomes a job with the `raw` option; the pass-through PPD of a file
  queue still copies it to the file unchanged.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from printfabric.ipp import Attribute, IppClient, Operation, Tag, new_request

from tests.support.cups import HOST, PrivateCupsd, require
from tests.support.processes import ChildProcess, accepts, free_port, peer_missing, wait_until

CUPS_LPD = Path("/usr/lib/cups/daemon/cups-lpd")
STOP_SECONDS = 10.0

__all__ = ["CUPS_LPD", "CupsLpd"]


class CupsLpd:
    """cups-lpd on 127.0.0.1:port (through socat), submitting into cupsd."""

    def __init__(self, cupsd: PrivateCupsd, base: Path) -> None:
        self.cupsd = cupsd
        self.base = base
        self.port = 0
        self.process: ChildProcess | None = None

    def start(self) -> None:
        socat = require("socat")["socat"]
        if not CUPS_LPD.is_file():
            peer_missing(f"{CUPS_LPD} is missing: install the Debian package cups")
        self.base.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # the free port may be taken before socat binds it
            self.port = free_port()
            argv = [
                socat,
                f"TCP-LISTEN:{self.port},bind={HOST},reuseaddr,fork",
                f"EXEC:{CUPS_LPD} -n,nofork",
            ]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CUPS_", "PF_"))}
            env["CUPS_SERVER"] = self.cupsd.server
            self.process = ChildProcess("cups-lpd", argv, env, self.base / "socat.log")
            self.process.start()
            try:
                wait_until(lambda: accepts(self.port), 10, "socat listening", [self.process])
                return
            except AssertionError as exc:
                last_error = str(exc)
                self.process.stop(STOP_SECONDS)
        raise AssertionError(f"socat/cups-lpd did not start\n{last_error}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(STOP_SECONDS)

    async def __aenter__(self) -> CupsLpd:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    async def add_file_queue(self, name: str, out: Path) -> None:
        """A shared queue whose printer is the file out (each job overwrites it)."""
        await asyncio.to_thread(
            self.cupsd.add_queue, name, f"file://{out}", options={"printer-is-shared": "true"}
        )

    async def jobs(self, queue: str) -> list[dict[str, Any]]:
        """Every job of queue, completed ones too, as cupsd tells it over IPP (Get-Jobs):
        job-id, job-originating-user-name, job-name, job-state, document-name-supplied."""
        request = new_request(Operation.GET_JOBS, self.cupsd.uri(queue), user="root")
        request.operation_attributes.add(Attribute.keyword("which-jobs", "all"))
        request.operation_attributes.add(
            Attribute.keyword(
                "requested-attributes",
                "job-id",
                "job-originating-user-name",
                "job-name",
                "job-state",
                "document-name-supplied",
            )
        )
        async with IppClient(self.cupsd.uri(queue)) as client:
            reply = await client.request(request)
        if not reply.status.is_success:
            raise AssertionError(f"Get-Jobs on {queue}: {reply.status.keyword}")
        return [{attr.name: attr.value for attr in group} for group in reply.groups_of(Tag.JOB)]


@pytest.fixture(scope="module")
def cups_lpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsLpd]:
    """One cupsd with cups-lpd in front of it for the module; each test adds its own queues."""
    base = tmp_path_factory.mktemp("cups-lpd")
    with PrivateCupsd(base / "cupsd") as cupsd:
        server = CupsLpd(cupsd, base / "lpd")
        server.start()
        try:
            yield server
        finally:
            server.stop()
