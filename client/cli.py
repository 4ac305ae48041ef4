"""`printfabric`: the workstation client. Exit codes are client.errors.ExitCode (see README)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from client import output
from client.api import Account, Gateway, new_session
from client.document import FORMAT_NAMES
from client.errors import ClientError, ExitCode, LoginRequired, UsageError
from client.paths import ClientPaths
from client.printing import PrintOptions, print_files
from client.secret_input import read_secret
from client.session import SessionStore

DEFAULT_GATEWAY = "https://localhost:8443"
# What `printfabric jobs` shows without --all: jobs not yet finished.
OPEN_STATES = ["incoming", "held", "released", "printing"]


def _demo(home: str) -> dict[str, str]:
    path = Path(home) / "demo.json"
    try:
        data: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"no demo credentials at {path} (start `make run` first): {exc}") from exc
    return data


def _login_target(args: argparse.Namespace, store: SessionStore) -> tuple[str, str, str, str]:
    """(gateway URL, company, login, CA path): the options, else --demo, else the last login."""
    demo = _demo(args.demo) if args.demo else {}
    try:
        previous = store.load()
    except LoginRequired:
        previous = None
    url = args.url or demo.get("gateway_url") or (previous.gateway_url if previous else "")
    company = args.company or demo.get("company_code") or (previous.company if previous else "")
    login = args.login or demo.get("login") or (previous.login if previous else "")
    ca = args.ca or demo.get("ca_cert") or (previous.ca_cert if previous else "")
    missing = [n for n, v in (("--company", company), ("--login", login)) if not v]
    if missing:
        raise UsageError(f"say {' and '.join(missing)} (or --demo PF_HOME)", "USAGE")
    return url or DEFAULT_GATEWAY, company.upper(), login, os.path.abspath(ca) if ca else ""


async def cmd_login(args: argparse.Namespace, store: SessionStore) -> Any:
    url, company, login, ca_path = _login_target(args, store)
    password = (
        _demo(args.demo).get("password", "")
        if args.demo
        else read_secret("PRINTFABRIC_PASSWORD", "Password: ")
    )
    async with Gateway(url, ca_path) as gateway:
        answer = await gateway.login(company, login, password)
        session = new_session(gateway, company, ca_path, answer)
    store.save(session)
    return output.session_summary(session)


async def cmd_logout(args: argparse.Namespace, store: SessionStore) -> Any:
    try:
        session = store.load()
    except LoginRequired:
        return {"logged_out": False, "message": "not logged in"}
    note = ""
    try:
        async with Gateway(session.gateway_url, session.ca_cert) as gateway:
            await gateway.logout(session.refresh_token)
    except ClientError as exc:
        note = f" (the gateway was not told: {exc.message})"
    store.delete()
    return {"logged_out": True, "message": f"logged out of {session.company}{note}"}


async def cmd_status(args: argparse.Namespace, store: SessionStore) -> Any:
    return output.session_summary(store.load())


async def cmd_printers(args: argparse.Namespace, store: SessionStore) -> Any:
    async with Account(store) as account:
        return {"printers": await account.printers()}


async def cmd_jobs(args: argparse.Namespace, store: SessionStore) -> Any:
    states = [] if args.all else (args.state or OPEN_STATES)
    async with Account(store) as account:
        return {"jobs": await account.jobs(states)}


async def cmd_cancel(args: argparse.Namespace, store: SessionStore) -> Any:
    async with Account(store) as account:
        return {"jobs": [await account.cancel(ref) for ref in args.jobs]}


async def cmd_print(args: argparse.Namespace, store: SessionStore) -> Any:
    if args.copies < 1 or args.copies > 999:
        raise UsageError("--copies is 1 to 999", "USAGE")
    options = PrintOptions(
        printer=args.printer or os.environ.get("PRINTFABRIC_PRINTER", ""),
        copies=args.copies,
        duplex=args.duplex,
        mono=args.mono,
        title=args.title or "",
        format=args.format or "",
        via=args.via or "",
        progress=not args.json,
    )
    async with Account(store) as account:
        delivered = await print_files(account, [Path(f) for f in args.files], options)
    names = [Path(f).name for f in args.files]
    return {"printed": [output.delivered(n, d) for n, d in zip(names, delivered, strict=True)]}


COMMANDS = {
    "login": cmd_login,
    "logout": cmd_logout,
    "status": cmd_status,
    "printers": cmd_printers,
    "jobs": cmd_jobs,
    "cancel": cmd_cancel,
    "print": cmd_print,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfabric",
        description="Print from this computer through PrintFabric: log in once, then print.",
        epilog="Exit codes: 0 ok, 1 failed, 2 bad command line, 3 log in (again), 4 the file "
        "cannot be printed, 5 no such printer or job, 6 cannot reach the server, 7 refused.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("--json", action="store_true", help="print JSON for scripts")
        return c

    login = command("login", "log in to your company's PrintFabric")
    login.add_argument("url", nargs="?", help=f"the gateway (default: {DEFAULT_GATEWAY})")
    login.add_argument("--url", dest="url_option", help=argparse.SUPPRESS)
    login.add_argument("--company", help="Company Identification Code")
    login.add_argument(
        "--login", help="your login (the password is asked, or PRINTFABRIC_PASSWORD)"
    )
    login.add_argument("--ca", help="CA certificate that signed the gateway's (default: system)")
    login.add_argument("--demo", metavar="PF_HOME", help="log in as `make run`'s demo user")
    command("logout", "log out and forget the saved login")
    command("status", "who is logged in, where, until when")
    command("printers", "the printers you may print to, and how each is reached")
    jobs = command("jobs", "your jobs waiting to be released or printing")
    jobs.add_argument("--all", action="store_true", help="finished jobs too")
    jobs.add_argument(
        "--state",
        action="append",
        choices=[*OPEN_STATES, "completed", "failed", "canceled", "expired"],
        help="only jobs in this state (repeatable)",
    )
    cancel = command("cancel", "cancel jobs (by number or id)")
    cancel.add_argument("jobs", nargs="+", metavar="JOB")
    pr = command("print", "print files")
    pr.add_argument("files", nargs="+", metavar="FILE")
    pr.add_argument("-P", "--printer", help="the queue (default: your only one)")
    pr.add_argument("-n", "--copies", type=int, default=1)
    pr.add_argument("--duplex", action="store_true", help="both sides of the paper")
    pr.add_argument("--mono", action="store_true", help="black and white")
    pr.add_argument("-t", "--title", help="the job's title (default: the file's name)")
    pr.add_argument(
        "--format",
        choices=sorted(FORMAT_NAMES),
        help="take the file as this format instead of detecting it",
    )
    pr.add_argument(
        "--via",
        metavar="ROUTE",
        help="ipps (default), upload (to storage), lpr (the printer's node), "
        "or lpr://host[:port]/queue (a node or printer)",
    )
    serve = sub.add_parser(
        "serve-printer",
        help="a local printer the computer adds driverlessly; it forwards to PrintFabric",
        add_help=False,
    )
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    mfp = sub.add_parser(
        "mfp", help="an MFP simulator (see `printfabric mfp --help`)", add_help=False
    )
    mfp.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["mfp"]:
        from client import mfp

        return mfp.main(args_list[1:])
    if args_list[:1] == ["serve-printer"]:
        from client.serve_printer.cli import main as serve_main

        return serve_main(args_list[1:])
    args = parser().parse_args(args_list)
    if args.command == "login" and args.url_option:
        args.url = args.url_option
    logging.basicConfig(level=logging.WARNING, format="printfabric: %(message)s")
    store = SessionStore(ClientPaths.from_env())
    try:
        result = asyncio.run(COMMANDS[args.command](args, store))
    except ClientError as exc:
        if args.json:
            print(json.dumps({"error": exc.message, "reason": exc.reason}))
        print(f"printfabric: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("printfabric: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(output.human(args.command, result))
    return int(ExitCode.OK)
