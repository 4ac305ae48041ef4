"""`printfabric serve-printer`: the command line of the local printer (see --help)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable

from client.errors import ClientError, ExitCode
from client.paths import ClientPaths
from client.serve_printer.service import Started, serve
from client.serve_printer.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    RETRY_MAX_SECONDS,
    ServeSettings,
    UsageError,
    parse_listen,
)

DESCRIPTION = """\
A printer on this computer that forwards what it prints to PrintFabric.

It listens on localhost over IPPS (TLS, its own certificate in the state folder) and describes
itself as the PrintFabric queue it forwards to, so the operating system adds it as an ordinary
driverless (IPP Everywhere) printer:

  lpadmin -p PrintFabric -E -v ipps://localhost:8631/ipp/print -m everywhere

Every job it receives is kept whole in a queue in the state folder (PRINTFABRIC_STATE_DIR,
default ~/.local/state/printfabric/serve-printer) and sent to PrintFabric as the logged-in user
(`printfabric login`), where a secure queue holds it until you release it at any printer. While
PrintFabric cannot be reached, jobs wait here and go when it is back (also after a restart of
this command); each is sent exactly once. When the login ends, jobs wait until you log in
again. A job already sent is canceled with `printfabric cancel N`.
"""

EPILOG = """\
It has no authentication of its own (whoever prints to it prints as you), so it listens on a
loopback address only. It starts offline too, with the queue's last known description.
Ctrl-C or SIGTERM stop it; queued jobs stay. Exit codes: 0 stopped, 1 failed, 2 bad command
line, 3 not logged in, 5 no such printer, 6 PrintFabric unreachable and no printer known.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfabric serve-printer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
        help=f"loopback address to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0: any "
        "free port, printed at start)",
    )
    p.add_argument(
        "-P",
        "--printer",
        metavar="QUEUE",
        help="the PrintFabric queue to forward to (default: PRINTFABRIC_PRINTER, else your "
        "only printer)",
    )
    p.add_argument(
        "--retry-max",
        metavar="SECONDS",
        type=float,
        default=RETRY_MAX_SECONDS,
        help="longest pause between tries while PrintFabric is unreachable (default "
        f"{RETRY_MAX_SECONDS:.0f}; the pause starts at 1 s and doubles)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the start (printer URI, port, lpadmin line) as one JSON line",
    )
    return p


def _announce(as_json: bool) -> Callable[[Started], None]:
    def announce(started: Started) -> None:
        if as_json:
            line = {
                "uri": started.uri,
                "port": started.port,
                "printer": started.printer,
                "company": started.company,
                "login": started.login,
                "link": started.link,
                "waiting_jobs": started.waiting_jobs,
                "lpadmin": started.lpadmin,
                "ca_cert": str(started.ca_cert),
            }
            print(json.dumps(line), flush=True)
            return
        link = "" if started.link != "offline" else " (offline now: jobs wait here until then)"
        waiting = (
            f"\n{started.waiting_jobs} job(s) from before wait to be sent."
            if started.waiting_jobs
            else ""
        )
        print(
            f"Printing to {started.uri} goes to PrintFabric queue {started.printer} of "
            f"{started.company} as {started.login}{link}.\n"
            f"Add it to this computer with:\n  {started.lpadmin}{waiting}\n"
            "Ctrl-C stops.",
            flush=True,
        )

    return announce


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="printfabric serve-printer: %(message)s")
    # One line per HTTP request is noise here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if not 1 <= args.retry_max <= 3600:
            raise UsageError("--retry-max is 1 to 3600 seconds", "USAGE")
        settings = ServeSettings(
            paths=ClientPaths.from_env(),
            listen=parse_listen(args.listen),
            printer=args.printer or os.environ.get("PRINTFABRIC_PRINTER", ""),
            json=args.json,
            retry_max=args.retry_max,
        )
        asyncio.run(serve(settings, _announce(args.json)))
    except ClientError as exc:
        if args.json:
            print(json.dumps({"error": exc.message, "reason": exc.reason}), flush=True)
        print(f"printfabric serve-printer: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    return int(ExitCode.OK)
