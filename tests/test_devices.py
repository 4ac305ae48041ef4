"""Printers (queues), MFP devices and nodes, and the printer list a workstation sees."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.v1 import common_pb2, device_pb2

from tests.support.fabric import CloudHarness


async def test_admin_creates_queues_and_users_see_them_with_an_ipps_uri(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    node = (
        await t.admin.device.CreateNode(
            device_pb2.CreateNodeRequest(
                node=device_pb2.Node(serial_number="N-7", display_name="Prague")
            )
        )
    ).node
    created = await t.admin.device.CreatePrinter(
        device_pb2.CreatePrinterRequest(
            printer=device_pb2.Printer(
                name="Floor2",
                location="2nd floor",
                model=device_pb2.QUEUE_MODEL_DIRECT,
                device_uri="lpd://10.0.0.5/raw",
                node_id=node.node_id,
                formats=[common_pb2.DOCUMENT_FORMAT_PDF, common_pb2.DOCUMENT_FORMAT_POSTSCRIPT],
                color=False,
            )
        )
    )
    p = created.printer
    assert (p.name, p.model, p.node_id, p.color) == (
        "floor2",
        device_pb2.QUEUE_MODEL_DIRECT,
        node.node_id,
        False,
    )
    updated = await t.admin.device.UpdatePrinter(
        device_pb2.UpdatePrinterRequest(
            printer=device_pb2.Printer(printer_id=p.printer_id, location="3rd floor", color=True),
            update_mask=FieldMask(paths=["location", "color"]),
        )
    )
    assert (
        updated.printer.location == "3rd floor"
        and updated.printer.color
        and updated.printer.device_uri == "lpd://10.0.0.5/raw"
    )
    alice = await cloud.add_user(t, "alice")
    listed = await alice.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
    uris = {e.printer.name: list(e.submit_uris) for e in listed.printers}
    assert uris["floor2"] == [f"ipps://localhost:8443/t/{t.company_code}/ipp/print/floor2"]
    assert set(uris) == {"floor2", "secure"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await alice.device.CreatePrinter(
            device_pb2.CreatePrinterRequest(printer=device_pb2.Printer(name="mine"))
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("printer", "needle"),
    [
        (device_pb2.Printer(name="Bad Name"), "queue name"),
        (device_pb2.Printer(name="ok", device_uri="http://x/y"), "scheme"),
        (device_pb2.Printer(name="ok", device_uri="lpd:///q"), "host"),
        (device_pb2.Printer(name="secure"), "exists"),
        (device_pb2.Printer(name="ok", node_id="deadbeef"), "not found"),
    ],
)
async def test_bad_printers_are_refused_clearly(
    cloud: CloudHarness, printer: device_pb2.Printer, needle: str
) -> None:
    t = await cloud.make_tenant("ACME")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.device.CreatePrinter(device_pb2.CreatePrinterRequest(printer=printer))
    assert needle in (err.value.details() or "")


async def test_devices_list_and_page(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    for i in range(3):
        await t.admin.device.CreateDevice(
            device_pb2.CreateDeviceRequest(device=device_pb2.Device(serial_number=f"MFP-{i}"))
        )
    first = await t.admin.device.ListDevices(device_pb2.ListDevicesRequest(page_size=2))
    second = await t.admin.device.ListDevices(
        device_pb2.ListDevicesRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [d.serial_number for d in first.devices] + [d.serial_number for d in second.devices] == [
        "MFP-0",
        "MFP-1",
        "MFP-2",
    ]
    assert second.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await t.admin.device.CreateDevice(
            device_pb2.CreateDeviceRequest(device=device_pb2.Device(serial_number="MFP-0"))
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
