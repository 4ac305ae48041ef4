"""DeviceService: printers (queues), MFP devices, sync agents, nodes."""

from __future__ import annotations

from typing import Any

import grpc
from printfabric.v1 import device_pb2, device_pb2_grpc

from cloud.api import convert
from cloud.api.interceptor import caller
from cloud.domain.devices import DeviceFields, Devices
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]
_PRINTER_UPDATABLE = {
    "display_name",
    "location",
    "model",
    "device_uri",
    "node_id",
    "formats",
    "color",
    "duplex",
}


class DeviceServicer(device_pb2_grpc.DeviceServiceServicer):
    def __init__(self, devices: Devices) -> None:
        self.devices = devices

    async def CreatePrinter(
        self, request: device_pb2.CreatePrinterRequest, context: Ctx
    ) -> device_pb2.CreatePrinterResponse:
        created = await self.devices.create_printer(
            caller(), "", convert.printer_fields(request.printer, None)
        )
        return device_pb2.CreatePrinterResponse(printer=convert.printer(created))

    async def GetPrinter(
        self, request: device_pb2.GetPrinterRequest, context: Ctx
    ) -> device_pb2.GetPrinterResponse:
        if not request.printer_id and not request.name:
            raise InvalidArgument("give printer_id or name")
        found = await self.devices.get_printer(caller(), request.printer_id, request.name)
        return device_pb2.GetPrinterResponse(printer=convert.printer(found))

    async def ListPrinters(
        self, request: device_pb2.ListPrintersRequest, context: Ctx
    ) -> device_pb2.ListPrintersResponse:
        rows, token = await self.devices.list_printers(
            caller(), request.page_size, request.page_token
        )
        return device_pb2.ListPrintersResponse(
            printers=[convert.printer(p) for p in rows], next_page_token=token
        )

    async def UpdatePrinter(
        self, request: device_pb2.UpdatePrinterRequest, context: Ctx
    ) -> device_pb2.UpdatePrinterResponse:
        paths = set(request.update_mask.paths)
        if not paths or paths - _PRINTER_UPDATABLE:
            raise InvalidArgument(
                f"update_mask must name some of {', '.join(sorted(_PRINTER_UPDATABLE))}"
            )
        updated = await self.devices.update_printer(
            caller(), request.printer.printer_id, convert.printer_fields(request.printer, paths)
        )
        return device_pb2.UpdatePrinterResponse(printer=convert.printer(updated))

    async def DeletePrinter(
        self, request: device_pb2.DeletePrinterRequest, context: Ctx
    ) -> device_pb2.DeletePrinterResponse:
        await self.devices.delete_printer(caller(), request.printer_id)
        return device_pb2.DeletePrinterResponse()

    async def ListUserPrinters(
        self, request: device_pb2.ListUserPrintersRequest, context: Ctx
    ) -> device_pb2.ListUserPrintersResponse:
        rows = await self.devices.user_printers(caller())
        return device_pb2.ListUserPrintersResponse(
            printers=[
                device_pb2.UserPrinter(printer=convert.printer(p), submit_uris=uris)
                for p, uris in rows
            ]
        )

    async def DescribePrinter(
        self, request: device_pb2.DescribePrinterRequest, context: Ctx
    ) -> device_pb2.DescribePrinterResponse:
        printer, queued = await self.devices.describe_printer(request.company_code, request.name)
        return device_pb2.DescribePrinterResponse(
            printer=convert.public_printer(printer), queued_job_count=queued
        )

    async def CreateDevice(
        self, request: device_pb2.CreateDeviceRequest, context: Ctx
    ) -> device_pb2.CreateDeviceResponse:
        d = request.device
        fields = DeviceFields(
            kind=convert.device_kind(d.kind or 1),
            serial_number=d.serial_number,
            display_name=d.display_name,
            location=d.location,
            printer_id=d.printer_id,
            node_id=d.node_id,
        )
        created, token = await self.devices.create_device(caller(), "", fields)
        return device_pb2.CreateDeviceResponse(device=convert.device(created), access_token=token)

    async def GetDevice(
        self, request: device_pb2.GetDeviceRequest, context: Ctx
    ) -> device_pb2.GetDeviceResponse:
        return device_pb2.GetDeviceResponse(
            device=convert.device(await self.devices.get_device(caller(), request.device_id))
        )

    async def ListDevices(
        self, request: device_pb2.ListDevicesRequest, context: Ctx
    ) -> device_pb2.ListDevicesResponse:
        rows, token = await self.devices.list_devices(
            caller(), request.page_size, request.page_token
        )
        return device_pb2.ListDevicesResponse(
            devices=[convert.device(d) for d in rows], next_page_token=token
        )

    async def DeleteDevice(
        self, request: device_pb2.DeleteDeviceRequest, context: Ctx
    ) -> device_pb2.DeleteDeviceResponse:
        await self.devices.delete_device(caller(), request.device_id)
        return device_pb2.DeleteDeviceResponse()

    async def RotateDeviceToken(
        self, request: device_pb2.RotateDeviceTokenRequest, context: Ctx
    ) -> device_pb2.RotateDeviceTokenResponse:
        token = await self.devices.rotate_device_token(caller(), request.device_id)
        return device_pb2.RotateDeviceTokenResponse(access_token=token)

    async def GetDeviceConfig(
        self, request: device_pb2.GetDeviceConfigRequest, context: Ctx
    ) -> device_pb2.GetDeviceConfigResponse:
        device, printer, tenant = await self.devices.device_config(caller())
        return device_pb2.GetDeviceConfigResponse(
            device=convert.device(device),
            printer=convert.printer(printer) if printer else None,
            tenant_display_name=tenant.display_name,
        )

    async def CreateNode(
        self, request: device_pb2.CreateNodeRequest, context: Ctx
    ) -> device_pb2.CreateNodeResponse:
        n = request.node
        created, token = await self.devices.create_node(
            caller(), "", n.serial_number, n.display_name, n.location
        )
        return device_pb2.CreateNodeResponse(node=convert.node(created), access_token=token)

    async def GetNode(
        self, request: device_pb2.GetNodeRequest, context: Ctx
    ) -> device_pb2.GetNodeResponse:
        found = await self.devices.get_node(caller(), request.node_id)
        online = found.id in await self.devices.online([found.id])
        return device_pb2.GetNodeResponse(node=convert.node(found, online))

    async def ListNodes(
        self, request: device_pb2.ListNodesRequest, context: Ctx
    ) -> device_pb2.ListNodesResponse:
        rows, token = await self.devices.list_nodes(caller(), request.page_size, request.page_token)
        online = await self.devices.online([n.id for n in rows])
        return device_pb2.ListNodesResponse(
            nodes=[convert.node(n, n.id in online) for n in rows], next_page_token=token
        )

    async def DeleteNode(
        self, request: device_pb2.DeleteNodeRequest, context: Ctx
    ) -> device_pb2.DeleteNodeResponse:
        await self.devices.delete_node(caller(), request.node_id)
        return device_pb2.DeleteNodeResponse()

    async def RotateNodeToken(
        self, request: device_pb2.RotateNodeTokenRequest, context: Ctx
    ) -> device_pb2.RotateNodeTokenResponse:
        return device_pb2.RotateNodeTokenResponse(
            access_token=await self.devices.rotate_node_token(caller(), request.node_id)
        )
