"""`printfabric print`: check every file, pick the printer and the route, send, report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.api import Account, choose_printer
from client.document import Document, open_document
from client.errors import ClientError
from client.progress import transfer
from client.routes import Delivered, PrintJob, Route
from client.routes.base import parse_route
from client.routes.ipps import send_ipps
from client.routes.lpr import send_lpr
from client.routes.upload import send_upload


@dataclass(frozen=True)
class PrintOptions:
    printer: str = ""
    copies: int = 1
    duplex: bool = False
    mono: bool = False
    title: str = ""
    format: str = ""
    via: str = ""
    progress: bool = True


def _uri(printer: dict[str, Any], scheme: str) -> str:
    return next((u for u in printer.get("submit_uris", []) if u.startswith(f"{scheme}://")), "")


def resolve_route(printer: dict[str, Any] | None, via: str) -> tuple[Route, str]:
    """The route to take and, for IPPS, the printer URI; default: what the printer lists first."""
    if not via:
        first = (printer or {}).get("submit_uris", ["ipps://"])[0] if printer else "ipps://"
        via = "lpr" if first.startswith("lpr://") else "ipps"
    route = parse_route(via)
    if route.kind == "ipps":
        uri = _uri(printer or {}, "ipps")
        if not uri:
            raise ClientError("the cloud lists no IPPS address for this printer", "NO_ROUTE")
        return route, uri
    if route.kind == "lpr" and not route.host:
        uri = _uri(printer or {}, "lpr")
        if not uri:
            name = (printer or {}).get("name", "")
            raise ClientError(
                f"printer {name} is not reachable over LPR through a node; "
                "name the server with --via lpr://host[:port]/queue",
                "NO_ROUTE",
            )
        return parse_route(uri), ""
    return route, ""


async def print_files(
    account: Account, files: Sequence[Path], options: PrintOptions
) -> list[Delivered]:
    """Checks all files first (nothing is sent if one cannot be printed), then sends each."""
    documents: list[Document] = [open_document(path, options.format) for path in files]
    direct_lpr = options.via.startswith(("lpr://", "lpd://"))
    printer: dict[str, Any] | None = None
    if not direct_lpr:
        printer = choose_printer(await account.printers(), options.printer)
    route, ipps_uri = resolve_route(printer, options.via)
    queue = printer["name"] if printer else route.queue
    results: list[Delivered] = []
    for document in documents:
        job = PrintJob(
            document=document,
            printer=queue,
            title=options.title or document.name,
            copies=options.copies,
            duplex=options.duplex,
            mono=options.mono,
            request_id=str(uuid.uuid4()),
        )
        with transfer(f"{document.name}", document.size, enabled=options.progress) as advance:
            if route.kind == "ipps":
                results.append(await send_ipps(account, ipps_uri, job, advance))
            elif route.kind == "lpr":
                results.append(await send_lpr(route, account.session.login, job, advance))
            else:
                results.append(await send_upload(account, job, advance))
    return results
