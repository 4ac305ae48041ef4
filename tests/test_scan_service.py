"""ScanService: a device streams a scan for a user; the whole document or nothing is stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from printfabric.v1 import auth_pb2, device_pb2, scan_pb2, scan_pb2_grpc
from sqlalchemy import func, select

from cloud.db.models import Scan
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.enums import AccessRight
from tests.support.fabric import CloudHarness, Stubs, TenantHandle, cloud_harness

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 900 + b"\n%%EOF\n"


def scans(stubs: Stubs) -> scan_pb2_grpc.ScanServiceStub:
    return scan_pb2_grpc.ScanServiceStub(stubs.channel)


def header(login: str = "bob", size: int = len(DOCUMENT), **kw: Any) -> scan_pb2.ScanHeader:
    fields: dict[str, Any] = {
        "file_name": "C:\\scans\\contract.pdf",
        "mime_type": "application/pdf",
        "page_count": 2,
        "metadata": {"resolution": "300", "duplex": "yes"},
    }
    fields.update(kw)
    return scan_pb2.ScanHeader(user_login=login, size=size, **fields)


async def messages(
    head: scan_pb2.ScanHeader, data: bytes = DOCUMENT, chunk: int = 64 << 10
) -> AsyncIterator[scan_pb2.UploadScanRequest]:
    yield scan_pb2.UploadScanRequest(header=head)
    for start in range(0, len(data), chunk):
        yield scan_pb2.UploadScanRequest(chunk=data[start : start + chunk])


async def upload(stubs: Stubs, head: scan_pb2.ScanHeader, data: bytes = DOCUMENT) -> scan_pb2.Scan:
    reply: scan_pb2.UploadScanResponse = await scans(stubs).UploadScan(messages(head, data))
    return reply.scan


async def refused(stubs: Stubs, head: scan_pb2.ScanHeader, data: bytes = DOCUMENT) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upload(stubs, head, data)
    return err.value


def reason(err: grpc.aio.AioRpcError) -> str:
    return next((str(v) for k, v in err.trailing_metadata() or () if k == "pf-error-reason"), "")


async def mfp_stubs(cloud: CloudHarness, t: TenantHandle, serial: str = "MFP-1") -> Stubs:
    created = await t.admin.device.CreateDevice(
        device_pb2.CreateDeviceRequest(device=device_pb2.Device(serial_number=serial))
    )
    login = await (await cloud.stubs()).auth.AuthenticateDevice(
        auth_pb2.AuthenticateDeviceRequest(
            company_code=t.company_code,
            serial_number=serial,
            access_token=created.access_token,
            kind=auth_pb2.DEVICE_KIND_MFP,
        )
    )
    return await cloud.stubs(login.tokens.access_token)


async def add_user(
    cloud: CloudHarness, t: TenantHandle, login: str, email: str = "", **kw: Any
) -> Stubs:
    await Directory(cloud.rt).create(
        None,
        t.tenant_id,
        NewUser(UserFields(login=login, email=email, **kw), password="secret-pw"),
    )
    return await cloud.login(t.company_code, login, "secret-pw")


async def rows(cloud: CloudHarness, tenant_id: str) -> int:
    async with cloud.rt.db.reader() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(Scan).where(Scan.tenant_id == tenant_id)
                )
            ).scalar_one()
        )


def blob_files(cloud: CloudHarness) -> list[Path]:
    """Every file in the blob folder, staging included."""
    return sorted(p for p in cloud.running.config.blob_dir.rglob("*") if p.is_file())


async def test_a_device_uploads_a_scan_for_a_user_who_sees_only_their_own(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    bob = await add_user(cloud, t, "bob", email="bob@acme.example")
    carol = await add_user(cloud, t, "carol")
    mfp = await mfp_stubs(cloud, t)
    scan = await upload(mfp, header("BOB", request_id="scan-1", destination_id="email-me"))
    assert scan.state == scan_pb2.SCAN_STATE_RECEIVED
    assert scan.size_bytes == len(DOCUMENT) and scan.sha256 == hashlib.sha256(DOCUMENT).hexdigest()
    assert scan.header.user_login == "bob" and scan.header.file_name == "contract.pdf"
    assert dict(scan.header.metadata) == {"resolution": "300", "duplex": "yes"}
    assert scan.device_id
    # What is stored is the document, byte for byte.
    (stored,) = [p for p in blob_files(cloud) if "staging" not in p.parts]
    assert stored.read_bytes() == DOCUMENT
    # A device retrying the same upload gets the same scan, stored once.
    again = await upload(mfp, header("bob", request_id="scan-1", destination_id="email-me"))
    assert again.scan_id == scan.scan_id and await rows(cloud, t.tenant_id) == 1
    # A user uploads for themselves.
    own = await upload(carol, header("", size=14, page_count=1), b"%PDF-1.4 carol")
    assert own.header.user_login == "carol" and not own.device_id

    got = await scans(bob).GetScan(scan_pb2.GetScanRequest(scan_id=scan.scan_id))
    assert got.scan == scan
    mine = await scans(bob).ListScans(scan_pb2.ListScansRequest())
    assert [s.scan_id for s in mine.scans] == [scan.scan_id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scans(carol).GetScan(scan_pb2.GetScanRequest(scan_id=scan.scan_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for who in (t.admin, mfp):
        listed = await scans(who).ListScans(scan_pb2.ListScansRequest())
        assert [s.scan_id for s in listed.scans] == [own.scan_id, scan.scan_id]


@pytest.mark.parametrize("declared", [len(DOCUMENT) - 1, len(DOCUMENT) + 1])
async def test_a_description_that_lies_about_the_size_stores_nothing(
    cloud: CloudHarness, declared: int
) -> None:
    t = await cloud.make_tenant("ACME")
    await add_user(cloud, t, "bob")
    mfp = await mfp_stubs(cloud, t)
    err = await refused(mfp, header(size=declared))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(err) == "SIZE_MISMATCH"
    assert f"declares {declared} bytes" in err.details()
    assert await rows(cloud, t.tenant_id) == 0
    assert blob_files(cloud) == []


async def test_a_cut_upload_stores_nothing(sqlite_cloud: CloudHarness) -> None:
    cloud = sqlite_cloud
    t = await cloud.make_tenant("ACME")
    await add_user(cloud, t, "bob")
    mfp = await mfp_stubs(cloud, t)
    call = scans(mfp).UploadScan()
    await call.write(scan_pb2.UploadScanRequest(header=header(size=len(DOCUMENT))))
    await call.write(scan_pb2.UploadScanRequest(chunk=DOCUMENT[:1000]))
    staging = cloud.rt.blobs.staging_dir

    async def until(done: Any) -> None:
        for _ in range(200):
            if done():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("timed out")

    # The cloud is receiving (its staging file exists) when the device goes away.
    await until(lambda: any(staging.glob("*.part")))
    call.cancel()
    await until(lambda: not any(staging.glob("*.part")))
    assert await rows(cloud, t.tenant_id) == 0 and blob_files(cloud) == []
    # A stream that just ends early (how a cancelled one can look) is refused the same way.
    err = await refused(mfp, header(), DOCUMENT[:1000])
    assert reason(err) == "SIZE_MISMATCH" and "1000 arrived" in err.details()
    assert await rows(cloud, t.tenant_id) == 0 and blob_files(cloud) == []


async def test_bad_headers_and_callers_are_refused(tmp_path: Path) -> None:
    async with cloud_harness(tmp_path / "home", max_job_bytes=len(DOCUMENT)) as cloud:
        t = await cloud.make_tenant("ACME")
        await add_user(cloud, t, "bob")
        await add_user(cloud, t, "noscan", rights=frozenset({AccessRight.PRINT}))
        carol = await add_user(cloud, t, "carol")
        mfp = await mfp_stubs(cloud, t)
        cases: Iterable[tuple[Stubs, scan_pb2.ScanHeader, grpc.StatusCode, str]] = [
            (mfp, header(size=0), grpc.StatusCode.INVALID_ARGUMENT, "NO_SIZE"),
            (mfp, header(size=len(DOCUMENT) + 1), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
            (mfp, header("nobody"), grpc.StatusCode.NOT_FOUND, "UNKNOWN_USER"),
            (mfp, header(""), grpc.StatusCode.INVALID_ARGUMENT, ""),
            (mfp, header("noscan"), grpc.StatusCode.PERMISSION_DENIED, "NO_SCAN_RIGHT"),
            (mfp, header(mime_type="pdf"), grpc.StatusCode.INVALID_ARGUMENT, ""),
            (mfp, header(destination_id="nowhere"), grpc.StatusCode.INVALID_ARGUMENT, ""),
            # bob has no email address, so no "Email to me".
            (mfp, header(destination_id="email-me"), grpc.StatusCode.INVALID_ARGUMENT, ""),
            (carol, header("bob"), grpc.StatusCode.PERMISSION_DENIED, ""),
        ]
        for who, head, code, why in cases:
            err = await refused(who, head)
            assert err.code() == code, (head, err.details())
            assert not why or reason(err) == why, (head, reason(err))
        assert await rows(cloud, t.tenant_id) == 0 and blob_files(cloud) == []


async def test_tenants_are_walled_off(cloud: CloudHarness) -> None:
    a = await cloud.make_tenant("ACME")
    b = await cloud.make_tenant("GLOBEX")
    await add_user(cloud, a, "bob")
    scan = await upload(await mfp_stubs(cloud, a), header())
    mfp_b = await mfp_stubs(cloud, b, "MFP-B")
    err = await refused(mfp_b, header("bob"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    for who in (mfp_b, b.admin):
        with pytest.raises(grpc.aio.AioRpcError) as got:
            await scans(who).GetScan(scan_pb2.GetScanRequest(scan_id=scan.scan_id))
        assert got.value.code() == grpc.StatusCode.NOT_FOUND
        assert not (await scans(who).ListScans(scan_pb2.ListScansRequest())).scans
    assert await rows(cloud, b.tenant_id) == 0


async def test_destinations_are_email_to_me_and_the_tenants_own(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    bob = await add_user(cloud, t, "bob", email="bob@acme.example")
    await add_user(cloud, t, "carol")
    mfp = await mfp_stubs(cloud, t)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await scans(bob).CreateScanDestination(
            scan_pb2.CreateScanDestinationRequest(
                destination=scan_pb2.ScanDestination(
                    display_name="x", kind=scan_pb2.SCAN_DESTINATION_KIND_EMAIL, target="x@y"
                )
            )
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    made = await scans(t.admin).CreateScanDestination(
        scan_pb2.CreateScanDestinationRequest(
            destination=scan_pb2.ScanDestination(
                display_name="Accounts payable",
                kind=scan_pb2.SCAN_DESTINATION_KIND_EMAIL,
                target="ap@acme.example",
            )
        )
    )
    tenant_wide = made.destination
    assert tenant_wide.destination_id and tenant_wide.format == "application/pdf"

    async def names(who: Stubs, login: str) -> list[tuple[str, str]]:
        reply = await scans(who).ListScanDestinations(
            scan_pb2.ListScanDestinationsRequest(user_login=login)
        )
        return [(d.display_name, d.target) for d in reply.destinations]

    both = [("Email to me", "bob@acme.example"), ("Accounts payable", "ap@acme.example")]
    assert await names(mfp, "bob") == both
    assert await names(bob, "") == both
    assert await names(mfp, "carol") == [("Accounts payable", "ap@acme.example")]
    scan = await upload(mfp, header(destination_id=tenant_wide.destination_id))
    assert scan.header.destination_id == tenant_wide.destination_id
    await scans(t.admin).DeleteScanDestination(
        scan_pb2.DeleteScanDestinationRequest(destination_id=tenant_wide.destination_id)
    )
    assert await names(mfp, "carol") == []
    other = await cloud.make_tenant("GLOBEX")
    assert await names(await mfp_stubs(cloud, other, "MFP-G"), "admin") == []
