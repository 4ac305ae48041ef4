"""What serve-printer is told to do: listen address, cloud queue, folders; built once by the CLI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from client.errors import ClientError, ExitCode
from client.paths import ClientPaths

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8631
# The certificate names every local printer answers to.
TLS_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
# The unforwarded-job retry pause grows from 1 s, doubling, to this.
RETRY_MAX_SECONDS = 60.0
# The queue's description is fetched again this often (it also comes with every send).
DESCRIBE_EVERY_SECONDS = 300.0
# Finished jobs stay visible to Get-Jobs this long, and at most this many.
RETENTION_SECONDS = 24 * 3600.0
RETENTION_JOBS = 100
# A Create-Job whose document does not come within this long ends aborted.
CREATE_JOB_TIMEOUT_SECONDS = 300


class UsageError(ClientError):
    """A bad command line: exit status 2 like argparse's own errors."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @property
    def uri_host(self) -> str:
        """The host as it goes in the printer URI (the certificate names localhost)."""
        if self.host in ("127.0.0.1", "localhost"):
            return "localhost"
        return f"[{self.host}]" if ":" in self.host else self.host


@dataclass(frozen=True)
class ServeSettings:
    paths: ClientPaths
    listen: Listen
    # The cloud queue to forward to; empty: PRINTFABRIC_PRINTER's or the user's only one.
    printer: str
    json: bool = False
    retry_max: float = RETRY_MAX_SECONDS
    describe_every: float = DESCRIBE_EVERY_SECONDS
    retention_seconds: float = RETENTION_SECONDS
    retention_jobs: int = RETENTION_JOBS

    @property
    def home(self) -> Path:
        """serve-printer's own folder in the client's state folder."""
        return self.paths.state / "serve-printer"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def queue_dir(self) -> Path:
        return self.home / "queue"

    @property
    def printers_dir(self) -> Path:
        """The last known description of each cloud queue, for starting while offline."""
        return self.home / "printers"

    @property
    def tls_hostnames(self) -> list[str]:
        extra = [] if self.listen.host in TLS_HOSTNAMES else [self.listen.host]
        return [*TLS_HOSTNAMES, *extra]


def parse_listen(text: str) -> Listen:
    """HOST:PORT ([::1]:PORT for IPv6; port 0: any free one), on a loopback address only."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--listen {text!r}: say HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    host = host.strip("[]") or DEFAULT_HOST
    if host == "localhost":
        host = DEFAULT_HOST
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UsageError(
            f"--listen {text!r}: {host} is not an IP address; use 127.0.0.1 or ::1"
        ) from None
    if not loopback:
        raise UsageError(
            f"--listen {text!r}: {host} is not a loopback address. This printer has no "
            "authentication (whoever reaches it prints as you, the logged-in user), so it "
            "only listens on this computer: use 127.0.0.1 or ::1"
        )
    return Listen(host, int(port_text))
