"""What every route is given and returns, how a route is named, and retrying a dropped send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from client.document import Document
from client.errors import Unreachable, UsageError

log = logging.getLogger(__name__)
T = TypeVar("T")
# A send that broke off is tried again this often, after 1, 2, 4 ... seconds.
ATTEMPTS = 4
LPD_PORT = 515


@dataclass(frozen=True)
class PrintJob:
    """One file to print and what it asks of the printer."""

    document: Document
    printer: str
    title: str
    copies: int = 1
    duplex: bool = False
    mono: bool = False
    # PWG media name (iso_a4_210x297mm); empty: the printer's default.
    media: str = ""
    # The idempotency key: every attempt of this job carries it, so a resend after a network
    # drop finds the first job instead of making a second.
    request_id: str = ""


@dataclass(frozen=True)
class Delivered:
    route: str
    # The cloud's job (the JSON of docs/client-api.md), when the route tells which it is.
    job: dict[str, Any] | None = None
    # LPR: the job number the LPD server took it under.
    lpd_job_number: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Route:
    """kind is ipps, lpr or upload; for lpr, where it goes (host, port, queue) if named."""

    kind: str
    host: str = ""
    port: int = LPD_PORT
    queue: str = ""

    @property
    def uri(self) -> str:
        if self.kind != "lpr" or not self.host:
            return self.kind
        port = "" if self.port == LPD_PORT else f":{self.port}"
        return f"lpr://{self.host}{port}/{self.queue}"


def parse_route(text: str) -> Route:
    """--via: ipps, upload, lpr (the printer's node) or lpr://host[:port]/queue."""
    if text in ("ipps", "upload", "lpr"):
        return Route(text)
    parts = urlsplit(text)
    queue = parts.path.strip("/")
    try:
        port = parts.port or LPD_PORT
    except ValueError:
        port = 0
    if parts.scheme not in ("lpr", "lpd") or not parts.hostname or not queue or "/" in queue:
        raise UsageError(
            f"--via {text!r}: say ipps, upload, lpr, or lpr://host[:port]/queue", "BAD_ROUTE"
        )
    if not 0 < port < 65536:
        raise UsageError(f"--via {text!r}: the port is not a port number", "BAD_ROUTE")
    return Route("lpr", parts.hostname, port, queue)


async def with_retries(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """attempt(), again after a growing pause while it fails to reach the other side."""
    for n in range(1, ATTEMPTS + 1):
        try:
            return await attempt()
        except Unreachable as exc:
            if n == ATTEMPTS:
                raise
            pause = 2 ** (n - 1)
            log.warning("%s: %s; trying again in %d s", what, exc.message, pause)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
