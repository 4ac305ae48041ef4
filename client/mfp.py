"""`printfabric mfp`: an MFP simulator for walking the secure-release flow by hand.

It does what an MFP's embedded application does, against the MFP API of a gateway or a node:
log the device in (company code, serial number, access token), log a user in by card, PIN or
password, then list, release, download or delete the user's held jobs, upload a scan, or post
an accounting record. Every run logs in afresh, as a device does after a restart.

Secrets never go on the command line: the device's access token comes from
PF_MFP_ACCESS_TOKEN (or --demo), a PIN or password from PF_MFP_PIN / PF_MFP_PASSWORD or stdin.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from client.secret_input import read_secret

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class SimError(Exception):
    """A failure to report in one line (exit 1)."""


@dataclass
class Target:
    url: str
    verify: ssl.SSLContext | bool
    company: str
    serial: str
    access_token: str


def _demo(home: Path) -> dict[str, str]:
    path = home / "demo.json"
    try:
        data: dict[str, str] = json.loads(path.read_text())
    except OSError as exc:
        raise SimError(f"no demo credentials at {path} (start `make run` first): {exc}") from exc
    return data


def _target(args: argparse.Namespace, demo: dict[str, str]) -> Target:
    url = args.url or demo.get("gateway_url") or "https://localhost:8443"
    ca = args.ca or demo.get("ca_cert") or ""
    token = os.environ.get("PF_MFP_ACCESS_TOKEN") or demo.get("mfp_access_token", "")
    company = args.company or demo.get("company_code", "")
    serial = args.serial or demo.get("mfp_serial", "")
    missing = [
        name
        for name, value in (
            ("--company", company),
            ("--serial", serial),
            ("PF_MFP_ACCESS_TOKEN", token),
        )
        if not value
    ]
    if missing:
        raise SimError(f"missing {', '.join(missing)} (or use --demo PF_HOME)")
    verify: ssl.SSLContext | bool = True
    if ca:
        try:
            verify = ssl.create_default_context(cafile=ca)
        except OSError as exc:
            raise SimError(f"cannot read the CA certificate {ca}: {exc.strerror}") from exc
    return Target(url.rstrip("/"), verify, company, serial, token)


class Mfp:
    def __init__(self, target: Target) -> None:
        self.http = httpx.Client(base_url=f"{target.url}/mfp/v1", verify=target.verify, timeout=60)
        self.target = target
        self.device: dict[str, str] = {}
        self.user: dict[str, str] = {}
        self.login = ""

    def _check(self, reply: httpx.Response) -> Any:
        if reply.status_code < 300:
            return reply.json() if "json" in reply.headers.get("content-type", "") else None
        try:
            error = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise SimError(f"HTTP {reply.status_code}: {reply.text[:200]}") from None
        extra = ""
        if error.get("retry_after"):
            extra = f" (locked; retry in {error['retry_after']} s)"
        if error.get("self_registration"):
            extra = " (register it: printfabric mfp register --card CARD --login LOGIN)"
        raise SimError(f"{error['code']}: {error['message']}{extra}")

    def log_in_device(self) -> dict[str, Any]:
        session = self._check(
            self.http.post(
                "/device/session",
                json={
                    "company_code": self.target.company,
                    "serial_number": self.target.serial,
                    "access_token": self.target.access_token,
                },
            )
        )
        self.device = {"Authorization": f"Bearer {session['device_token']}"}
        return dict(session)

    def log_in_user(self, body: dict[str, str], path: str = "/users/authenticate") -> Any:
        session = self._check(self.http.post(path, json=body, headers=self.device))
        self.user = {**self.device, "X-User-Token": session["user_token"]}
        self.login = str(session["user"]["login"])
        return session

    def get(self, path: str) -> Any:
        return self._check(self.http.get(path, headers=self.user or self.device))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.http.post(path, json=body, headers=self.user or self.device))


def _user_body(args: argparse.Namespace) -> dict[str, str]:
    if args.card:
        return {"method": "card", "card": args.card}
    if args.pin:
        return {"method": "pin", "pin": read_secret("PF_MFP_PIN", "PIN: ")}
    if args.login:
        return {
            "method": "password",
            "login": args.login,
            "password": read_secret("PF_MFP_PASSWORD", f"Password for {args.login}: "),
        }
    raise SimError("log a user in with --card CARD, --pin or --login LOGIN")


def _show_jobs(jobs: list[dict[str, Any]]) -> None:
    if not jobs:
        print("no held jobs")
    for job in jobs:
        print(
            f"{job['job_id']}  #{job['number']:<5} {job['state']:<9} {job['pages']:>4} p "
            f"{job['size']:>10} B  {job['title']}"
        )


def run(args: argparse.Namespace) -> int:
    demo = _demo(Path(args.demo)) if args.demo else {}
    if args.demo and not (args.card or args.pin or args.login) and args.command != "config":
        args.card = demo.get("card", "")
    mfp = Mfp(_target(args, demo))
    session = mfp.log_in_device()
    if args.command == "config":
        result: Any = mfp.get("/device/config")
        if not args.json:
            printer = result["printer"] or {}
            print(f"{result['display_name']} of {result['tenant_display_name']}")
            print(f"prints on {printer.get('display_name', '(no printer)')}")
            print(f"device session valid until {session['expires_at']}")
    elif args.command == "register":
        if not args.card or not args.login:
            raise SimError("register needs --card CARD and --login LOGIN")
        password = read_secret("PF_MFP_PASSWORD", f"Password for {args.login}: ")
        result = mfp.log_in_user(
            {"card": args.card, "login": args.login, "password": password},
            "/users/register-card",
        )
        if not args.json:
            print(f"card registered to {result['user']['login']}")
    else:
        user = mfp.log_in_user(_user_body(args))["user"]
        if not args.json:
            print(f"logged in: {user['full_name'] or user['login']} ({', '.join(user['rights'])})")
        result = _user_command(mfp, args)
    if args.json:
        print(json.dumps(result, indent=2))
    return EXIT_OK


def _user_command(mfp: Mfp, args: argparse.Namespace) -> Any:
    if args.command == "jobs":
        jobs = mfp.get("/jobs")["jobs"]
        if not args.json:
            _show_jobs(jobs)
        return jobs
    if args.command == "release":
        if not args.jobs and not args.all:
            raise SimError("release JOB_ID... or --all")
        released = mfp.post("/jobs/release", {"job_ids": args.jobs, "all": args.all})["jobs"]
        if not args.json:
            _show_jobs(released)
        return released
    if args.command == "delete":
        reply = mfp._check(mfp.http.delete(f"/jobs/{args.job}", headers=mfp.user))
        if not args.json:
            print(f"job #{reply['number']} {reply['state']}")
        return reply
    if args.command == "download":
        with mfp.http.stream("GET", f"/jobs/{args.job}/document", headers=mfp.user) as reply:
            if reply.status_code >= 300:
                reply.read()
                mfp._check(reply)
            size = 0
            with open(args.output, "wb") as out:
                for chunk in reply.iter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        if not args.json:
            print(f"{size} bytes into {args.output}")
        return {"bytes": size, "output": args.output}
    if args.command == "scan":
        return _scan(mfp, args)
    if args.command == "account":
        user = mfp.user
        record = {
            "id": args.id or str(uuid.uuid4()),
            "login": args.user_login or mfp.login,
            "kind": args.kind,
            "document_name": args.document or "",
            "pages": args.pages,
            "sheets": args.sheets or args.pages,
            "color_pages": args.color,
            "mono_pages": max(0, args.pages - args.color),
            "duplex": args.duplex,
            "paper_size": args.paper,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        receipt = mfp._check(mfp.http.post("/accounting", json=record, headers=user))
        if not args.json:
            print(
                f"accounting {record['id']}: "
                + ("already recorded" if receipt["duplicate"] else "recorded")
            )
        return receipt
    raise SimError(f"unknown command {args.command}")


def _scan(mfp: Mfp, args: argparse.Namespace) -> Any:
    path = Path(args.file)
    profiles = mfp.get("/scan/profiles")["destinations"]
    destination = args.profile or (profiles[0]["destination_id"] if profiles else "")
    description = {
        "login": mfp.login,
        "file_name": path.name,
        "mime_type": args.mime_type,
        "page_count": args.pages,
        "size": path.stat().st_size,
        "request_id": args.id or str(uuid.uuid4()),
        "destination_id": destination,
        "metadata": {"source": "printfabric mfp"},
    }
    with path.open("rb") as fh:
        receipt = mfp._check(
            mfp.http.post(
                "/scans",
                data={"description": json.dumps(description)},
                files={"document": (path.name, fh, args.mime_type)},
                headers=mfp.user,
            )
        )
    if not args.json:
        print(f"scan {receipt['scan_id']}: {receipt['size']} bytes, {receipt['state']}")
    return receipt


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfabric mfp",
        description="An MFP simulator: log in at a device and release, scan or account.",
    )
    p.add_argument("--url", help="gateway or node base URL (default: the demo's gateway)")
    p.add_argument("--ca", help="CA certificate to trust (default: the demo's dev CA)")
    p.add_argument("--company", help="Company Identification Code")
    p.add_argument("--serial", help="the MFP's serial number")
    p.add_argument("--demo", metavar="PF_HOME", help="take everything from `make run`'s demo.json")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    who = p.add_argument_group("user log-in (one of)")
    who.add_argument("--card", help="card number as the reader delivers it")
    who.add_argument("--pin", action="store_true", help="PIN from PF_MFP_PIN or stdin")
    who.add_argument("--login", help="login; password from PF_MFP_PASSWORD or stdin")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="log the device in and show its configuration")
    sub.add_parser("register", help="bind --card to --login (password from PF_MFP_PASSWORD)")
    sub.add_parser("jobs", help="the user's held jobs")
    release = sub.add_parser("release", help="release jobs to this device's printer")
    release.add_argument("jobs", nargs="*", metavar="JOB_ID")
    release.add_argument("--all", action="store_true", help="every held job")
    delete = sub.add_parser("delete", help="delete a held job")
    delete.add_argument("job", metavar="JOB_ID")
    download = sub.add_parser("download", help="pull a job's document, as pull-printers do")
    download.add_argument("job", metavar="JOB_ID")
    download.add_argument("-o", "--output", required=True)
    scan = sub.add_parser("scan", help="upload a scanned document with its description")
    scan.add_argument("file")
    scan.add_argument("--profile", help="scan destination id (default: the first offered)")
    scan.add_argument("--mime-type", default="application/pdf")
    scan.add_argument("--pages", type=int, default=1)
    scan.add_argument("--id", help="idempotency key (default: random)")
    account = sub.add_parser("account", help="post an accounting record")
    account.add_argument("--kind", choices=["print", "copy", "scan", "fax"], default="copy")
    account.add_argument("--pages", type=int, default=1)
    account.add_argument("--sheets", type=int, default=0)
    account.add_argument("--color", type=int, default=0, help="colour pages among them")
    account.add_argument("--duplex", action="store_true")
    account.add_argument("--paper", default="iso_a4_210x297mm")
    account.add_argument("--document", help="document name")
    account.add_argument("--user-login", help="whose usage (default: the logged-in user)")
    account.add_argument("--id", help="device-supplied id (default: random); resend = no-op")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except SimError as exc:
        print(f"printfabric mfp: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except httpx.HTTPError as exc:
        print(f"printfabric mfp: cannot reach {args.url or 'the MFP API'}: {exc}", file=sys.stderr)
        return EXIT_FAILED
