"""The HTTPS front of the local printer: IPP at /ipp/print (Starlette, served by uvicorn).

A request that cannot be read as IPP gets an IPP error (HTTP 200, as RFC 8010 wants) or, when
the stream itself broke, a closed connection; a body cut halfway leaves no job. Requests must
come with a loopback Host and Content-Type application/ipp: a web page in a browser can send
neither, so it cannot print here behind the user's back.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from printfabric.ipp import Status
from printfabric.ipp.endpoint import IPP_TYPE, answered, broken_off, icon_route, read_ipp
from printfabric.ipp.server import PrinterAddress, response
from printfabric.request_body import RequestBody
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from client.serve_printer.printer import LocalPrinter
from client.serve_printer.request import Request as IppRequest

log = logging.getLogger(__name__)

PATH = "/ipp/print"


def loopback_host(host_header: str) -> bool:
    """Whether a Host header names this computer (localhost or a loopback address)."""
    host = host_header.rpartition(":")[0] if not host_header.endswith("]") else host_header
    host = (host or host_header).strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(printer: LocalPrinter) -> Starlette:
    def target(request: Request) -> PrinterAddress:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return PrinterAddress(
            printer_uri=f"ipps://{host}{PATH}",
            more_info=f"https://{host}{PATH}",
            web_base=f"https://{host}",
        )

    def status(where: PrinterAddress) -> dict[str, Any]:
        jobs = printer.queue.listed()
        return {
            "printer": printer.destination.description.name,
            "company": printer.destination.company,
            "login": printer.destination.login,
            "uri": where.printer_uri,
            "link": str(printer.link.state),
            "message": printer.link.message,
            "waiting_jobs": sum(1 for j in jobs if not j.final),
            "how": "add this printer as an IPP Everywhere (driverless) printer",
        }

    async def ipp_endpoint(request: Request) -> Response:
        if not loopback_host(request.headers.get("host", "")):
            return _error(421, "this printer answers to localhost only")
        where = target(request)
        if request.method == "GET":
            return JSONResponse(status(where))
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != IPP_TYPE:
            return _error(400, f"an IPP request has Content-Type {IPP_TYPE}, not {content_type!r}")
        body = RequestBody(request)
        read = await read_ipp(body)
        if isinstance(read, Response):
            return read
        message, document = read
        try:
            reply = await printer.handle(IppRequest(message=message, target=where, body=document))
        except ClientDisconnect:
            log.info("a request broke off before its document was whole; nothing was kept")
            return broken_off()
        except Exception:
            log.exception("IPP request 0x%04x failed", message.code)
            reply = response(message, Status.SERVER_ERROR_INTERNAL_ERROR, "internal error")
        return await answered(body, reply)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"nothing at {request.url.path}; the printer is at {PATH}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            Route(PATH, ipp_endpoint, methods=methods),
            # Some clients post job operations to the job's URI.
            Route(PATH + "/{job:int}", ipp_endpoint, methods=methods),
            icon_route(lambda message: _error(404, message)),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )
