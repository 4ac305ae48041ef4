"""`printfabric-cloud azure-ad ...`: set up, run, watch and stop a tenant's Azure AD sync."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from cloud.config import CloudConfig, parse_duration
from cloud.connectors import AzureAdChange, AzureAdStatus, RoundResult
from cloud.connectors import azure_ad_settings as settings
from cloud.domain.runtime import Runtime
from cloud.domain.tenants import tenant_by_code
from cloud.errors import NotFound
from cloud.server import azure_ad_sync


def add_commands(sub: Any) -> None:
    azure = sub.add_parser(
        "azure-ad", help="the Azure AD (Entra ID) user sync of a tenant"
    ).add_subparsers(dest="action", required=True)

    s = azure.add_parser("set", help="set up or change the sync (and enable it)")
    s.add_argument("--tenant", required=True, help="Company Identification Code")
    s.add_argument("--azure-tenant", help="Azure AD tenant id (GUID) or primary domain")
    s.add_argument("--client-id", help="application (client) id of the app registration")
    secret = s.add_mutually_exclusive_group()
    secret.add_argument(
        "--client-secret-file", metavar="FILE", help="read the client secret from FILE"
    )
    secret.add_argument(
        "--client-secret-env",
        metavar="VAR",
        help="read the client secret from this environment variable",
    )
    secret.add_argument(
        "--client-secret-stdin", action="store_true", help="read the client secret from stdin"
    )
    s.add_argument("--interval", help="how often a round runs, e.g. 15m, 1h (default 1h)")
    s.add_argument("--authority", help=f"authority host (default {settings.DEFAULT_AUTHORITY})")
    s.add_argument("--graph-url", help=f"Graph root (default {settings.DEFAULT_GRAPH_URL})")
    s.add_argument("--ca-file", help="PEM CA file for the authority and Graph ('' : system roots)")
    s.add_argument("--login-attribute", help="Graph property of the login (userPrincipalName)")
    s.add_argument("--pin-attribute", help="Graph property of the PIN, e.g. employeeId ('': none)")
    s.add_argument(
        "--card-attribute",
        help="Graph property of the card number, e.g."
        " onPremisesExtensionAttributes.extensionAttribute1 ('': none)",
    )
    for name, text in (
        ("sync", "run a round now and print what it did"),
        ("disable", "stop the sync (users stay; `set` enables it again)"),
    ):
        azure.add_parser(name, help=text).add_argument(
            "--tenant", required=True, help="Company Identification Code"
        )
    azure.add_parser("status", help="settings, last result and next run").add_argument(
        "--tenant", help="Company Identification Code (default: every tenant)"
    )


async def run(rt: Runtime, config: CloudConfig, args: argparse.Namespace) -> int:
    tenant_id = await _tenant_id(rt, args.tenant) if args.tenant else None
    if args.action == "set":
        assert tenant_id is not None
        change = AzureAdChange(
            azure_tenant_id=args.azure_tenant,
            client_id=args.client_id,
            client_secret=_client_secret(args),
            authority_host=args.authority,
            graph_url=args.graph_url,
            ca_file=args.ca_file,
            login_attribute=args.login_attribute,
            pin_attribute=args.pin_attribute,
            card_attribute=args.card_attribute,
            interval=_interval(args.interval),
        )
        sync = azure_ad_sync(rt, config)
        await settings.configure(rt, sync.box, tenant_id, change)
        (status,) = await settings.statuses(rt, tenant_id)
        _print(
            args, status.as_dict(), f"Azure AD sync of {status.company_code} set; " + _line(status)
        )
    elif args.action == "sync":
        assert tenant_id is not None
        result = await azure_ad_sync(rt, config).run_now(tenant_id)
        _print(args, result.as_dict(), _result_text(result))
        return 0 if result.ok else 1
    elif args.action == "status":
        rows = await settings.statuses(rt, tenant_id)
        _print(
            args,
            {"azure_ad": [s.as_dict() for s in rows]},
            "\n".join(_status_text(s) for s in rows) or "no tenant has an Azure AD sync",
        )
    elif args.action == "disable":
        assert tenant_id is not None
        await settings.disable(rt, tenant_id)
        _print(args, {"enabled": False}, "Azure AD sync disabled; its users stay as they are")
    return 0


async def _tenant_id(rt: Runtime, code: str) -> str:
    async with rt.db.session() as session:
        tenant = await tenant_by_code(session, code)
    if tenant is None:
        raise NotFound(f"no tenant with company code {code}")
    return tenant.id


def _interval(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SystemExit(f"--interval: {exc}") from None


def _client_secret(args: argparse.Namespace) -> str | None:
    """The client secret from a file, an environment variable or stdin, never from argv."""
    if args.client_secret_file:
        try:
            return Path(args.client_secret_file).read_text().strip("\r\n")
        except OSError as exc:
            raise SystemExit(f"cannot read the client secret: {exc}") from None
    if args.client_secret_env:
        value = os.environ.get(args.client_secret_env, "")
        if not value:
            raise SystemExit(f"environment variable {args.client_secret_env} is empty")
        return value
    if args.client_secret_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return None


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _line(status: AzureAdStatus) -> str:
    state = "enabled" if status.enabled else "disabled"
    every = int(status.interval.total_seconds())
    due = f", next run {status.next_run_at:%Y-%m-%d %H:%M:%S} UTC" if status.next_run_at else ""
    return f"{state}, every {every} s{due}"


def _status_text(status: AzureAdStatus) -> str:
    lines = [
        f"{status.company_code}: {_line(status)}",
        f"  Azure tenant {status.azure_tenant_id}, app {status.client_id}, {status.graph_url}",
        f"  login {status.mapping.login}, PIN {status.mapping.pin or '-'},"
        f" card {status.mapping.card or '-'}; next round {'delta' if status.delta else 'full'}",
    ]
    if status.running_until:
        lines.append(f"  running now (lease until {status.running_until:%H:%M:%S} UTC)")
    last = status.last_result
    if last:
        lines.append(f"  last run {last.get('started_at', '?')}: {_summary(last)}")
        lines += [f"    {login}: {reason}" for login, reason in last.get("problems", [])[:20]]
    return "\n".join(lines)


def _result_text(result: RoundResult) -> str:
    data = result.as_dict()
    lines = [_summary(data)]
    lines += [f"  {login}: {reason}" for login, reason in result.problems]
    return "\n".join(lines)


def _summary(data: dict[str, Any]) -> str:
    if data.get("error"):
        return f"FAILED: {data['error']}"
    kind = "full" if data.get("full") else "delta"
    return (
        f"{kind} round, {data.get('users_read', 0)} users read in {data.get('pages', 0)} pages:"
        f" {data.get('created', 0)} created, {data.get('updated', 0)} updated,"
        f" {data.get('disabled', 0)} disabled, {data.get('unchanged', 0)} unchanged,"
        f" {data.get('problem_count', 0)} problems"
    )
