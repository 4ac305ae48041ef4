"""A real cloud on an ephemeral TLS port for tests, with helpers to make tenants and call it."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from printfabric.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    device_pb2_grpc,
    directory_pb2_grpc,
    spool_pb2_grpc,
    tenant_pb2_grpc,
)

from cloud.config import CloudConfig
from cloud.domain.devices import Devices, PrinterFields
from cloud.domain.directory import Directory, NewUser, UserFields
from cloud.domain.enums import AccessRight, QueueModel
from cloud.domain.tenants import Tenants
from cloud.server import RunningCloud, running_cloud

ADMIN_RIGHTS = frozenset(
    {AccessRight.PRINT, AccessRight.COPY, AccessRight.SCAN, AccessRight.COLOR, AccessRight.ADMIN}
)


@dataclass
class Stubs:
    """One caller's view of the cloud: every service stub on a channel carrying its token."""

    channel: grpc.aio.Channel
    auth: auth_pb2_grpc.AuthServiceStub = field(init=False)
    tenant: tenant_pb2_grpc.TenantServiceStub = field(init=False)
    directory: directory_pb2_grpc.DirectoryServiceStub = field(init=False)
    device: device_pb2_grpc.DeviceServiceStub = field(init=False)
    spool: spool_pb2_grpc.SpoolServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.tenant = tenant_pb2_grpc.TenantServiceStub(self.channel)
        self.directory = directory_pb2_grpc.DirectoryServiceStub(self.channel)
        self.device = device_pb2_grpc.DeviceServiceStub(self.channel)
        self.spool = spool_pb2_grpc.SpoolServiceStub(self.channel)


@dataclass
class TenantHandle:
    tenant_id: str
    company_code: str
    admin: Stubs
    admin_login: str
    admin_password: str
    queue: str


class CloudHarness:
    def __init__(self, running: RunningCloud, stack: contextlib.AsyncExitStack) -> None:
        self.running = running
        self.rt = running.runtime
        self.stack = stack
        self.target = f"localhost:{running.port}"
        self.ca = running.tls.ca_cert.read_bytes()

    async def channel(self, token: str = "") -> grpc.aio.Channel:
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca)
        if token:
            creds = grpc.composite_channel_credentials(
                creds, grpc.access_token_call_credentials(token)
            )
        channel = grpc.aio.secure_channel(
            self.target,
            creds,
            options=[
                ("grpc.max_receive_message_length", 8 << 20),
                ("grpc.max_send_message_length", 8 << 20),
            ],
        )
        self.stack.push_async_callback(channel.close)
        return channel

    async def stubs(self, token: str = "") -> Stubs:
        return Stubs(await self.channel(token))

    async def login(self, company_code: str, login: str, password: str) -> Stubs:
        anon = await self.stubs()
        resp = await anon.auth.AuthenticateUser(
            auth_pb2.AuthenticateUserRequest(
                company_code=company_code,
                credential=auth_pb2.UserCredential(
                    password=auth_pb2.PasswordCredential(login=login, password=password)
                ),
            )
        )
        return await self.stubs(resp.tokens.access_token)

    async def make_tenant(self, code: str, model: QueueModel = QueueModel.SECURE) -> TenantHandle:
        # Tests share one PostgreSQL database; a suffix keeps their tenants apart.
        code = f"{code}-{secrets.token_hex(3).upper()}"
        tenant = await Tenants(self.rt).create(None, code, f"{code} Inc.")
        await Directory(self.rt).create(
            None,
            tenant.id,
            NewUser(
                UserFields(login="admin", full_name="Ada Admin", rights=ADMIN_RIGHTS),
                password="admin-pass",
            ),
        )
        await Devices(self.rt).create_printer(
            None, tenant.id, PrinterFields(name="secure", model=model)
        )
        admin = await self.login(code, "admin", "admin-pass")
        return TenantHandle(tenant.id, code, admin, "admin", "admin-pass", "secure")

    async def add_user(
        self, t: TenantHandle, login: str, password: str = "secret-pw", **kw: object
    ) -> Stubs:
        rights = kw.pop("rights", None)
        await Directory(self.rt).create(
            None,
            t.tenant_id,
            NewUser(
                UserFields(login=login, full_name=login.title(), rights=rights),  # type: ignore[arg-type]
                password=password,
                pin=str(kw.get("pin", "")),
                cards=list(kw.get("cards", [])),  # type: ignore[call-overload]
            ),
        )
        return await self.login(t.company_code, login, password)


@contextlib.asynccontextmanager
async def cloud_harness(
    home: Path, database_url: str = "", **overrides: object
) -> AsyncIterator[CloudHarness]:
    config = replace(
        CloudConfig(home=home, listen="127.0.0.1:0", database_url=database_url),
        **overrides,  # type: ignore[arg-type]
    ).resolved()
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(running_cloud(config))
        yield CloudHarness(running, stack)
