"""printfabric-cloud: run the cloud, and administer tenants, users, queues, devices, nodes and
the Azure AD sync."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select

from cloud import azure_ad_cli
from cloud.config import CloudConfig, parse_duration
from cloud.db.models import Tenant
from cloud.demo import banner, demo_gateway, demo_node, ensure_demo
from cloud.domain.auth import Auth
from cloud.domain.devices import DeviceFields, Devices, PrinterFields
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.enums import DEFAULT_RIGHTS, AccessRight, DeviceKind, QueueModel
from cloud.domain.runtime import Runtime
from cloud.domain.tenants import Tenants, tenant_by_code
from cloud.errors import CloudError, NotFound
from cloud.memory import limit_allocator_caching
from cloud.server import build_runtime, running_cloud

log = logging.getLogger("printfabric.cloud")


async def _serve(config: CloudConfig, demo: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_cloud(config) as cloud:
        if not demo:
            print(
                f"printfabric-cloud listening on {config.listen} (TLS, CA {cloud.tls.ca_cert})",
                flush=True,
            )
            await stop.wait()
            print("stopping...", flush=True)
            return
        creds = await ensure_demo(cloud.runtime, config, cloud.tls.ca_cert)
        async with demo_node(config, creds), demo_gateway(config, creds):
            print(banner(creds, config), flush=True)
            await stop.wait()
            print("stopping...", flush=True)


async def _with_runtime(config: CloudConfig, work: Callable[[Runtime], Awaitable[Any]]) -> Any:
    rt = await build_runtime(config)
    try:
        return await work(rt)
    finally:
        await rt.blobs.close()
        await rt.bus.close()
        await rt.db.close()


async def _tenant(rt: Runtime, code: str) -> Tenant:
    async with rt.db.session() as session:
        tenant = await tenant_by_code(session, code)
    if tenant is None:
        raise NotFound(f"no tenant with company code {code}")
    return tenant


def _secret(args: argparse.Namespace, what: str, required: bool) -> str:
    """A secret from an environment variable, stdin or a prompt, never from the command line."""
    env_name = getattr(args, f"{what}_env", None)
    if env_name:
        value = os.environ.get(env_name, "")
        if not value:
            raise SystemExit(f"environment variable {env_name} is empty")
        return value
    if getattr(args, f"{what}_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if required and sys.stdin.isatty():
        return getpass.getpass(f"{what.capitalize()}: ")
    return ""


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


async def _admin(config: CloudConfig, args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> int:
        cmd = (args.command, getattr(args, "action", None))
        if args.command == "azure-ad":
            return await azure_ad_cli.run(rt, config, args)
        if cmd == ("tenant", "create"):
            retention = parse_duration(args.retention) if args.retention else None
            t = await Tenants(rt).create(None, args.code, args.name or args.code, retention)
            _print(
                args,
                {"tenant_id": t.id, "company_code": t.company_code},
                f"tenant {t.company_code} created ({t.id})",
            )
        elif cmd == ("tenant", "list"):
            async with rt.db.session() as session:
                rows = list(
                    (await session.execute(select(Tenant).order_by(Tenant.company_code))).scalars()
                )
            _print(
                args,
                {
                    "tenants": [
                        {
                            "tenant_id": t.id,
                            "company_code": t.company_code,
                            "display_name": t.display_name,
                        }
                        for t in rows
                    ]
                },
                "\n".join(f"{t.company_code}\t{t.display_name}\t{t.id}" for t in rows)
                or "no tenants",
            )
        elif cmd == ("user", "create"):
            tenant = await _tenant(rt, args.tenant)
            rights = set(DEFAULT_RIGHTS) | ({AccessRight.ADMIN} if args.admin else set())
            new = NewUser(
                UserFields(
                    login=args.login,
                    email=args.email,
                    full_name=args.name,
                    department=args.department,
                    rights=frozenset(rights),
                ),
                password=_secret(args, "password", required=True),
                pin=_secret(args, "pin", required=False),
                cards=list(args.card or []),
            )
            u = await Directory(rt).create(None, tenant.id, new)
            _print(args, {"user_id": u.id, "login": u.login}, f"user {u.login} created ({u.id})")
        elif cmd == ("queue", "create"):
            tenant = await _tenant(rt, args.tenant)
            p = await Devices(rt).create_printer(
                None,
                tenant.id,
                PrinterFields(
                    name=args.name,
                    display_name=args.display_name,
                    location=args.location,
                    model=QueueModel[args.model.upper()],
                    device_uri=args.device_uri,
                ),
            )
            _print(args, {"printer_id": p.id, "name": p.name}, f"queue {p.name} created ({p.id})")
        elif cmd == ("device", "create"):
            tenant = await _tenant(rt, args.tenant)
            devices = Devices(rt)
            printer_id = ""
            if args.queue:
                async with rt.db.session() as session:
                    printer_id = (await devices.printer_by_ref(session, tenant.id, args.queue)).id
            kind = DeviceKind.SYNC_AGENT if args.sync_agent else DeviceKind.MFP
            d, token = await devices.create_device(
                None,
                tenant.id,
                DeviceFields(
                    kind=kind,
                    serial_number=args.serial,
                    display_name=args.name,
                    printer_id=printer_id,
                ),
            )
            _print(
                args,
                {"device_id": d.id, "serial_number": d.serial_number, "access_token": token},
                f"{kind.name.lower()} {d.serial_number} created ({d.id})\naccess token (shown once): {token}",
            )
        elif cmd == ("node", "create"):
            tenant = await _tenant(rt, args.tenant)
            n, token = await Devices(rt).create_node(
                None, tenant.id, args.serial, args.name, args.location
            )
            _print(
                args,
                {"node_id": n.id, "serial_number": n.serial_number, "access_token": token},
                f"node {n.serial_number} created ({n.id})\naccess token (shown once): {token}",
            )
        elif cmd == ("token", None):
            tokens = await Auth(rt).operator_session()
            _print(
                args,
                {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
                tokens.access_token,
            )
        elif cmd == ("migrate", None):
            print(f"database at {config.database_url.split('@')[-1]} is up to date")
        else:
            raise SystemExit(f"unknown command {' '.join(c for c in cmd if c)}")
        return 0

    return int(await _with_runtime(config, work))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="printfabric-cloud",
        description="The PrintFabric cloud. Configuration comes from PF_* environment variables (see README).",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the cloud gRPC server")
    sub.add_parser(
        "fabric", help="run the whole fabric on this machine with a demo tenant (make run)"
    )
    sub.add_parser("migrate", help="bring the database to the newest schema")
    sub.add_parser("token", help="print a platform operator access token (for TenantService)")

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="action", required=True)
    tc = tenant.add_parser("create", help="create a tenant")
    tc.add_argument("code", help="Company Identification Code")
    tc.add_argument("--name", default="", help="display name")
    tc.add_argument("--retention", default="", help="how long held jobs wait, e.g. 24h, 7d")
    tenant.add_parser("list", help="list tenants")

    def with_tenant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--tenant", required=True, help="Company Identification Code")
        return parser

    user = sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    uc = with_tenant(user.add_parser("create", help="create a user"))
    uc.add_argument("login")
    uc.add_argument("--email", default="")
    uc.add_argument("--name", default="", help="full name")
    uc.add_argument("--department", default="")
    uc.add_argument("--admin", action="store_true", help="grant the ADMIN right")
    uc.add_argument(
        "--password-env", metavar="VAR", help="read the password from this environment variable"
    )
    uc.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    uc.add_argument("--pin-env", metavar="VAR", help="read the PIN from this environment variable")
    uc.add_argument("--card", action="append", help="bind a card (repeatable)")

    queue = sub.add_parser("queue", help="printers/queues").add_subparsers(
        dest="action", required=True
    )
    qc = with_tenant(queue.add_parser("create", help="create a queue"))
    qc.add_argument("name")
    qc.add_argument("--display-name", default="")
    qc.add_argument("--location", default="")
    qc.add_argument("--model", choices=["secure", "direct"], default="secure")
    qc.add_argument(
        "--device-uri", default="", help="lpd://, ipp://, ipps://, socket:// or file:// target"
    )

    device = sub.add_parser("device", help="MFP devices and sync agents").add_subparsers(
        dest="action", required=True
    )
    dc = with_tenant(
        device.add_parser("create", help="create an MFP device (prints its access token)")
    )
    dc.add_argument("serial")
    dc.add_argument("--name", default="")
    dc.add_argument("--queue", default="", help="the queue this MFP prints released jobs on")
    dc.add_argument(
        "--sync-agent", action="store_true", help="create a directory sync agent instead of an MFP"
    )

    node = sub.add_parser("node", help="on-premise nodes").add_subparsers(
        dest="action", required=True
    )
    nc = with_tenant(node.add_parser("create", help="create a node (prints its access token)"))
    nc.add_argument("serial")
    nc.add_argument("--name", default="")
    nc.add_argument("--location", default="")

    azure_ad_cli.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    config = CloudConfig.from_env()
    try:
        if args.command in ("serve", "fabric"):
            limit_allocator_caching()
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_serve(config, demo=args.command == "fabric"))
        else:
            return asyncio.run(_admin(config, args))
    except CloudError as exc:
        print(f"printfabric-cloud: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
