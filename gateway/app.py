"""The gateway's HTTPS front: IPP printers at /ipp/print/{queue} (and /t/{company}/...), the
workstation API at /api/v1, and the signed blob URLs of the cloud's blob folder at /blob/v1.

Every request is turned into gRPC calls to the cloud; nothing is stored here. A request that
cannot be read as IPP gets an IPP error (HTTP 200, as RFC 8010 wants) or, when the stream itself
is broken, a closed connection; never an HTTP 500 or a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

from printfabric.ipp import Status
from printfabric.ipp.endpoint import IPP_TYPE, answered, broken_off, icon_route, read_ipp
from printfabric.ipp.server import IppFailure, response
from printfabric.request_body import RequestBody
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api_errors import HTTP_REASON
from gateway.blob_urls import BlobFolder, blob_routes
from gateway.client_api import ClientApi
from gateway.ipp_printer import IppPrinter, NeedAuth, Target
from gateway.ipp_printer import Request as IppRequest
from gateway.upstream import Upstream

log = logging.getLogger(__name__)

# A request without a login is never bigger than this (Get-Printer-Attributes has no document).
ANONYMOUS_BODY_LIMIT = 64 << 10


@dataclass(frozen=True)
class GatewaySettings:
    default_company: str
    # The cloud's blob folder, whose signed URLs the gateway serves (None: it serves none).
    blob_folder: BlobFolder | None = None


def _credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep and login else None


def _bearer(header: str | None) -> str:
    """The access token of an Authorization: Bearer header ("" for none)."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" else ""


def _carries_document(request: Request) -> bool:
    """Whether the body is bigger than any request without a document would be."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return True
    length = request.headers.get("content-length", "0")
    return not length.isdigit() or int(length) > ANONYMOUS_BODY_LIMIT


def _challenge(close: bool, bearer: bool = False) -> Response:
    # A refused token is challenged as a token (RFC 6750), a missing login as Basic (what
    # CUPS and every driverless client answer).
    challenge = (
        'Bearer realm="PrintFabric", error="invalid_token"'
        if bearer
        else 'Basic realm="PrintFabric", charset="UTF-8"'
    )
    headers = {"WWW-Authenticate": challenge}
    if close:
        headers["Connection"] = "close"
    return Response(status_code=401, headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "reason": HTTP_REASON.get(status, "ERROR")},
        status_code=status,
        headers=headers,
    )


def build_app(upstream: Upstream, settings: GatewaySettings) -> Starlette:
    printer = IppPrinter(upstream)
    client_api = ClientApi(upstream, settings.default_company).app()

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
        authorization = request.headers.get("authorization")
        credentials = _credentials(authorization)
        bearer = _bearer(authorization)
        if credentials is None and not bearer and _carries_document(request):
            # Only Get-Printer-Attributes goes without a login, and it has no document: ask for
            # credentials before the client sends (and we read) a large body for nothing.
            return _challenge(close=True)
        body = RequestBody(request)
        read = await read_ipp(body)
        if isinstance(read, Response):
            return read
        message, document = read
        ipp_request = IppRequest(
            message=message,
            target=where,
            body=document,
            credentials=credentials,
            user_agent=request.headers.get("user-agent", "")[:100],
            bearer=bearer,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        try:
            reply = await printer.handle(ipp_request)
        except NeedAuth:
            return _challenge(close=not await body.drain(), bearer=bool(bearer))
        except ClientDisconnect:
            return broken_off()
        except IppFailure as exc:  # raised from the document stream (bad compression)
            reply = response(message, exc.status, exc.message)
        except Exception:
            log.exception("IPP request %s failed", message.code)
            reply = response(message, Status.SERVER_ERROR_INTERNAL_ERROR, "internal error")
        return await answered(body, reply)

    async def root(request: Request) -> Response:
        return JSONResponse(
            {"service": "printfabric-gateway", "ipp": "/ipp/print/{queue}", "api": "/api/v1"}
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"nothing at {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    async def no_blob_storage(request: Request) -> Response:
        return _error(404, "this gateway serves no blob storage")

    methods = ["GET", "POST"]
    routes: list[BaseRoute] = [
        Route("/", root, methods=["GET"]),
        icon_route(lambda message: _error(404, message)),
        Route("/ipp/print/{queue:str}", ipp_endpoint, methods=methods),
        Route("/t/{company:str}/ipp/print/{queue:str}", ipp_endpoint, methods=methods),
        Mount("/api/v1", app=client_api),
    ]
    if settings.blob_folder is not None:
        routes.extend(blob_routes(settings.blob_folder))
    else:
        routes.append(Route("/blob/v1/{token:str}", no_blob_storage, methods=["GET", "PUT"]))
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


def with_mfp_api(app: ASGIApp, mfp: ASGIApp) -> ASGIApp:
    """One ASGI app: /mfp/... goes to the MFP API, everything else to the IPP gateway."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/mfp/"):
            await mfp(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
