"""A small async IPP client: one POST of application/ipp per request (RFC 8010 section 4)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from printfabric.ipp.codec import IppError, Limits, encode, read_message
from printfabric.ipp.constants import Operation, Status, Tag
from printfabric.ipp.model import Attribute, Message

# Printers answer Get-Printer-Attributes with thousands of values (media-col-database), so a
# response may be far larger than a request a server should accept.
RESPONSE_LIMITS = Limits(
    max_header_bytes=16 * 1024 * 1024,
    max_attributes=500_000,
    max_values_per_attribute=100_000,
    max_value_length=0xFFFF,
    max_depth=16,
)
_ERROR_BODY_LIMIT = 64 * 1024

_HTTP_TO_IPP = {
    400: Status.CLIENT_ERROR_BAD_REQUEST,
    401: Status.CLIENT_ERROR_NOT_AUTHENTICATED,
    403: Status.CLIENT_ERROR_FORBIDDEN,
    404: Status.CLIENT_ERROR_NOT_FOUND,
    413: Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
    503: Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
}


class IppHttpError(IppError):
    """The server answered with an HTTP status other than 200 OK."""

    def __init__(self, status_code: int, body: bytes) -> None:
        default = (
            Status.SERVER_ERROR_INTERNAL_ERROR
            if status_code >= 500
            else Status.CLIENT_ERROR_NOT_POSSIBLE
        )
        super().__init__(_HTTP_TO_IPP.get(status_code, default), f"HTTP {status_code}")
        self.status_code = status_code
        self.body = body


def http_url(uri: str) -> str:
    """ipp://host/path -> http://host:631/path, ipps://host/path -> https://host:631/path."""
    parts = urlsplit(uri)
    scheme = {"ipp": "http", "ipps": "https", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"not an ipp://, ipps://, http:// or https:// URI: {uri!r}")
    if parts.scheme in ("http", "https"):
        return uri
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port or 631}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def new_request(
    operation: Operation | int,
    printer_uri: str,
    *,
    user: str | None = None,
    request_id: int = 1,
) -> Message:
    """An IPP/2.0 request whose operation group holds the attributes every request starts with."""
    message = Message((2, 0), int(operation), request_id)
    group = message.add_group(Tag.OPERATION)
    group.add(Attribute.charset("attributes-charset", "utf-8"))
    group.add(Attribute.natural_language("attributes-natural-language", "en"))
    group.add(Attribute.uri("printer-uri", printer_uri))
    if user is not None:
        group.add(Attribute.name_("requesting-user-name", user))
    return message


class IppClient:
    """Sends IPP requests to one printer URI.

    HTTP transport failures surface as httpx exceptions; an HTTP status other than 200 as
    IppHttpError; an answer that does not decode as IppError.
    """

    def __init__(
        self,
        uri: str,
        *,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | bool = True,
        timeout: float = 30,
        limits: Limits = RESPONSE_LIMITS,
    ) -> None:
        """username/password: HTTP Basic; bearer_token: `Authorization: Bearer ...` (an access
        token of the gateway's API; not both); headers: extra HTTP headers of every request."""
        if bearer_token is not None and username is not None:
            raise ValueError("give username and password or bearer_token, not both")
        self.uri = uri
        self.url = http_url(uri)
        self.limits = limits
        auth = httpx.BasicAuth(username, password or "") if username is not None else None
        default_headers = dict(headers or {})
        if bearer_token is not None:
            default_headers["Authorization"] = f"Bearer {bearer_token}"
        self._http = httpx.AsyncClient(
            verify=ssl_context, timeout=timeout, auth=auth, headers=default_headers
        )

    async def request(
        self,
        message: Message,
        document: bytes | AsyncIterable[bytes] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Message:
        """POSTs message (and document) and returns the decoded response.

        A bytes document is sent with a Content-Length; an async iterable one is streamed with
        chunked transfer coding. headers are extra HTTP headers for this request only (e.g.
        `Idempotency-Key`).
        """
        head = encode(message)
        content: bytes | AsyncIterator[bytes]
        if document is None:
            content = head
        elif isinstance(document, bytes | bytearray | memoryview):
            content = head + bytes(document)
        else:
            content = _stream(head, document)
        sent = {**(headers or {}), "Content-Type": "application/ipp", "Accept": "application/ipp"}
        async with self._http.stream("POST", self.url, content=content, headers=sent) as reply:
            if reply.status_code != 200:
                raise IppHttpError(reply.status_code, await _read_some(reply))
            chunks = reply.aiter_bytes()
            try:
                response, _, _ = await read_message(chunks, self.limits)
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            return response

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _stream(head: bytes, document: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in document:
        if chunk:  # an empty chunk would end the chunked body early
            yield bytes(chunk)


async def _read_some(reply: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in reply.aiter_bytes():
        body += chunk[: _ERROR_BODY_LIMIT - len(body)]
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return bytes(body)
