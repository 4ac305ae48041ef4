"""The HTTP side of an IPP printer (RFC 8010 section 3, Starlette): reading a request, sending the
answer, and the printer icons.

A request that cannot be read as IPP gets an IPP error (HTTP 200, as RFC 8010 wants) or, when the
stream itself broke, a closed connection; a body left unread is drained or the connection closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from printfabric.ipp.codec import IppError, Limits, encode, read_message
from printfabric.ipp.everywhere import ICON_SIZES
from printfabric.ipp.icons import printer_icon
from printfabric.ipp.model import Message
from printfabric.ipp.server import response
from printfabric.request_body import RequestBody, prepend

IPP_TYPE = "application/ipp"
LIMITS = Limits()


def ipp_response(message: Message, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else {}
    return Response(encode(message), media_type=IPP_TYPE, headers=headers)


def broken_off() -> Response:
    """The answer to a request whose body broke off (its connection is not used again)."""
    return Response(status_code=400, headers={"Connection": "close"})


async def read_ipp(body: RequestBody) -> tuple[Message, AsyncIterator[bytes]] | Response:
    """(the request's message, the document that follows it), or the answer to a request that
    cannot be read."""
    try:
        message, rest, remaining = await read_message(body, LIMITS)
    except IppError as exc:
        # Not IPP we can read: answer as IPP and close (the stream position is unknown).
        return ipp_response(response(None, exc.status, str(exc)), close=True)
    except ClientDisconnect:
        return broken_off()
    return message, prepend(rest, remaining)


async def answered(body: RequestBody, reply: Message) -> Response:
    """reply, closing the connection unless what is left of the body could be read and dropped."""
    close = not body.finished and not await body.drain()
    return ipp_response(reply, close=close)


def icon_route(not_found: Callable[[str], Response]) -> Route:
    """GET /icons/printer-{size}.png: the printer-icons everywhere.printer_attributes lists."""

    async def icon(request: Request) -> Response:
        size = int(request.path_params["size"])
        if size not in ICON_SIZES:
            return not_found(f"icons come in sizes {', '.join(map(str, ICON_SIZES))}")
        return Response(printer_icon(size), media_type="image/png")

    return Route("/icons/printer-{size:int}.png", icon, methods=["GET"])
