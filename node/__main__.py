"""printfabric-node: run the on-premise node, and inspect or feed its local database."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from node import convert
from node.app import open_node, serve
from node.config import NodeConfig
from node.credential import Card, Credential, LoginPassword, Pin
from node.errors import AuthRefused, NodeError
from node.jobs import spooled_counts
from node.lpd import lpd_counts

CONFIG_HELP = """\
configuration (environment):
  PF_NODE_HOME          the node's folder: database and spool (default var/node)
  PF_CLOUD_TARGET       the cloud's gRPC address (default localhost:50051)
  PF_CLOUD_CA           the cloud's CA certificate, pinned (default $PF_HOME/tls/ca.pem)
  PF_COMPANY_CODE       the tenant's Company Identification Code
  PF_NODE_SERIAL        this node's serial number, as registered in the cloud
  PF_NODE_TOKEN         this node's access token, or PF_NODE_TOKEN_FILE: a file holding it
  PF_NODE_HEARTBEAT, PF_NODE_BACKOFF_INITIAL, PF_NODE_BACKOFF_MAX, PF_NODE_OUTBOX_POLL
                        durations such as 15s, 250ms (defaults 15s, 1s, 60s, 200ms)
  PF_NODE_MFP_LISTEN    the MFP API's HTTPS address (default 127.0.0.1:9443; off: none)
  PF_NODE_MFP_TLS_CERT, PF_NODE_MFP_TLS_KEY
                        its certificate and key (default: made by the node in $PF_NODE_HOME/tls,
                        for the names in PF_NODE_MFP_HOSTNAMES, default localhost,127.0.0.1,::1)
  PF_NODE_MFP_KEY       the key that signs user sessions (default $PF_NODE_HOME/mfp-session.key)
  PF_NODE_MFP_SESSION   how long a user stays logged in at an MFP (default 15m)
  PF_NODE_DELIVERY_TIMEOUT
                        per step of a delivery to a printer (default 60s)
  PF_NODE_LPD_LISTEN    the LPD server's address (default 127.0.0.1:5515; in production
                        0.0.0.0:515; off: none). LPD is plain TCP: keep it on the site's LAN
  PF_NODE_LPD_UNKNOWN_USER
                        refuse (default) or park a job whose P line names an unknown login
  PF_NODE_LPD_MAX_CONTROL, PF_NODE_LPD_MAX_JOB
                        size limits of a control file and of a job (default 16k, 4G)
  PF_NODE_LPD_IDLE_TIMEOUT, PF_NODE_LPD_MAX_PER_PEER, PF_NODE_LPD_HOLD
                        60s; 16 connections per client address; how long a job waits for its
                        release (default 48h)
  PF_NODE_JBA_DEVICES   Xerox devices whose JBA log is collected: NAME=https://HOST/PATH,...
  PF_NODE_JBA_INTERVAL, PF_NODE_JBA_TIMEOUT
                        how often the logs are fetched (default 5m), per fetch (default 30s)
  PF_NODE_JBA_CA        the CA certificate(s) of the devices' HTTPS (default: the system's)
  PF_NODE_JBA_USER, PF_NODE_JBA_PASSWORD_FILE
                        the devices' log-in (HTTP Basic), the password in a file
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="printfabric-node",
        description="The PrintFabric on-premise node.",
        epilog=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="hold the NodeLink to the cloud until SIGINT/SIGTERM",
        description="Holds the NodeLink to the cloud, replicates the directory, forwards the "
        "outbox and receives released jobs, until SIGINT or SIGTERM.",
        epilog=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    auth = commands.add_parser(
        "auth",
        help="authenticate a user from the local replica (works with the cloud down)",
        description="Authenticates a user from the node's replica only and prints the user as "
        "JSON; exit status 1 if the credential is unknown here or refused.",
    )
    how = auth.add_mutually_exclusive_group(required=True)
    how.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin")
    how.add_argument("--card", metavar="CARD", help="a card number, decimal or hex")
    how.add_argument("--login", metavar="LOGIN", help="a login; the password is read from stdin")
    usage = commands.add_parser(
        "enqueue-usage",
        help="append accounting entries (JSON lines) to the outbox",
        description="Appends usage entries to the node's outbox; the running node sends them "
        "to the cloud. Each line is a JSON object with request_id, kind (PRINT, COPY, SCAN, "
        "FAX), user_login, document_name, pages, sheets, color_pages, mono_pages, duplex, "
        "paper_size and occur_time (ISO 8601). A bad line refuses the whole file.",
    )
    usage.add_argument("file", metavar="FILE.jsonl", help="the file, or - for stdin")
    status = commands.add_parser(
        "status",
        help="show the replica's revision, users, outbox and spooled jobs",
        description="Shows what the node's database holds.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    return parser


async def _auth(config: NodeConfig, credential: Credential) -> int:
    async with open_node(config) as node:
        try:
            user = await node.replica.authenticate(credential)
        except AuthRefused as exc:
            print(f"refused: {exc.message} ({exc.reason})", file=sys.stderr)
            return 1
    if user is None:
        print("unknown here: the replica does not know this credential", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "user_id": user.user_id,
                "login": user.login,
                "email": user.email,
                "full_name": user.full_name,
                "department": user.department,
                "rights": convert.rights_names(user.rights),
                "disabled": user.disabled,
            },
            indent=2,
        )
    )
    return 0


async def _enqueue(config: NodeConfig, text: str) -> int:
    entries = convert.usage_entries(text)
    async with open_node(config) as node:
        batches = await node.outbox.enqueue_usage(entries)
    print(f"queued {len(entries)} usage entries in {len(batches)} batches")
    return 0


async def _status(config: NodeConfig, as_json: bool) -> int:
    async with open_node(config) as node:
        state = await node.replica.state()
        outbox = await node.outbox.counts()
        jobs = await spooled_counts(node.db)
        lpd_jobs = await lpd_counts(node.db)
    report: dict[str, Any] = {
        "home": str(config.home),
        "node_id": state.node_id,
        "tenant_id": state.tenant_id,
        "company_code": state.company_code,
        "directory_revision": state.revision,
        "users": state.users,
        "cards": state.cards,
        "snapshot_in_progress": state.staging_revision,
        "outbox": {"total": sum(outbox.values()), **outbox},
        "spooled_jobs": {"total": sum(jobs.values()), **jobs},
        "lpd_jobs": {"total": sum(lpd_jobs.values()), **lpd_jobs},
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key.replace('_', ' ')}: {value if value not in (None, '') else '-'}")
    return 0


async def _run(config: NodeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)
    return 0


def _credential(args: argparse.Namespace) -> Credential:
    # Secrets come from stdin, never from the command line (where `ps` shows them).
    if args.pin_stdin:
        return Pin(sys.stdin.readline().rstrip("\r\n"))
    if args.card is not None:
        return Card(args.card)
    return LoginPassword(args.login, sys.stdin.readline().rstrip("\r\n"))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "run" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = NodeConfig.from_env()
        if args.command == "run":
            return asyncio.run(_run(config.require_link()))
        if args.command == "auth":
            return asyncio.run(_auth(config, _credential(args)))
        if args.command == "enqueue-usage":
            path = args.file
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
            return asyncio.run(_enqueue(config, text))
        return asyncio.run(_status(config, args.json))
    except NodeError as exc:
        print(f"printfabric-node: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"printfabric-node: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
