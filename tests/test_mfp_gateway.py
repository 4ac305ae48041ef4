"""The MFP API on the gateway of `make run`: device and user log-in, held jobs, release,
download, deletion, scans, accounting and bad input, over HTTPS against the real fabric."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from tests.support.gateway import Fabric, running_fabric


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    with running_fabric(tmp_path_factory.mktemp("mfp")) as running:
        yield running


def base(fabric: Fabric) -> str:
    return f"https://127.0.0.1:{fabric.gateway_port}/mfp/v1"


@pytest.fixture
async def http(fabric: Fabric) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base(fabric), verify=fabric.ssl_context()) as client:
        yield client


def pdf(marker: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": marker})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def device_headers(http: httpx.AsyncClient, fabric: Fabric) -> dict[str, str]:
    reply = await http.post(
        "/device/session",
        json={
            "company_code": fabric.creds["company_code"],
            "serial_number": fabric.creds["mfp_serial"],
            "access_token": fabric.creds["mfp_access_token"],
        },
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['device_token']}"}


async def user_headers(
    http: httpx.AsyncClient, fabric: Fabric, device: dict[str, str]
) -> dict[str, str]:
    reply = await http.post(
        "/users/authenticate", json={"method": "card", "card": fabric.creds["card"]}, headers=device
    )
    assert reply.status_code == 200, reply.text
    return {**device, "X-User-Token": reply.json()["user_token"]}


def error_of(reply: httpx.Response) -> dict[str, Any]:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"], body
    return dict(body["error"])


async def test_device_session_and_config(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    config = await http.get("/device/config", headers=device)
    assert config.status_code == 200, config.text
    body = config.json()
    assert body["tenant_display_name"] == "Demo Company"
    assert body["printer"]["name"] == "office"


async def test_device_with_a_wrong_token_is_refused(
    http: httpx.AsyncClient, fabric: Fabric
) -> None:
    reply = await http.post(
        "/device/session",
        json={
            "company_code": fabric.creds["company_code"],
            "serial_number": fabric.creds["mfp_serial"],
            "access_token": "not-the-token",
        },
    )
    assert reply.status_code == 401
    error_of(reply)
    forged = await http.get("/device/config", headers={"Authorization": "Bearer pfd1.x.y.z"})
    assert forged.status_code == 401
    error_of(forged)
    missing = await http.get("/device/config")
    assert missing.status_code == 401
    assert error_of(missing)["code"] == "NO_DEVICE_SESSION"


@pytest.mark.parametrize("method", ["card", "pin", "password"])
async def test_user_log_in_by_each_method(
    http: httpx.AsyncClient, fabric: Fabric, method: str
) -> None:
    device = await device_headers(http, fabric)
    body: dict[str, str] = {"method": method}
    if method == "card":
        body["card"] = fabric.creds["card"]
    elif method == "pin":
        body["pin"] = fabric.creds["pin"]
    else:
        body.update(login=fabric.login, password=fabric.password)
    reply = await http.post("/users/authenticate", json=body, headers=device)
    assert reply.status_code == 200, reply.text
    user = reply.json()["user"]
    assert user["login"] == "demo"
    assert user["email"] == "demo@example.com"
    assert {"print", "copy", "scan", "color"} <= set(user["rights"])


async def test_a_wrong_password_is_a_401_with_json(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    reply = await http.post(
        "/users/authenticate",
        json={"method": "password", "login": "nobody-here", "password": "x"},
        headers=device,
    )
    assert reply.status_code == 401
    error_of(reply)


async def test_held_job_listed_downloaded_released_and_printed(
    http: httpx.AsyncClient, fabric: Fabric
) -> None:
    document = pdf(f"release-{uuid.uuid4()}")
    number = await fabric.print_job(document, "Quarterly report")
    user = await user_headers(http, fabric, await device_headers(http, fabric))

    listed = await http.get("/jobs", headers=user)
    assert listed.status_code == 200, listed.text
    [job] = [j for j in listed.json()["jobs"] if j["number"] == number]
    assert job["state"] == "held" and job["title"] == "Quarterly report"
    assert job["size"] == len(document) and job["format"] == "application/pdf"

    download = await http.get(f"/jobs/{job['job_id']}/document", headers=user)
    assert download.status_code == 200
    assert download.content == document
    assert download.headers["content-type"] == "application/pdf"

    released = await http.post("/jobs/release", json={"job_ids": [job["job_id"]]}, headers=user)
    assert released.status_code == 200, released.text
    assert [j["state"] for j in released.json()["jobs"]] == ["released"]
    # The demo MFP prints on "office", behind the demo node, which writes into printed/.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.read_bytes() == document for p in fabric.printed.iterdir() if p.is_file()):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"job {number} never reached {fabric.printed}")
    again = await http.get("/jobs", headers=user)
    assert number not in [j["number"] for j in again.json()["jobs"]]


async def test_delete_a_held_job(http: httpx.AsyncClient, fabric: Fabric) -> None:
    number = await fabric.print_job(pdf(f"delete-{uuid.uuid4()}"), "To delete")
    user = await user_headers(http, fabric, await device_headers(http, fabric))
    [job] = [
        j for j in (await http.get("/jobs", headers=user)).json()["jobs"] if j["number"] == number
    ]
    deleted = await http.delete(f"/jobs/{job['job_id']}", headers=user)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["state"] == "canceled"
    twice = await http.delete(f"/jobs/{job['job_id']}", headers=user)
    assert twice.status_code == 409
    error_of(twice)
    unknown = await http.delete("/jobs/no-such-job", headers=user)
    assert unknown.status_code == 404
    error_of(unknown)


async def test_release_needs_a_user_session(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    missing = await http.post("/jobs/release", json={"all": True}, headers=device)
    assert missing.status_code == 401
    assert error_of(missing)["code"] == "NO_USER_SESSION"
    forged = await http.post(
        "/jobs/release", json={"all": True}, headers={**device, "X-User-Token": "e30.AAAA"}
    )
    assert forged.status_code == 401
    assert error_of(forged)["code"] == "USER_SESSION_INVALID"
    user = await user_headers(http, fabric, device)
    nothing = await http.post("/jobs/release", json={}, headers=user)
    assert nothing.status_code == 400
    error_of(nothing)


async def test_bad_input_gets_4xx_with_a_json_body(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    malformed = await http.post(
        "/users/authenticate",
        content=b'{"method": "card", "card": ',
        headers={**device, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    error_of(malformed)
    wrong_type = await http.post(
        "/users/authenticate", json={"method": "card", "card": 12345}, headers=device
    )
    assert wrong_type.status_code == 400
    error_of(wrong_type)
    unknown_method = await http.post(
        "/users/authenticate", json={"method": "retina"}, headers=device
    )
    assert unknown_method.status_code == 400
    huge = await http.post(
        "/users/authenticate",
        content=b'{"method": "card", "card": "' + b"1" * (1 << 20) + b'"}',
        headers={**device, "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    error_of(huge)

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"method": "card", "card": "'
        for _ in range(16):
            yield b"1" * 65536
        yield b'"}'

    huge_chunked = await http.post(
        "/users/authenticate",
        content=chunked(),
        headers={**device, "Content-Type": "application/json"},
    )
    assert huge_chunked.status_code == 413
    assert error_of(huge_chunked)["code"] == "BODY_TOO_LARGE"
    nowhere = await http.get("/no/such/thing", headers=device)
    assert nowhere.status_code == 404
    error_of(nowhere)


async def test_openapi_schema_is_served(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/mfp/v1/device/session",
        "/mfp/v1/users/authenticate",
        "/mfp/v1/users/register-card",
        "/mfp/v1/jobs",
        "/mfp/v1/jobs/release",
        "/mfp/v1/jobs/{job_id}/document",
        "/mfp/v1/scan/profiles",
        "/mfp/v1/scans",
        "/mfp/v1/accounting",
    ):
        assert path in schema["paths"], path


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def simulator(fabric: Fabric, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "client",
        "mfp",
        "--demo",
        str(fabric.home),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_mfp_simulator_walks_the_release(fabric: Fabric) -> None:
    document = pdf(f"simulator-{uuid.uuid4()}")
    number = await fabric.print_job(document, "Simulated")
    code, out, err = await simulator(fabric, "--json", "jobs")
    assert code == 0, err
    [job] = [j for j in json.loads(out) if j["number"] == number]
    code, out, err = await simulator(fabric, "release", job["job_id"])
    assert code == 0, err
    assert "released" in out and f"#{number}" in out
    code, out, err = await simulator(fabric, "release", job["job_id"])
    assert code == 1
    assert "JOB_NOT_HELD" in err
    code, out, err = await simulator(fabric, "--card", "99999999", "jobs")
    assert code == 1 and err.startswith("printfabric mfp: ")


def test_schemathesis_finds_no_server_error(fabric: Fabric) -> None:
    """Generated requests for every operation of the OpenAPI schema, with and without valid
    sessions: each gets an answer below 500, and 4xx answers carry the JSON error body."""
    ssl_context = fabric.ssl_context()
    with httpx.Client(base_url=base(fabric), verify=ssl_context) as client:
        schema_json = client.get("/openapi.json").json()
        device = client.post(
            "/device/session",
            json={
                "company_code": fabric.creds["company_code"],
                "serial_number": fabric.creds["mfp_serial"],
                "access_token": fabric.creds["mfp_access_token"],
            },
        ).json()["device_token"]
        user = client.post(
            "/users/authenticate",
            json={"method": "card", "card": fabric.creds["card"]},
            headers={"Authorization": f"Bearer {device}"},
        ).json()["user_token"]
    sessions = [
        {},
        {"Authorization": f"Bearer {device}"},
        {"Authorization": f"Bearer {device}", "X-User-Token": user},
    ]
    schema = schemathesis.openapi.from_dict(schema_json)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    origin = f"https://127.0.0.1:{fabric.gateway_port}"
    failures: list[str] = []
    with requests.Session() as session:
        session.verify = str(fabric.ca_cert)

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            operation = data.draw(st.sampled_from(operations))
            case = data.draw(operation.as_strategy())
            headers = data.draw(st.sampled_from(sessions))
            reply = case.call(
                base_url=origin,
                session=session,
                headers=headers,
                timeout=30,
                verify=str(fabric.ca_cert),
            )
            where = f"{case.method} {case.formatted_path}"
            if reply.status_code >= 500:
                failures.append(f"{where} -> {reply.status_code}: {reply.text[:300]}")
            elif reply.status_code >= 400:
                body = reply.json()
                if not isinstance(body, dict) or set(body) != {"error"}:
                    failures.append(f"{where} -> {reply.status_code} without a JSON error body")

        check()
    assert not failures, "\n".join(failures[:10])


async def test_unknown_card_offers_self_registration(
    http: httpx.AsyncClient, fabric: Fabric
) -> None:
    device = await device_headers(http, fabric)
    card = f"{uuid.uuid4().int % 10**12:012d}"
    unknown = await http.post(
        "/users/authenticate", json={"method": "card", "card": card}, headers=device
    )
    assert unknown.status_code == 404
    error = error_of(unknown)
    assert error["code"] == "UNKNOWN_CARD" and error["self_registration"] is True
    wrong = await http.post(
        "/users/register-card",
        json={"card": card, "login": fabric.login, "password": "not-it"},
        headers=device,
    )
    assert wrong.status_code == 401
    registered = await http.post(
        "/users/register-card",
        json={"card": card, "login": fabric.login, "password": fabric.password},
        headers=device,
    )
    assert registered.status_code == 200, registered.text
    # Readers deliver the same card in hex too.
    again = await http.post(
        "/users/authenticate", json={"method": "card", "card": hex(int(card))}, headers=device
    )
    assert again.status_code == 200, again.text
    assert again.json()["user"]["login"] == "demo"


async def test_password_guessing_locks_visibly(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    guess = {"method": "password", "login": f"ghost-{uuid.uuid4().hex[:6]}", "password": "x"}
    answers = [await http.post("/users/authenticate", json=guess, headers=device) for _ in range(6)]
    assert [a.status_code for a in answers[:4]] == [401] * 4
    locked = answers[-1]
    assert locked.status_code == 429
    error = error_of(locked)
    assert error["code"] == "TOO_MANY_ATTEMPTS"
    assert int(locked.headers["Retry-After"]) == error["retry_after"] > 0


async def test_accounting_is_stored_once(http: httpx.AsyncClient, fabric: Fabric) -> None:
    device = await device_headers(http, fabric)
    record = {
        "id": f"copy-{uuid.uuid4()}",
        "login": "demo",
        "kind": "copy",
        "document_name": "Copy",
        "pages": 3,
        "sheets": 2,
        "color_pages": 1,
        "mono_pages": 2,
        "duplex": True,
        "paper_size": "iso_a4_210x297mm",
        "occurred_at": _now(),
    }
    first = await http.post("/accounting", json=record, headers=device)
    assert first.status_code == 200, first.text
    again = await http.post("/accounting", json=record, headers=device)
    assert again.status_code == 200
    assert first.json() == {"entry_id": first.json()["entry_id"], "duplicate": False}
    assert again.json() == {"entry_id": first.json()["entry_id"], "duplicate": True}
    negative = await http.post("/accounting", json={**record, "pages": -1}, headers=device)
    assert negative.status_code == 400
    error_of(negative)


async def test_scan_upload_and_a_lying_description(http: httpx.AsyncClient, fabric: Fabric) -> None:
    user = await user_headers(http, fabric, await device_headers(http, fabric))
    profiles = (await http.get("/scan/profiles", headers=user)).json()["destinations"]
    assert profiles[0]["target"] == "demo@example.com"
    document = pdf(f"scan-{uuid.uuid4()}")
    description = {
        "login": "demo",
        "file_name": "scan.pdf",
        "mime_type": "application/pdf",
        "page_count": 1,
        "size": len(document),
        "request_id": str(uuid.uuid4()),
        "destination_id": profiles[0]["destination_id"],
    }

    async def upload(described: dict[str, Any]) -> httpx.Response:
        return await http.post(
            "/scans",
            data={"description": json.dumps(described)},
            files={"document": ("scan.pdf", document, "application/pdf")},
            headers=user,
        )

    stored = await upload(description)
    assert stored.status_code == 200, stored.text
    assert stored.json()["size"] == len(document) and stored.json()["state"] == "received"
    lying = await upload({**description, "size": len(document) + 10, "request_id": "lie-1"})
    assert lying.status_code == 400
    assert error_of(lying)["code"] == "SIZE_MISMATCH"
    not_json = await http.post(
        "/scans",
        data={"description": "{nope"},
        files={"document": ("scan.pdf", document, "application/pdf")},
        headers=user,
    )
    assert not_json.status_code == 400
    assert error_of(not_json)["code"] == "INVALID_DESCRIPTION"
