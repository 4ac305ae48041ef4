"""The IPPS gateway of `make run`, driven by our own IPP client and by raw HTTP over TLS.

CUPS's conformance suites against the same gateway are in test_gateway_conformance.py.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printfabric.ipp import (
    Attribute,
    IppClient,
    IppHttpError,
    JobState,
    Message,
    Operation,
    Status,
    Tag,
    decode,
    encode,
    new_request,
)
from pypdf import PdfWriter

from tests.support.gateway import Fabric, running_fabric
from tests.test_tls import _legacy_client


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    with running_fabric(tmp_path_factory.mktemp("gw")) as running:
        yield running


def pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def call(
    fabric: Fabric,
    op: Operation,
    queue: str = "direct",
    *,
    attrs: tuple[Attribute, ...] = (),
    job: tuple[Attribute, ...] = (),
    document: bytes | AsyncIterator[bytes] | None = None,
    auth: bool = True,
    prefix: str = "",
) -> Message:
    uri = fabric.uri(queue, auth=False, prefix=prefix)
    request = new_request(op, uri, user=fabric.login)
    for a in attrs:
        request.operation_attributes.add(a)
    if job:
        group = request.add_group(Tag.JOB)
        for a in job:
            group.add(a)
    async with IppClient(
        uri,
        username=fabric.login if auth else None,
        password=fabric.password,
        ssl_context=fabric.ssl_context(),
    ) as ipp:
        return await ipp.request(request, document)


def job_state(reply: Message) -> tuple[int, list[str], str]:
    group = reply.group(Tag.JOB)
    assert group is not None, reply
    message = group.get("job-state-message")
    return (
        int(group["job-state"].value),  # type: ignore[arg-type]
        [str(v) for v in group["job-state-reasons"].values],
        str(message.value) if message else "",
    )


def job_id_of(reply: Message) -> int:
    group = reply.group(Tag.JOB)
    assert group is not None, reply
    return int(group["job-id"].value)  # type: ignore[arg-type]


async def wait_state(fabric: Fabric, queue: str, job_id: int, want: JobState) -> Message:
    for _ in range(200):
        reply = await call(
            fabric,
            Operation.GET_JOB_ATTRIBUTES,
            queue,
            attrs=(Attribute.integer("job-id", job_id),),
        )
        if job_state(reply)[0] == want:
            return reply
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {want.name}: {job_state(reply)}")


async def test_a_direct_queue_prints_at_once_into_printed_with_identical_bytes(
    fabric: Fabric,
) -> None:
    data = pdf(2)
    reply = await call(
        fabric,
        Operation.PRINT_JOB,
        attrs=(
            Attribute.name_("job-name", "quarterly report"),
            Attribute.mime_type("document-format", "application/pdf"),
        ),
        document=data,
    )
    assert reply.code == Status.SUCCESSFUL_OK, reply
    job_id = job_id_of(reply)
    done = await wait_state(fabric, "direct", job_id, JobState.COMPLETED)
    assert job_state(done)[1] == ["job-completed-successfully"]
    printed = fabric.printed / f"{job_id}-quarterly_report"
    assert printed.read_bytes() == data
    # Completed jobs stay queryable, with their page count.
    group = done.group(Tag.JOB)
    assert group is not None and group["job-impressions"].value == 2


async def test_a_secure_queue_holds_the_job_with_a_reason_a_person_understands(
    fabric: Fabric,
) -> None:
    reply = await call(fabric, Operation.PRINT_JOB, "secure", document=pdf())
    state, reasons, message = job_state(reply)
    assert state == JobState.PENDING_HELD and reasons == ["job-hold-until-specified"]
    assert "log in at any printer" in message
    listed = await call(
        fabric,
        Operation.GET_JOBS,
        "secure",
        attrs=(Attribute.keyword("requested-attributes", "job-id", "job-state"),),
    )
    ids = [g["job-id"].value for g in listed.groups_of(Tag.JOB)]
    assert job_id_of(reply) in ids


async def test_create_job_then_send_document_gzip_compressed(fabric: Fabric) -> None:
    data = pdf(3)
    created = await call(
        fabric, Operation.CREATE_JOB, attrs=(Attribute.name_("job-name", "two-step"),)
    )
    job_id = job_id_of(created)
    assert job_state(created)[1] == ["job-incoming"]
    sent = await call(
        fabric,
        Operation.SEND_DOCUMENT,
        attrs=(
            Attribute.integer("job-id", job_id),
            Attribute.keyword("compression", "gzip"),
            Attribute.boolean("last-document", True),
        ),
        document=gzip.compress(data),
    )
    assert sent.code == Status.SUCCESSFUL_OK, sent
    await wait_state(fabric, "direct", job_id, JobState.COMPLETED)
    assert (fabric.printed / f"{job_id}-two-step").read_bytes() == data
    again = await call(
        fabric,
        Operation.SEND_DOCUMENT,
        attrs=(Attribute.integer("job-id", job_id), Attribute.boolean("last-document", True)),
        document=b"%PDF-1.4 more",
    )
    assert again.code == Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED


async def test_a_chunked_streamed_document_arrives_whole(fabric: Fabric) -> None:
    data = pdf(1) + b"\n%" + b"x" * (5 << 20)  # a PDF with 5 MiB of trailing comment

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    reply = await call(
        fabric, Operation.PRINT_JOB, attrs=(Attribute.name_("job-name", "big"),), document=pieces()
    )
    job_id = job_id_of(reply)
    await wait_state(fabric, "direct", job_id, JobState.COMPLETED)
    assert (fabric.printed / f"{job_id}-big").read_bytes() == data


async def test_the_tenant_comes_from_the_path_prefix_or_the_default(fabric: Fabric) -> None:
    prefixed = await call(
        fabric, Operation.GET_PRINTER_ATTRIBUTES, "secure", auth=False, prefix="/t/demo"
    )
    assert prefixed.code == Status.SUCCESSFUL_OK
    printer = prefixed.group(Tag.PRINTER)
    assert printer is not None and printer["printer-name"].value == "secure"
    unknown = await call(
        fabric, Operation.GET_PRINTER_ATTRIBUTES, "secure", auth=False, prefix="/t/NOPE"
    )
    assert unknown.code == Status.CLIENT_ERROR_NOT_FOUND
    missing = await call(fabric, Operation.GET_PRINTER_ATTRIBUTES, "nope", auth=False)
    assert missing.code == Status.CLIENT_ERROR_NOT_FOUND and missing.group(Tag.PRINTER) is None


async def test_jobs_need_basic_auth_and_printer_attributes_do_not(fabric: Fabric) -> None:
    anonymous = await call(fabric, Operation.GET_PRINTER_ATTRIBUTES, auth=False)
    printer = anonymous.group(Tag.PRINTER)
    assert printer is not None
    assert printer["uri-authentication-supported"].values == ["basic"]
    assert printer["uri-security-supported"].values == ["tls"]
    with pytest.raises(IppHttpError) as refused:
        await call(fabric, Operation.PRINT_JOB, auth=False, document=pdf())
    assert refused.value.status_code == 401
    uri = fabric.uri(auth=False)
    async with IppClient(
        uri, username=fabric.login, password="wrong", ssl_context=fabric.ssl_context()
    ) as ipp:
        with pytest.raises(IppHttpError) as wrong:
            await ipp.request(new_request(Operation.GET_JOBS, uri))
    assert wrong.value.status_code == 401


async def test_requested_attributes_are_honoured_exactly(fabric: Fabric) -> None:
    reply = await call(
        fabric,
        Operation.GET_PRINTER_ATTRIBUTES,
        attrs=(Attribute.keyword("requested-attributes", "printer-name", "queued-job-count"),),
    )
    printer = reply.group(Tag.PRINTER)
    assert printer is not None and printer.names() == ["printer-name", "queued-job-count"]


async def test_an_unsupported_format_is_refused_before_the_document(fabric: Fabric) -> None:
    reply = await call(
        fabric,
        Operation.PRINT_JOB,
        attrs=(Attribute.mime_type("document-format", "text/x-unknown"),),
        document=b"hello",
    )
    assert reply.code == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    unsupported = reply.group(Tag.UNSUPPORTED)
    assert unsupported is not None and "document-format" in unsupported


async def test_bad_requests_get_their_ipp_status(fabric: Fabric) -> None:
    uri = fabric.uri(auth=False)
    cases: list[tuple[Message, Status]] = []
    old = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri)
    old.version = (0, 0)
    cases.append((old, Status.SERVER_ERROR_VERSION_NOT_SUPPORTED))
    no_charset = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri)
    no_charset.groups[0].attributes.pop(0)
    cases.append((no_charset, Status.CLIENT_ERROR_BAD_REQUEST))
    no_language = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri)
    no_language.groups[0].attributes.pop(1)
    cases.append((no_language, Status.CLIENT_ERROR_BAD_REQUEST))
    no_uri = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri)
    no_uri.groups[0].attributes.pop(2)
    cases.append((no_uri, Status.CLIENT_ERROR_BAD_REQUEST))
    zero = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri, request_id=0)
    cases.append((zero, Status.CLIENT_ERROR_BAD_REQUEST))
    cases.append((new_request(0x4242, uri), Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED))
    cases.append(
        (new_request(Operation.PRINT_URI, uri), Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED)
    )
    async with httpx.AsyncClient(verify=fabric.ssl_context()) as http:
        for message, status in cases:
            reply = await http.post(
                uri.replace("ipps://", "https://"),
                content=encode(message),
                headers={"Content-Type": "application/ipp"},
            )
            assert reply.status_code == 200
            decoded, _ = decode(reply.content)
            assert decoded.code == status, (message, decoded)
            assert decoded.group(Tag.PRINTER) is None
        # Not IPP at all: an IPP bad-request, the connection closed; never a 500.
        for body in (b"", b"\x01", b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01\x47\x00\x12"):
            reply = await http.post(
                uri.replace("ipps://", "https://"),
                content=body,
                headers={"Content-Type": "application/ipp"},
            )
            assert reply.status_code == 200, body
            assert decode(reply.content)[0].code == Status.CLIENT_ERROR_BAD_REQUEST
        huge_name = new_request(Operation.GET_PRINTER_ATTRIBUTES, uri)
        huge_name.groups[0].add(Attribute.text("x" * 300, "y"))
        reply = await http.post(
            uri.replace("ipps://", "https://"),
            content=encode(huge_name),
            headers={"Content-Type": "application/ipp"},
        )
        assert decode(reply.content)[0].code == Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
        wrong_type = await http.post(
            uri.replace("ipps://", "https://"), content=b"{}", headers={"Content-Type": "text/json"}
        )
        assert wrong_type.status_code == 400 and "application/ipp" in wrong_type.json()["error"]


def _tls_socket(fabric: Fabric) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", fabric.gateway_port), timeout=10)
    return fabric.ssl_context().wrap_socket(raw, server_hostname="localhost")


def _auth_header(fabric: Fabric) -> str:
    return base64.b64encode(f"{fabric.login}:{fabric.password}".encode()).decode()


def _print_job(fabric: Fabric, title: str) -> bytes:
    request = new_request(Operation.PRINT_JOB, fabric.uri(auth=False))
    request.operation_attributes.add(Attribute.name_("job-name", title))
    return encode(request)


async def _count_jobs(fabric: Fabric, title: str) -> int:
    reply = await call(
        fabric,
        Operation.GET_JOBS,
        attrs=(
            Attribute.keyword("which-jobs", "completed"),
            Attribute.keyword("requested-attributes", "job-name"),
        ),
    )
    open_jobs = await call(
        fabric, Operation.GET_JOBS, attrs=(Attribute.keyword("requested-attributes", "job-name"),)
    )
    groups = reply.groups_of(Tag.JOB) + open_jobs.groups_of(Tag.JOB)
    return sum(1 for g in groups if g["job-name"].value == title)


def _expect_continue_print(fabric: Fabric, title: str, data: bytes) -> bytes:
    """Print-Job with Expect: 100-continue and a chunked body, the way CUPS sends it."""
    with _tls_socket(fabric) as tls:
        tls.sendall(
            (
                "POST /ipp/print/direct HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/ipp\r\nTransfer-Encoding: chunked\r\n"
                f"Authorization: Basic {_auth_header(fabric)}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        body = _print_job(fabric, title) + data
        # The gateway asks for the body only once it wants to read it.
        tls.settimeout(1.0)
        first = tls.recv(100)
        assert first.startswith(b"HTTP/1.1 100"), first
        tls.settimeout(10)
        for i in range(0, len(body), 7000):
            piece = body[i : i + 7000]
            tls.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        tls.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < 200:
            more = tls.recv(65536)
            if not more:
                break
            answer += more
        return answer


async def test_expect_100_continue_and_chunked_bodies(fabric: Fabric) -> None:
    data = pdf()
    answer = await asyncio.to_thread(_expect_continue_print, fabric, "continued", data)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    reply, _ = decode(answer.split(b"\r\n\r\n", 1)[1])
    assert reply.code == Status.SUCCESSFUL_OK


def _cut_print(fabric: Fabric, title: str) -> None:
    """A Print-Job whose body stops halfway: a Content-Length of 1 MiB, 200 kB sent."""
    with _tls_socket(fabric) as tls:
        body = _print_job(fabric, title) + pdf() + b"%" * 200_000
        tls.sendall(
            (
                "POST /ipp/print/direct HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Type: application/ipp\r\nContent-Length: {1 << 20}\r\n"
                f"Authorization: Basic {_auth_header(fabric)}\r\n\r\n"
            ).encode()
            + body
        )


async def test_a_body_that_stops_halfway_leaves_no_job(fabric: Fabric) -> None:
    await asyncio.to_thread(_cut_print, fabric, "cut-off")
    await asyncio.sleep(1.0)
    assert await _count_jobs(fabric, "cut-off") == 0
    assert not list(fabric.printed.glob("*cut-off*"))
    # The gateway is still well.
    ok = await call(fabric, Operation.GET_PRINTER_ATTRIBUTES, auth=False)
    assert ok.code == Status.SUCCESSFUL_OK


async def test_corrupt_compression_is_a_compression_error_and_no_job(fabric: Fabric) -> None:
    reply = await call(
        fabric,
        Operation.PRINT_JOB,
        attrs=(
            Attribute.name_("job-name", "bad-gzip"),
            Attribute.keyword("compression", "gzip"),
        ),
        document=gzip.compress(pdf())[:-30] + b"garbage" * 10,
    )
    assert reply.code == Status.CLIENT_ERROR_COMPRESSION_ERROR, reply
    assert await _count_jobs(fabric, "bad-gzip") == 0
    deflated = await call(
        fabric,
        Operation.PRINT_JOB,
        attrs=(Attribute.keyword("compression", "deflate"),),
        document=_raw_deflate(pdf()),
    )
    assert deflated.code == Status.SUCCESSFUL_OK


def _raw_deflate(data: bytes) -> bytes:
    """IPP's "deflate": RFC 1951 data without the zlib header."""
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=400))
def test_fuzzed_bodies_never_get_a_500(fabric: Fabric, body: bytes) -> None:
    valid = encode(new_request(Operation.GET_PRINTER_ATTRIBUTES, fabric.uri(auth=False)))
    for candidate in (body, valid[: len(body) % len(valid)] + body, valid + body):
        with httpx.Client(verify=fabric.ssl_context(), timeout=10) as http:
            reply = http.post(
                fabric.uri(auth=False).replace("ipps://", "https://"),
                content=candidate,
                headers={"Content-Type": "application/ipp"},
            )
        assert reply.status_code in (200, 401), (candidate, reply.status_code)
        if reply.status_code == 200:
            decoded, _ = decode(reply.content)
            assert decoded.code < 0x0600


async def test_tls_below_1_2_is_refused(fabric: Fabric) -> None:
    # The legacy client (TLS 1.0-1.1 at security level 0) would connect to a server that
    # allowed it; test_tls.py shows that against a deliberately permissive server.
    raw = socket.create_connection(("127.0.0.1", fabric.gateway_port), timeout=10)
    with pytest.raises(ssl.SSLError):
        _legacy_client().wrap_socket(raw, server_hostname="localhost")
    raw.close()


def test_the_gateway_log_has_no_stack_trace(fabric: Fabric) -> None:
    # Runs last in this module: everything above must not have produced one.
    assert "Traceback" not in fabric.gateway_log()
