"""TenantService."""

from __future__ import annotations

from typing import Any

import grpc
from printfabric.v1 import tenant_pb2, tenant_pb2_grpc

from cloud.api import convert
from cloud.api.interceptor import caller
from cloud.domain.tenants import Tenants, TenantUpdate
from cloud.errors import InvalidArgument

Ctx = grpc.aio.ServicerContext[Any, Any]
_UPDATABLE = {"display_name", "job_retention"}


class TenantServicer(tenant_pb2_grpc.TenantServiceServicer):
    def __init__(self, tenants: Tenants) -> None:
        self.tenants = tenants

    async def CreateTenant(
        self, request: tenant_pb2.CreateTenantRequest, context: Ctx
    ) -> tenant_pb2.CreateTenantResponse:
        t = request.tenant
        retention = t.job_retention.ToTimedelta() if t.HasField("job_retention") else None
        created = await self.tenants.create(caller(), t.company_code, t.display_name, retention)
        return tenant_pb2.CreateTenantResponse(tenant=convert.tenant(created))

    async def GetTenant(
        self, request: tenant_pb2.GetTenantRequest, context: Ctx
    ) -> tenant_pb2.GetTenantResponse:
        return tenant_pb2.GetTenantResponse(
            tenant=convert.tenant(await self.tenants.get(caller(), request.tenant_id))
        )

    async def ListTenants(
        self, request: tenant_pb2.ListTenantsRequest, context: Ctx
    ) -> tenant_pb2.ListTenantsResponse:
        rows, token = await self.tenants.list_tenants(
            caller(), request.page_size, request.page_token
        )
        return tenant_pb2.ListTenantsResponse(
            tenants=[convert.tenant(t) for t in rows], next_page_token=token
        )

    async def UpdateTenant(
        self, request: tenant_pb2.UpdateTenantRequest, context: Ctx
    ) -> tenant_pb2.UpdateTenantResponse:
        paths = set(request.update_mask.paths) or _UPDATABLE
        if paths - _UPDATABLE:
            raise InvalidArgument(f"update_mask may name only {', '.join(sorted(_UPDATABLE))}")
        t = request.tenant
        change = TenantUpdate(
            display_name=t.display_name if "display_name" in paths else None,
            job_retention=t.job_retention.ToTimedelta() if "job_retention" in paths else None,
        )
        updated = await self.tenants.update(caller(), t.tenant_id, change)
        return tenant_pb2.UpdateTenantResponse(tenant=convert.tenant(updated))
