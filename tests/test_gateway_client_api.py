"""The gateway's workstation API (/api/v1, docs/client-api.md), its signed blob URLs (/blob/v1)
and IPP with an access token, against `make run` as a process (cloud, node and gateway)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from printfabric.blobtokens import STAGING_DIR, blob_path
from printfabric.ipp import (
    Attribute,
    IppClient,
    IppHttpError,
    JobState,
    Message,
    Operation,
    Status,
    Tag,
    encode,
    new_request,
)
from printfabric.v1 import spool_pb2, spool_pb2_grpc
from pypdf import PdfWriter

from cloud.config import CloudConfig
from gateway.blob_urls import BlobFolder, BlobKeyError
from gateway.config import ConfigError, GatewayConfig
from tests.support.gateway import Fabric, running_fabric

MAX_JOB = 2 << 20  # the fabric's PF_MAX_JOB_BYTES: what an upload URL takes at most


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    home = tmp_path_factory.mktemp("client-api")
    with running_fabric(home, PF_MAX_JOB_BYTES=str(MAX_JOB)) as running:
        yield running


@pytest.fixture(scope="module")
def api(fabric: Fabric) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"https://127.0.0.1:{fabric.gateway_port}/api/v1",
        verify=fabric.ssl_context(),
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
async def aapi(fabric: Fabric) -> AsyncIterator[httpx.AsyncClient]:
    """The API for async tests (which also drive IPP or gRPC)."""
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{fabric.gateway_port}/api/v1",
        verify=fabric.ssl_context(),
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def session(api: httpx.Client, fabric: Fabric) -> dict[str, Any]:
    """A fresh log-in of the demo user (its own session)."""
    reply = api.post("/login", json={"login": fabric.login, "password": fabric.password})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def bearer(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


def pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def refused(reply: httpx.Response, status: int, reason: str) -> str:
    """Asserts an error answer of the API; its sentence."""
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["reason"] == reason, body
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def token_claims(url: str) -> dict[str, Any]:
    payload = urlsplit(url).path.rsplit("/", 1)[1].partition(".")[0]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def staged_puts(fabric: Fabric) -> list[Path]:
    return list((fabric.home / "blobs" / STAGING_DIR).glob("gateway-put-*"))


def new_upload(api: httpx.Client, session: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"printer": "secure", "title": "via storage", "format": "application/pdf", **fields}
    reply = api.post("/uploads", json=body, headers=bearer(session))
    assert reply.status_code == 200, reply.text
    made: dict[str, Any] = reply.json()
    return made


def put(fabric: Fabric, url: str, content: Any, **headers: str) -> httpx.Response:
    with httpx.Client(verify=fabric.ssl_context(), timeout=30) as client:
        return client.put(url, content=content, headers=headers)


async def ipp(
    fabric: Fabric,
    op: Operation,
    queue: str = "secure",
    *,
    token: str,
    document: bytes | None = None,
    title: str = "",
    headers: dict[str, str] | None = None,
    prefix: str = "",
) -> Message:
    uri = fabric.uri(queue, auth=False, prefix=prefix)
    request = new_request(op, uri)
    if title:
        request.operation_attributes.add(Attribute.name_("job-name", title))
    if document is not None:
        request.operation_attributes.add(Attribute.mime_type("document-format", "application/pdf"))
    async with IppClient(uri, bearer_token=token, ssl_context=fabric.ssl_context()) as client:
        return await client.request(request, document, headers=headers)


def ipp_job(reply: Message) -> tuple[int, int]:
    """(job-id, job-state) of a job answer."""
    group = reply.group(Tag.JOB)
    assert reply.code in (0, 1) and group is not None, reply
    return int(group["job-id"].value), int(group["job-state"].value)  # type: ignore[arg-type]


# Sessions ----------------------------------------------------------------------------------------


def test_login_answers_a_token_pair_and_the_user(api: httpx.Client, fabric: Fabric) -> None:
    reply = api.post(
        "/login", json={"company": "demo", "login": fabric.login, "password": fabric.password}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["company"] == "DEMO"
    assert body["access_token"] and body["refresh_token"]
    for name in ("access_token_expire_time", "refresh_token_expire_time"):
        assert body[name].endswith("Z") and body[name][:2] == "20"
    assert body["user"]["login"] == fabric.login
    assert set(body["user"]) == {"login", "full_name", "email"}
    # company may be left out on a gateway with a default company (DEMO under `make run`).
    same = api.post("/login", json={"login": fabric.login, "password": fabric.password})
    assert same.status_code == 200 and same.json()["company"] == "DEMO"


def test_a_refused_or_malformed_login(api: httpx.Client, fabric: Fabric) -> None:
    wrong = api.post("/login", json={"login": fabric.login, "password": "not it"})
    refused(wrong, 401, "BAD_CREDENTIALS")
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    nobody = api.post("/login", json={"company": "NOPE", "login": "x", "password": "y"})
    refused(nobody, 401, "BAD_CREDENTIALS")
    assert "password" in refused(api.post("/login", json={"login": "demo"}), 400, "BAD_REQUEST")
    refused(api.post("/login", content=b"{not json"), 400, "BAD_REQUEST")
    refused(api.post("/login", content=b"\xff\xfe"), 400, "BAD_REQUEST")
    refused(api.post("/login", json=["demo", "pw"]), 400, "BAD_REQUEST")
    refused(api.post("/login", content=b"[" * 60_000), 400, "BAD_REQUEST")
    refused(api.post("/login", json={"login": 5, "password": "x"}), 400, "BAD_REQUEST")
    refused(api.post("/login", json={"login": "demo", "password": None}), 400, "BAD_REQUEST")
    refused(
        api.post("/login", content=b'{"login": "\\ud800", "password": "x"}'), 400, "BAD_REQUEST"
    )
    refused(api.post("/login", content=b" " * (65 << 10)), 413, "PAYLOAD_TOO_LARGE")
    refused(api.get("/login"), 405, "METHOD_NOT_ALLOWED")
    refused(api.get("/nothing-here"), 404, "NOT_FOUND")


def test_too_many_failed_log_ins_are_429_with_retry_after(api: httpx.Client) -> None:
    login = f"guess-{os.urandom(3).hex()}"
    replies = [api.post("/login", json={"login": login, "password": "x"}) for _ in range(7)]
    assert replies[0].status_code == 401
    locked = replies[-1]
    assert "try again" in refused(locked, 429, "TOO_MANY_ATTEMPTS")
    assert 0 < int(locked.headers["retry-after"]) <= 300


def test_refresh_gives_a_new_pair_and_retires_the_old_refresh_token(
    api: httpx.Client, session: dict[str, Any]
) -> None:
    reply = api.post("/refresh", json={"refresh_token": session["refresh_token"]})
    assert reply.status_code == 200, reply.text
    fresh = reply.json()
    assert fresh["access_token"] != session["access_token"]
    assert fresh["refresh_token"] != session["refresh_token"]
    assert fresh["access_token_expire_time"].endswith("Z")
    assert api.get("/printers", headers=bearer(fresh)).status_code == 200
    again = api.post("/refresh", json={"refresh_token": session["refresh_token"]})
    refused(again, 401, "SESSION_EXPIRED")
    refused(api.post("/refresh", json={"refresh_token": "nope.nope"}), 401, "SESSION_EXPIRED")
    refused(api.post("/refresh", json={}), 400, "BAD_REQUEST")


def test_logout_ends_the_session(api: httpx.Client, session: dict[str, Any]) -> None:
    out = api.post("/logout", json={"refresh_token": session["refresh_token"]})
    assert out.status_code == 200 and out.json() == {}
    refused(
        api.post("/refresh", json={"refresh_token": session["refresh_token"]}),
        401,
        "SESSION_EXPIRED",
    )
    # The access token of the session ends with it.
    refused(api.get("/printers", headers=bearer(session)), 401, "UNAUTHENTICATED")
    again = api.post("/logout", json={"refresh_token": session["refresh_token"]})
    assert again.status_code == 200 and again.json() == {}


def test_a_missing_or_garbage_bearer_token_is_401(api: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic ZDpw"}):
        for reply in (
            api.get("/printers", headers=headers),
            api.get("/jobs", headers=headers),
            api.post("/uploads", json={"printer": "secure"}, headers=headers),
        ):
            refused(reply, 401, "UNAUTHENTICATED")
            assert reply.headers["www-authenticate"].startswith("Bearer")


_FIELDS = ["company", "login", "password", "refresh_token", "printer", "title", "format"]
_FIELDS += ["copies", "duplex", "mono", "request_id", "size"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=_JSON, raw=st.binary(max_size=200))
def test_fuzzed_bodies_never_get_a_5xx(
    api: httpx.Client, session: dict[str, Any], value: Any, raw: bytes
) -> None:
    for path in ("/login", "/refresh", "/logout", "/uploads", "/jobs/no-such-job/cancel"):
        for content in (json.dumps(value).encode(), raw):
            reply = api.post(path, content=content, headers=bearer(session))
            assert reply.status_code < 500, (path, content, reply.text)
            assert reply.json()["reason"] if reply.status_code >= 400 else True


# Printers and jobs -------------------------------------------------------------------------------


def test_printers_are_the_demo_queues_with_their_ipps_uris(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    reply = api.get("/printers", headers=bearer(session))
    assert reply.status_code == 200, reply.text
    printers = {p["name"]: p for p in reply.json()["printers"]}
    assert {"secure", "direct", "office"} <= set(printers)
    assert printers["secure"]["model"] == "secure" and printers["direct"]["model"] == "direct"
    for name, printer in printers.items():
        assert printer["id"] and isinstance(printer["color"], bool)
        assert "application/pdf" in printer["formats"]
        uri = printer["submit_uris"][0]
        assert uri == f"ipps://localhost:{fabric.gateway_port}/t/DEMO/ipp/print/{name}"


async def test_jobs_list_filter_get_and_cancel(
    aapi: httpx.AsyncClient, session: dict[str, Any], fabric: Fabric
) -> None:
    title = f"list-{os.urandom(3).hex()}"
    number = await fabric.print_job(pdf(2), title)
    headers = bearer(session)
    jobs = (await aapi.get("/jobs", headers=headers)).json()["jobs"]
    mine = [j for j in jobs if j["title"] == title]
    assert len(mine) == 1
    job = mine[0]
    assert job["number"] == number and job["state"] == "held" and job["printer"] == "secure"
    assert job["format"] == "application/pdf" and job["page_count"] == 2
    assert job["copies"] == 1 and job["duplex"] is False and len(job["sha256"]) == 64
    assert job["create_time"].endswith("Z") and job["complete_time"] is None
    assert job["expire_time"] is not None and job["state_message"]
    assert jobs[0]["create_time"] >= jobs[-1]["create_time"]  # newest first
    held = await aapi.get(
        "/jobs", params=[("state", "held"), ("state", "printing")], headers=headers
    )
    assert number in [j["number"] for j in held.json()["jobs"]]
    done = (await aapi.get("/jobs", params={"state": "completed"}, headers=headers)).json()["jobs"]
    assert number not in [j["number"] for j in done]
    one = (await aapi.get("/jobs", params={"page_size": 1}, headers=headers)).json()
    assert len(one["jobs"]) == 1 and one["next_page_token"]
    refused(await aapi.get("/jobs", params={"state": "lost"}, headers=headers), 400, "BAD_REQUEST")
    refused(
        await aapi.get("/jobs", params={"page_size": "many"}, headers=headers), 400, "BAD_REQUEST"
    )

    by_id = (await aapi.get(f"/jobs/{job['id']}", headers=headers)).json()["job"]
    by_number = (await aapi.get(f"/jobs/{number}", headers=headers)).json()["job"]
    assert by_id == by_number == job
    refused(await aapi.get("/jobs/999999", headers=headers), 404, "UNKNOWN_JOB")
    refused(await aapi.get("/jobs/no-such-id", headers=headers), 404, "UNKNOWN_JOB")

    canceled = await aapi.post(f"/jobs/{number}/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["job"]["state"] == "canceled"
    assert canceled.json()["job"]["complete_time"] is not None
    refused(await aapi.post(f"/jobs/{job['id']}/cancel", headers=headers), 409, "JOB_FINAL")


# Uploads straight to storage and the gateway's signed blob URLs ---------------------------------


def test_upload_put_and_commit_make_a_held_job(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    data = pdf(3) + os.urandom(300_000)
    made = new_upload(api, session, size=len(data), copies=2, duplex=True)
    url = urlsplit(made["url"])
    assert (url.scheme, url.netloc) == ("https", f"localhost:{fabric.gateway_port}")
    assert url.path.startswith("/blob/v1/") and made["expire_time"].endswith("Z")
    refused(
        api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session)),
        409,
        "UPLOAD_MISSING",
    )
    stored = put(fabric, made["url"], data, **made["headers"])
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"size": len(data)}
    blob = blob_path(fabric.home / "blobs", token_claims(made["url"])["k"])
    assert blob.read_bytes() == data
    commit = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
    assert commit.status_code == 200, commit.text
    job = commit.json()["job"]
    assert job["state"] == "held" and job["title"] == "via storage"
    assert job["sha256"] == hashlib.sha256(data).hexdigest() and job["size_bytes"] == len(data)
    assert job["copies"] == 2 and job["duplex"] is True and job["page_count"] == 3
    again = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
    assert again.status_code == 200 and again.json()["job"]["id"] == job["id"]
    assert not blob.exists()  # the job holds the document now
    assert staged_puts(fabric) == []


def test_a_request_id_commits_to_the_first_job(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    request_id = f"client-{os.urandom(4).hex()}"
    jobs = []
    for _ in range(2):
        made = new_upload(api, session, request_id=request_id)
        assert put(fabric, made["url"], pdf()).status_code == 200
        commit = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
        jobs.append(commit.json()["job"]["id"])
    assert jobs[0] == jobs[1]


def test_a_bad_upload_request_is_400(api: httpx.Client, session: dict[str, Any]) -> None:
    headers = bearer(session)
    for body in (
        {"title": "no printer"},
        {"printer": "secure", "copies": "2"},
        {"printer": "secure", "copies": 0},
        {"printer": "secure", "duplex": "yes"},
        {"printer": "secure", "size": -1},
        {"printer": "secure", "size": 1.5},
    ):
        refused(api.post("/uploads", json=body, headers=headers), 400, "BAD_REQUEST")
    refused(
        api.post("/uploads", json={"printer": "secure", "format": "text/x-nope"}, headers=headers),
        400,
        "DOCUMENT_FORMAT_NOT_SUPPORTED",
    )
    refused(api.post("/uploads", json={"printer": "nope"}, headers=headers), 404, "UNKNOWN_QUEUE")
    refused(
        api.post("/uploads", json={"printer": "secure", "size": MAX_JOB + 1}, headers=headers),
        429,
        "JOB_TOO_LARGE",
    )


def test_a_put_over_the_tokens_limit_is_413_and_stores_nothing(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    made = new_upload(api, session)
    blob = blob_path(fabric.home / "blobs", token_claims(made["url"])["k"])
    assert token_claims(made["url"])["b"] == MAX_JOB
    too_big = b"%PDF-1.4\n" + b"x" * MAX_JOB
    refused(put(fabric, made["url"], too_big), 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: found out while streaming
        step = 256 << 10
        for i in range(0, len(too_big), step):
            yield too_big[i : i + step]

    refused(put(fabric, made["url"], chunks()), 413, "PAYLOAD_TOO_LARGE")
    assert not blob.exists() and staged_puts(fabric) == []
    commit = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
    refused(commit, 409, "UPLOAD_MISSING")


def test_a_tampered_or_misused_blob_token_is_403(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    made = new_upload(api, session)
    head, _, signature = made["url"].rpartition(".")
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    refused(put(fabric, tampered, b"%PDF-1.4\n"), 403, "BAD_BLOB_TOKEN")
    forged_claims = {**token_claims(made["url"]), "b": 0}
    payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    forged = made["url"].rsplit("/", 1)[0] + f"/{payload}.{signature}"
    refused(put(fabric, forged, b"%PDF-1.4\n"), 403, "BAD_BLOB_TOKEN")
    with httpx.Client(verify=fabric.ssl_context()) as client:
        # An upload URL does not read the blob, and a token is not a path.
        refused(client.get(made["url"]), 403, "BAD_BLOB_TOKEN")
        refused(
            client.put(made["url"].rsplit("/", 1)[0] + "/nope", content=b"x"), 403, "BAD_BLOB_TOKEN"
        )
    assert not blob_path(fabric.home / "blobs", token_claims(made["url"])["k"]).exists()


def test_a_put_cut_off_midway_leaves_no_blob(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    made = new_upload(api, session)
    url = urlsplit(made["url"])
    blob = blob_path(fabric.home / "blobs", token_claims(made["url"])["k"])
    head = (
        f"PUT {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Length: {1 << 20}\r\nContent-Type: application/pdf\r\n\r\n"
    ).encode()
    with (
        socket.create_connection(("127.0.0.1", fabric.gateway_port)) as raw,
        fabric.ssl_context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(head + b"%PDF-1.4\n" + b"x" * 300_000)
        deadline = time.monotonic() + 10
        while not staged_puts(fabric) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert staged_puts(fabric), "the gateway never started writing the PUT"
    deadline = time.monotonic() + 10
    while staged_puts(fabric) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert staged_puts(fabric) == [] and not blob.exists()
    commit = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
    refused(commit, 409, "UPLOAD_MISSING")
    # The same URL takes the PUT sent again whole.
    data = pdf()
    assert put(fabric, made["url"], data).status_code == 200
    commit = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session))
    assert commit.json()["job"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_download_url_streams_the_job(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    data = pdf(2) + os.urandom(1_500_000)
    made = new_upload(api, session)
    assert put(fabric, made["url"], data).status_code == 200
    job = api.post(f"/uploads/{made['upload_id']}/commit", headers=bearer(session)).json()["job"]
    creds = grpc.ssl_channel_credentials(fabric.ca_cert.read_bytes())
    with grpc.secure_channel(f"localhost:{fabric.cloud_port}", creds) as channel:
        link = spool_pb2_grpc.SpoolServiceStub(channel).CreateDownloadUrl(
            spool_pb2.CreateDownloadUrlRequest(job_id=job["id"]),
            metadata=(("authorization", f"Bearer {session['access_token']}"),),
        )
    with httpx.Client(verify=fabric.ssl_context()) as client:
        got = client.get(link.url)
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-length"] == str(len(data))
        head = client.head(link.url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        refused(client.put(link.url, content=b"x"), 403, "BAD_BLOB_TOKEN")


def test_without_the_blob_url_key_the_gateway_serves_no_blob_storage(
    api: httpx.Client, session: dict[str, Any], fabric: Fabric
) -> None:
    made = new_upload(api, session)
    key_file = fabric.home / "cloud" / "blob-url.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes() != (fabric.home / "cloud" / "token-signing.key").read_bytes()
    hidden = key_file.with_name("blob-url.key.away")
    key_file.rename(hidden)
    try:
        assert "no blob storage" in refused(put(fabric, made["url"], b"%PDF"), 404, "NOT_FOUND")
    finally:
        hidden.rename(key_file)
    assert put(fabric, made["url"], pdf()).status_code == 200


# IPP with an access token -------------------------------------------------------------------------


async def test_ipp_print_job_with_a_bearer_token(
    aapi: httpx.AsyncClient, session: dict[str, Any], fabric: Fabric
) -> None:
    title = f"bearer-{os.urandom(3).hex()}"
    token = session["access_token"]
    reply = await ipp(fabric, Operation.PRINT_JOB, token=token, document=pdf(), title=title)
    number, state = ipp_job(reply)
    assert state == JobState.PENDING_HELD
    job = (await aapi.get(f"/jobs/{number}", headers=bearer(session))).json()["job"]
    assert job["title"] == title and job["origin"].startswith("IPP")
    # The gateway knows whose token it is: my-jobs lists the user's own jobs.
    uri = fabric.uri("secure", auth=False)
    request = new_request(Operation.GET_JOBS, uri)
    request.operation_attributes.add(Attribute.boolean("my-jobs", True))
    async with IppClient(uri, bearer_token=token, ssl_context=fabric.ssl_context()) as client:
        listed = await client.request(request)
    assert number in [g["job-id"].value for g in listed.groups_of(Tag.JOB)]


async def test_ipp_with_a_refused_bearer_token_is_401(
    aapi: httpx.AsyncClient, session: dict[str, Any], fabric: Fabric
) -> None:
    for token in ("garbage", session["access_token"] + "x"):
        with pytest.raises(IppHttpError) as refusal:
            await ipp(fabric, Operation.PRINT_JOB, token=token, document=pdf())
        assert refusal.value.status_code == 401
    # A good token, but for another tenant than the printer's.
    with pytest.raises(IppHttpError) as elsewhere:
        token = session["access_token"]
        await ipp(fabric, Operation.GET_JOBS, token=token, prefix="/t/OTHER")
    assert elsewhere.value.status_code == 401
    # A refused token is challenged as a token, a missing login as Basic.
    uri = fabric.uri("secure", auth=False)
    url = f"https://127.0.0.1:{fabric.gateway_port}/ipp/print/secure"
    body = encode(new_request(Operation.GET_JOBS, uri))
    async with httpx.AsyncClient(verify=fabric.ssl_context()) as client:
        for authorization, scheme in (("Bearer garbage", "Bearer"), (None, "Basic")):
            headers = {"Content-Type": "application/ipp"}
            if authorization:
                headers["Authorization"] = authorization
            reply = await client.post(url, content=body, headers=headers)
            assert reply.status_code == 401
            assert reply.headers["www-authenticate"].startswith(scheme)
    # A token whose session ended is refused too (once the cache has let it go, or at once
    # by the cloud for any call that carries it).
    await aapi.post("/logout", json={"refresh_token": session["refresh_token"]})
    with pytest.raises(IppHttpError) as ended:
        await ipp(fabric, Operation.PRINT_JOB, token=session["access_token"], document=pdf())
    assert ended.value.status_code == 401


async def test_an_idempotency_key_makes_a_resent_job_the_first_one(
    aapi: httpx.AsyncClient, session: dict[str, Any], fabric: Fabric
) -> None:
    title = f"resent-{os.urandom(3).hex()}"
    token = session["access_token"]
    key = {"Idempotency-Key": f"ws-42/{os.urandom(8).hex()}"}
    # Big enough that the cloud answers the resend before the gateway has sent it all.
    document = pdf() + os.urandom(1_500_000)
    answers = [
        ipp_job(
            await ipp(
                fabric,
                Operation.PRINT_JOB,
                token=token,
                document=document,
                title=title,
                headers=key,
            )
        )
        for _ in range(3)
    ]
    assert answers[0][0] == answers[1][0] == answers[2][0]
    listed = await aapi.get("/jobs", headers=bearer(session), params={"page_size": 500})
    jobs = [j for j in listed.json()["jobs"] if j["title"] == title]
    assert [j["number"] for j in jobs] == [answers[0][0]]
    assert jobs[0]["sha256"] == hashlib.sha256(document).hexdigest()
    # Basic auth and Create-Job too; a key longer than the spool's request ids works as well.
    long_key = {"Idempotency-Key": "k" * 128}
    created = []
    for _ in range(2):
        uri = fabric.uri("secure", auth=False)
        request = new_request(Operation.CREATE_JOB, uri)
        async with IppClient(
            uri, username=fabric.login, password=fabric.password, ssl_context=fabric.ssl_context()
        ) as client:
            created.append(ipp_job(await client.request(request, headers=long_key))[0])
    assert created[0] == created[1] != answers[0][0]
    other = await ipp(fabric, Operation.PRINT_JOB, token=token, document=pdf(), title=title)
    assert ipp_job(other)[0] != answers[0][0]


async def test_a_bad_idempotency_key_is_a_bad_request(
    session: dict[str, Any], fabric: Fabric
) -> None:
    for value in ("k" * 129, "", "tab\there"):
        reply = await ipp(
            fabric,
            Operation.PRINT_JOB,
            token=session["access_token"],
            document=pdf(),
            headers={"Idempotency-Key": value},
        )
        assert reply.code == Status.CLIENT_ERROR_BAD_REQUEST, (value, reply)


def test_the_gateway_log_has_no_stack_trace(fabric: Fabric) -> None:
    assert "Traceback" not in fabric.gateway_log()


# Settings ----------------------------------------------------------------------------------------


def test_blob_settings_default_to_the_clouds_folder_and_url_key(tmp_path: Path) -> None:
    env = {"PF_HOME": str(tmp_path)}
    gateway, cloud = GatewayConfig.from_env(env), CloudConfig.from_env(env)
    assert gateway.blob_dir == cloud.blob_dir
    assert gateway.blob_key_path == cloud.blob_url_key_file != cloud.secret_file
    elsewhere = GatewayConfig.from_env(
        {**env, "PF_GATEWAY_BLOB_DIR": str(tmp_path / "b"), "PF_GATEWAY_BLOB_KEY": "k.key"}
    )
    assert elsewhere.blob_dir == (tmp_path / "b").resolve()
    assert elsewhere.blob_key_path == Path("k.key").resolve()
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    with pytest.raises(ConfigError, match="PF_GATEWAY_BLOB_DIR"):
        GatewayConfig.from_env({**env, "PF_GATEWAY_BLOB_DIR": str(a_file)})
    with pytest.raises(ConfigError, match="PF_GATEWAY_BLOB_KEY"):
        GatewayConfig.from_env({**env, "PF_GATEWAY_BLOB_KEY": str(tmp_path)})


def test_a_blob_url_key_that_is_there_but_unusable_stops_the_gateway(tmp_path: Path) -> None:
    folder = BlobFolder(tmp_path, tmp_path / "blob-url.key")
    folder.check()  # no key: the gateway serves no blob storage, and says so per request
    assert folder.url_key() is None
    (tmp_path / "blob-url.key").write_bytes(b"short")
    with pytest.raises(BlobKeyError, match="shorter than 32 bytes"):
        folder.check()


def test_at_start_the_gateway_removes_puts_a_dead_gateway_left(tmp_path: Path) -> None:
    staging = tmp_path / STAGING_DIR
    staging.mkdir()
    dead, live = staging / "gateway-put-dead", staging / "gateway-put-live"
    for leftover in (dead, live):
        leftover.write_bytes(b"half a document")
    os.utime(dead, (time.time() - 3600, time.time() - 3600))
    cloud_file = staging / "upload-of-the-cloud"
    cloud_file.write_bytes(b"not ours")
    os.utime(cloud_file, (time.time() - 3600, time.time() - 3600))
    BlobFolder(tmp_path, tmp_path / "blob-url.key").check()
    assert sorted(p.name for p in staging.iterdir()) == ["gateway-put-live", "upload-of-the-cloud"]
