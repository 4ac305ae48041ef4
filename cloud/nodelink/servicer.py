"""NodeLinkService: authenticates the node's hello and hands the stream to its NodeLink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from printfabric.v1 import node_link_pb2, node_link_pb2_grpc

from cloud.db.models import Node
from cloud.domain.auth import Auth
from cloud.domain.enums import DeviceKind
from cloud.domain.runtime import Runtime, new_id
from cloud.errors import InvalidArgument
from cloud.nodelink.session import NodeLink

Ctx = grpc.aio.ServicerContext[Any, Any]


class NodeLinkServicer(node_link_pb2_grpc.NodeLinkServiceServicer):
    def __init__(self, rt: Runtime, auth: Auth) -> None:
        self.rt = rt
        self.auth = auth
        # Names this process in presence keys, so replicas can tell whose link is whose.
        self.replica_id = new_id()

    async def Connect(
        self, request_iterator: AsyncIterator[node_link_pb2.ConnectRequest], context: Ctx
    ) -> AsyncIterator[node_link_pb2.ConnectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("body") != "hello":
            raise InvalidArgument("the first NodeLink message must be hello", reason="NO_HELLO")
        h = first.hello
        node = await self.auth.verify_agent(
            h.company_code, h.serial_number, h.access_token, DeviceKind.NODE
        )
        assert isinstance(node, Node)
        link = NodeLink(self.rt, self.auth, node, first, self.replica_id)
        async for response in link.responses(request_iterator):
            yield response
