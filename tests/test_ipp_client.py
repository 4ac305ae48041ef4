"""IppClient against a real HTTP/1.1 server on a loopback port that decodes with the codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from printfabric.ipp import (
    Attribute,
    IppClient,
    IppError,
    IppHttpError,
    JobState,
    Message,
    Operation,
    Status,
    Tag,
    encode,
    new_request,
    read_message,
)
from printfabric.ipp.client import http_url


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    message: Message
    document: bytes


@dataclass
class TinyIppServer:
    """Answers every POST: 401 on /unauthorized, junk on /garbage, else a decoded IPP reply."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.port}/ipp/print"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode("ascii").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                key, value = line.decode("latin-1").split(":", 1)
                headers[key.strip().lower()] = value.strip()
            if headers.get("transfer-encoding") == "chunked":
                body = chunked(reader)
            else:
                body = sized(reader, int(headers.get("content-length", "0")))
            status, answer = await self.answer(method, path, headers, body)
            writer.write(
                f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/ipp\r\n"
                f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def answer(
        self, method: str, path: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> tuple[int, bytes]:
        if path in ("/unauthorized", "/garbage"):
            async for _ in body:
                pass
            return (401, b"who are you?") if path == "/unauthorized" else (200, b"not ipp at all")
        request, head, rest = await read_message(body)
        document = head + b"".join([chunk async for chunk in rest])
        self.seen.append(Seen(method, path, headers, request, document))
        response = Message(request.version, Status.SUCCESSFUL_OK, request.request_id)
        operation = response.add_group(Tag.OPERATION)
        operation.add(Attribute.charset("attributes-charset", "utf-8"))
        operation.add(Attribute.natural_language("attributes-natural-language", "en"))
        if request.operation_id == Operation.GET_PRINTER_ATTRIBUTES:
            printer = response.add_group(Tag.PRINTER)
            printer.add(Attribute.name_("printer-name", "Loopback"))
            printer.add(Attribute.keyword("media-supported", *[f"m{i}" for i in range(500)]))
        else:
            job = response.add_group(Tag.JOB)
            job.add(Attribute.integer("job-id", 42))
            job.add(Attribute.enum("job-state", JobState.PENDING))
            job.add(Attribute.integer("job-k-octets", len(document)))
        return 200, encode(response)


async def sized(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    while length > 0:
        chunk = await reader.read(min(length, 4096))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


async def chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


@pytest.fixture
async def server() -> AsyncIterator[TinyIppServer]:
    ipp = TinyIppServer()
    tcp = await asyncio.start_server(ipp.handle, "127.0.0.1", 0)
    ipp.port = tcp.sockets[0].getsockname()[1]
    async with tcp:
        yield ipp
    await tcp.wait_closed()


async def test_get_printer_attributes_over_http(server: TinyIppServer) -> None:
    async with IppClient(server.uri) as client:
        request = new_request(Operation.GET_PRINTER_ATTRIBUTES, client.uri, user="alice")
        response = await client.request(request)
    assert response.status == Status.SUCCESSFUL_OK and response.request_id == 1
    printer = response.group(Tag.PRINTER)
    assert printer is not None and printer["printer-name"].value == "Loopback"
    assert len(printer["media-supported"].values) == 500
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/ipp/print")
    assert seen.headers["content-type"] == "application/ipp"
    assert seen.headers["content-length"] == str(len(encode(request)))
    assert seen.message == request and seen.document == b""
    assert "authorization" not in seen.headers


async def test_print_job_sends_the_document_after_the_attributes(server: TinyIppServer) -> None:
    async with IppClient(server.uri) as client:
        request = new_request(Operation.PRINT_JOB, client.uri, user="alice", request_id=5)
        response = await client.request(request, b"%PDF-1.7 tiny")
    assert response.request_id == 5
    assert response.groups[1]["job-id"].value == 42
    assert server.seen[0].document == b"%PDF-1.7 tiny"


async def test_a_streamed_document_is_uploaded_chunked(server: TinyIppServer) -> None:
    pages = [b"%PDF-1.7\n", b"", b"page one\n" * 1000, b"page two\n" * 3000, b"%%EOF"]

    async def document() -> AsyncIterator[bytes]:
        for page in pages:
            await asyncio.sleep(0)
            yield page

    async with IppClient(server.uri) as client:
        request = new_request(Operation.SEND_DOCUMENT, client.uri)
        request.operation_attributes.add(Attribute.boolean("last-document", True))
        response = await client.request(request, document())
    (seen,) = server.seen
    assert seen.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in seen.headers
    assert seen.message == request
    assert seen.document == b"".join(pages)
    assert response.groups[1]["job-k-octets"].value == len(b"".join(pages))


async def test_credentials_go_as_http_basic_auth(server: TinyIppServer) -> None:
    async with IppClient(server.uri, username="alice", password="s3cret") as client:
        await client.request(new_request(Operation.GET_JOBS, client.uri, user="alice"))
    assert server.seen[0].headers["authorization"] == "Basic YWxpY2U6czNjcmV0"


async def test_an_http_error_is_ipp_http_error_with_the_body(server: TinyIppServer) -> None:
    uri = f"ipp://127.0.0.1:{server.port}/unauthorized"
    async with IppClient(uri) as client:
        with pytest.raises(IppHttpError) as caught:
            await client.request(new_request(Operation.GET_JOBS, uri))
    assert caught.value.status_code == 401
    assert caught.value.body == b"who are you?"
    assert caught.value.status == Status.CLIENT_ERROR_NOT_AUTHENTICATED


async def test_an_answer_that_is_not_ipp_is_an_ipp_error(server: TinyIppServer) -> None:
    uri = f"ipp://127.0.0.1:{server.port}/garbage"
    async with IppClient(uri) as client:
        with pytest.raises(IppError) as caught:
            await client.request(new_request(Operation.GET_JOBS, uri))
    assert not isinstance(caught.value, IppHttpError)
    assert "offset 9: a name of 29728 octets" in str(caught.value)  # b"t at all" read as IPP


@pytest.mark.parametrize(
    ("uri", "url"),
    [
        ("ipp://printer.example/ipp/print", "http://printer.example:631/ipp/print"),
        ("ipps://printer.example/ipp/print", "https://printer.example:631/ipp/print"),
        ("ipps://printer.example:8443/x?y=1", "https://printer.example:8443/x?y=1"),
        ("ipp://[fe80::1]", "http://[fe80::1]:631/"),
        ("https://printer.example/ipp", "https://printer.example/ipp"),
    ],
)
def test_ipp_uris_map_to_http_urls(uri: str, url: str) -> None:
    assert http_url(uri) == url


def test_other_uris_are_refused() -> None:
    with pytest.raises(ValueError, match="not an ipp"):
        http_url("lpd://printer.example/queue")


def test_new_request_starts_with_the_required_operation_attributes() -> None:
    request = new_request(Operation.PRINT_JOB, "ipp://p/ipp/print", user="bob", request_id=9)
    assert request.version == (2, 0) and request.request_id == 9
    assert request.operation_attributes.names() == [
        "attributes-charset",
        "attributes-natural-language",
        "printer-uri",
        "requesting-user-name",
    ]
    assert request.operation_attributes["requesting-user-name"].tag == Tag.NAME
    assert "requesting-user-name" not in new_request(2, "ipp://p/").operation_attributes
