"""ScanService: streamed scan upload, scans and the destinations a user may pick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from printfabric.v1 import scan_pb2, scan_pb2_grpc

from cloud.api.convert import ts
from cloud.api.interceptor import caller
from cloud.domain.scans import Destination, DestinationKind, ScanInfo, Scans, ScanSubmission
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]


def submission(header: scan_pb2.ScanHeader) -> ScanSubmission:
    return ScanSubmission(
        size=header.size,
        user_login=header.user_login,
        file_name=header.file_name,
        mime_type=header.mime_type,
        page_count=header.page_count,
        metadata=dict(header.metadata),
        request_id=header.request_id,
        destination_id=header.destination_id,
    )


def scan(info: ScanInfo) -> scan_pb2.Scan:
    s = info.scan
    return scan_pb2.Scan(
        scan_id=s.id,
        header=scan_pb2.ScanHeader(
            destination_id=s.destination_id,
            user_login=info.owner_login,
            file_name=s.file_name,
            mime_type=s.mime_type,
            page_count=s.page_count,
            metadata=info.metadata,
            request_id=s.request_id or "",
            size=s.size_bytes,
        ),
        state=s.state,  # type: ignore[arg-type]
        state_message=s.state_message,
        size_bytes=s.size_bytes,
        sha256=s.sha256,
        device_id=s.device_id or "",
        create_time=ts(s.created_at),
    )


def destination(d: Destination) -> scan_pb2.ScanDestination:
    return scan_pb2.ScanDestination(
        destination_id=d.destination_id,
        display_name=d.display_name,
        kind=int(d.kind),  # type: ignore[arg-type]
        target=d.target,
        format=d.format,
    )


def new_destination(msg: scan_pb2.ScanDestination) -> Destination:
    try:
        kind = DestinationKind(msg.kind)
    except ValueError as exc:
        raise InvalidArgument("kind must be email or cloud storage") from exc
    return Destination("", msg.display_name, kind, msg.target, msg.format)


class ScanServicer(scan_pb2_grpc.ScanServiceServicer):
    def __init__(self, scans: Scans) -> None:
        self.scans = scans

    async def UploadScan(
        self, request_iterator: AsyncIterator[scan_pb2.UploadScanRequest], context: Ctx
    ) -> scan_pb2.UploadScanResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("item") != "header":
            raise InvalidArgument("UploadScan must start with a header message", reason="NO_HEADER")

        async def chunks() -> AsyncIterator[bytes]:
            async for msg in request_iterator:
                if msg.WhichOneof("item") != "chunk":
                    raise InvalidArgument("only chunks follow the header", reason="SECOND_HEADER")
                yield msg.chunk

        info = await self.scans.upload(caller(), submission(first.header), chunks())
        return scan_pb2.UploadScanResponse(scan=scan(info))

    async def GetScan(
        self, request: scan_pb2.GetScanRequest, context: Ctx
    ) -> scan_pb2.GetScanResponse:
        return scan_pb2.GetScanResponse(scan=scan(await self.scans.get(caller(), request.scan_id)))

    async def ListScans(
        self, request: scan_pb2.ListScansRequest, context: Ctx
    ) -> scan_pb2.ListScansResponse:
        rows, token = await self.scans.list_scans(caller(), request.page_size, request.page_token)
        return scan_pb2.ListScansResponse(scans=[scan(r) for r in rows], next_page_token=token)

    async def ListScanDestinations(
        self, request: scan_pb2.ListScanDestinationsRequest, context: Ctx
    ) -> scan_pb2.ListScanDestinationsResponse:
        found = await self.scans.destinations(caller(), request.user_login)
        return scan_pb2.ListScanDestinationsResponse(destinations=[destination(d) for d in found])

    async def CreateScanDestination(
        self, request: scan_pb2.CreateScanDestinationRequest, context: Ctx
    ) -> scan_pb2.CreateScanDestinationResponse:
        made = await self.scans.create_destination(caller(), new_destination(request.destination))
        return scan_pb2.CreateScanDestinationResponse(destination=destination(made))

    async def DeleteScanDestination(
        self, request: scan_pb2.DeleteScanDestinationRequest, context: Ctx
    ) -> scan_pb2.DeleteScanDestinationResponse:
        await self.scans.delete_destination(caller(), request.destination_id)
        return scan_pb2.DeleteScanDestinationResponse()
