"""Printers (queues), MFP devices and nodes, and the printer list a workstation sees (IPPS to the
gateway, LPR to the queue's node where it announced its LPD server)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from printfabric.v1 import common_pb2, device_pb2
from sqlalchemy import event, update

from cloud.db.models import Printer
from cloud.domain import replication
from cloud.domain.devices import Devices
from cloud.domain.enums import PrincipalKind
from cloud.domain.principal import Principal
from tests.support.fabric import CloudHarness, TenantHandle


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


async def _node_announcing(cloud: CloudHarness, t: TenantHandle, serial: str, lpd_uri: str) -> str:
    """A node of t that said in its hello where its LPD server is (what the link records)."""
    node, _ = await Devices(cloud.rt).create_node(None, t.tenant_id, serial, serial, "")
    await replication.record_node_state(cloud.rt, node.id, None, "test", lpd_uri=lpd_uri)
    return node.id


async def _queue(t: TenantHandle, name: str, node_id: str = "") -> None:
    await t.admin.device.CreatePrinter(
        device_pb2.CreatePrinterRequest(
            printer=device_pb2.Printer(name=name, device_uri="lpd://10.0.0.5/raw", node_id=node_id)
        )
    )


async def test_a_queue_behind_a_node_that_announced_its_lpd_lists_lpr_after_ipps(
    cloud: CloudHarness,
) -> None:
    acme, other = await cloud.make_tenant("ACME"), await cloud.make_tenant("OTHER")
    prague = await _node_announcing(cloud, acme, "N-PRG", "lpr://prague-node.acme.lan:5515")
    quiet = await _node_announcing(cloud, acme, "N-BRN", "")
    await _queue(acme, "floor2", prague)
    await _queue(acme, "brno", quiet)
    # The other tenant's node announces too, and has a queue of the same name behind it.
    theirs = await _node_announcing(cloud, other, "N-PRG", "lpr://their-node.lan")
    await _queue(other, "floor2", theirs)

    alice = await cloud.add_user(acme, "alice")
    listed = await alice.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
    uris = {e.printer.name: list(e.submit_uris) for e in listed.printers}
    ipps = f"ipps://localhost:8443/t/{acme.company_code}/ipp/print"
    assert uris == {
        "brno": [f"{ipps}/brno"],
        "floor2": [f"{ipps}/floor2", "lpr://prague-node.acme.lan:5515/floor2"],
        "secure": [f"{ipps}/secure"],
    }
    node = (await acme.admin.device.GetNode(device_pb2.GetNodeRequest(node_id=prague))).node
    assert node.lpd_uri == "lpr://prague-node.acme.lan:5515"

    bob = await cloud.add_user(other, "bob")
    theirs_listed = await bob.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
    assert {e.printer.name: list(e.submit_uris)[1:] for e in theirs_listed.printers} == {
        "floor2": ["lpr://their-node.lan/floor2"],
        "secure": [],
    }


async def test_another_tenants_node_never_lends_its_lpd_address(cloud: CloudHarness) -> None:
    acme, other = await cloud.make_tenant("ACME"), await cloud.make_tenant("OTHER")
    theirs = await _node_announcing(cloud, other, "N-1", "lpr://their-node.lan")
    await _queue(acme, "lobby")
    # The API refuses another tenant's node; a row that names one anyway (a bug, a hand edit)
    # must still not hand tenant A's users tenant B's address.
    async with cloud.rt.db.session() as session, session.begin():
        await session.execute(
            update(Printer)
            .where(Printer.tenant_id == acme.tenant_id, Printer.name == "lobby")
            .values(node_id=theirs)
        )
    alice = await cloud.add_user(acme, "alice")
    listed = await alice.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
    assert all(not uri.startswith("lpr://") for e in listed.printers for uri in e.submit_uris), (
        listed
    )


async def test_a_revoked_node_is_no_longer_offered_for_lpr(cloud: CloudHarness) -> None:
    t = await cloud.make_tenant("ACME")
    node_id = await _node_announcing(cloud, t, "N-1", "lpr://node.lan")
    await _queue(t, "floor2", node_id)
    await t.admin.device.DeleteNode(device_pb2.DeleteNodeRequest(node_id=node_id))
    alice = await cloud.add_user(t, "alice")
    listed = await alice.device.ListUserPrinters(device_pb2.ListUserPrintersRequest())
    assert [list(e.submit_uris)[1:] for e in listed.printers] == [[], []]


async def test_the_printer_list_costs_the_same_queries_for_one_queue_or_many(
    cloud: CloudHarness,
) -> None:
    t = await cloud.make_tenant("ACME")
    principal = Principal(PrincipalKind.USER, t.tenant_id, "alice", "s")
    engine = cloud.rt.db.reader.kw["bind"].sync_engine
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    async def queries() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            await Devices(cloud.rt).user_printers(principal)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    one = await queries()
    assert one > 0, "the listener sees the reader's statements"
    for i in range(5):
        node_id = await _node_announcing(cloud, t, f"N-{i}", f"lpr://node-{i}.lan")
        await _queue(t, f"q{i}", node_id)
    assert await queries() == one, statements
