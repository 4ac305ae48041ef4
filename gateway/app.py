"""The gateway's HTTPS front: IPP printers at /ipp/print/{queue} (and /t/{company}/...).

Every request is turned into gRPC calls to the cloud; nothing is stored here. A request that
cannot be read as IPP gets an IPP error (HTTP 200, as RFC 8010 wants) or, when the stream itself
is broken, a closed connection; never an HTTP 500 or a stack trace.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from printfabric.ipp import IppError, Limits, Message, Status, encode, read_message
from printfabric.ipp.everywhere import ICON_SIZES
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.icons import printer_icon
from gateway.ipp_printer import IppFailure, IppPrinter, NeedAuth, Target, response
from gateway.ipp_printer import Request as IppRequest
from gateway.upstream import Upstream, prepend

log = logging.getLogger(__name__)

IPP_TYPE = "application/ipp"
# A client that sends nothing for this long in the middle of a request is cut off.
BODY_IDLE_SECONDS = 60.0
# What is left of an answered request's body is read and dropped up to this much; beyond it the
# connection is closed instead (cheaper than reading a document nobody will keep).
DRAIN_LIMIT = 1 << 20
LIMITS = Limits()
# A request without a login is never bigger than this (Get-Printer-Attributes has no document).
ANONYMOUS_BODY_LIMIT = 64 << 10


@dataclass(frozen=True)
class GatewaySettings:
    default_company: str


class _Body:
    """The request body as an async iterator, with an idle timeout; remembers if it ended."""

    def __init__(self, request: Request) -> None:
        self._stream = request.stream()
        self.finished = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(self._stream), BODY_IDLE_SECONDS)
            except StopAsyncIteration:
                self.finished = True
                raise
            except TimeoutError as exc:
                raise ClientDisconnect() from exc
            if chunk:
                return chunk

    async def drain(self) -> bool:
        """Reads what is left, up to DRAIN_LIMIT; True if the body ended."""
        seen = 0
        try:
            async for chunk in self:
                seen += len(chunk)
                if seen > DRAIN_LIMIT:
                    return False
        except ClientDisconnect:
            return False
        return True


def _credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep and login else None


def _carries_document(request: Request) -> bool:
    """Whether the body is bigger than any request without a document would be."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return True
    length = request.headers.get("content-length", "0")
    return not length.isdigit() or int(length) > ANONYMOUS_BODY_LIMIT


def _challenge(close: bool) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="PrintFabric", charset="UTF-8"'}
    if close:
        headers["Connection"] = "close"
    return Response(status_code=401, headers=headers)


def _ipp(message: Message, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else {}
    return Response(encode(message), media_type=IPP_TYPE, headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_app(upstream: Upstream, settings: GatewaySettings) -> Starlette:
    printer = IppPrinter(upstream)

    def target(request: Request) -> Target | None:
        company = request.path_params.get("company") or settings.default_company
        queue = str(request.path_params["queue"]).lower()
        if not company:
            return None
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        path = request.url.path.rstrip("/")
        return Target(
            company=str(company).upper(),
            queue=queue,
            printer_uri=f"ipps://{host}{path}",
            more_info=f"https://{host}{path}",
            web_base=f"https://{host}",
        )

    async def ipp_endpoint(request: Request) -> Response:
        where = target(request)
        if where is None:
            return _error(
                404,
                "this gateway has no default company: use /t/{company}/ipp/print/{queue}",
            )
        if request.method == "GET":
            return JSONResponse(
                {
                    "printer": where.queue,
                    "company": where.company,
                    "uri": where.printer_uri,
                    "how": "add this printer as an IPP Everywhere (driverless) printer",
                }
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != IPP_TYPE:
            return _error(400, f"an IPP request has Content-Type {IPP_TYPE}, not {content_type!r}")
        credentials = _credentials(request.headers.get("authorization"))
        if credentials is None and _carries_document(request):
            # Only Get-Printer-Attributes goes without a login, and it has no document: ask for
            # credentials before the client sends (and we read) a large body for nothing.
            return _challenge(close=True)
        body = _Body(request)
        try:
            message, rest, remaining = await read_message(body, LIMITS)
        except IppError as exc:
            # Not IPP we can read: answer as IPP and close (the stream position is unknown).
            return _ipp(response(None, exc.status, str(exc)), close=True)
        except ClientDisconnect:
            return Response(status_code=400, headers={"Connection": "close"})
        ipp_request = IppRequest(
            message=message,
            target=where,
            body=prepend(rest, remaining),
            credentials=credentials,
            user_agent=request.headers.get("user-agent", "")[:100],
        )
        try:
            reply = await printer.handle(ipp_request)
        except NeedAuth:
            return _challenge(close=not await body.drain())
        except ClientDisconnect:
            return Response(status_code=400, headers={"Connection": "close"})
        except IppFailure as exc:  # raised from the document stream (bad compression)
            reply = response(message, exc.status, exc.message)
        except Exception:
            log.exception("IPP request %s failed", message.code)
            reply = response(message, Status.SERVER_ERROR_INTERNAL_ERROR, "internal error")
        close = not body.finished and not await body.drain()
        return _ipp(reply, close=close)

    async def icon(request: Request) -> Response:
        size = int(request.path_params["size"])
        if size not in ICON_SIZES:
            return _error(404, f"icons come in sizes {', '.join(map(str, ICON_SIZES))}")
        return Response(printer_icon(size), media_type="image/png")

    async def root(request: Request) -> Response:
        return JSONResponse({"service": "printfabric-gateway", "ipp": "/ipp/print/{queue}"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"nothing at {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/icons/printer-{size:int}.png", icon, methods=["GET"]),
            Route("/ipp/print/{queue:str}", ipp_endpoint, methods=methods),
            Route("/t/{company:str}/ipp/print/{queue:str}", ipp_endpoint, methods=methods),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )


def with_mfp_api(app: ASGIApp, mfp: ASGIApp) -> ASGIApp:
    """One ASGI app: /mfp/... goes to the MFP API, everything else to the IPP gateway."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/mfp/"):
            await mfp(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
