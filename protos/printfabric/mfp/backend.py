"""What serves the MFP API: the gateway (by gRPC to the cloud) or the node (replica first)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from printfabric.mfp import models


@dataclass(frozen=True)
class DeviceContext:
    """A device session as presented: its bearer token (the backend checks it)."""

    token: str


@dataclass(frozen=True)
class UserContext:
    """A user session at a device: the signed user token and what it names."""

    token: str
    tenant: str
    login: str
    device_id: str


@dataclass(frozen=True)
class Download:
    job: models.JobInfo
    media_type: str
    chunks: AsyncIterator[bytes]


class MfpBackend(Protocol):
    async def device_login(self, body: models.DeviceLogin) -> models.DeviceSession: ...

    async def device_config(self, device: DeviceContext) -> models.DeviceConfig: ...

    async def authenticate(
        self, device: DeviceContext, body: models.UserLogin
    ) -> models.UserSession: ...

    async def register_card(
        self, device: DeviceContext, body: models.CardRegistration
    ) -> models.UserSession: ...

    async def user(self, device: DeviceContext, user_token: str) -> UserContext: ...

    async def list_jobs(self, device: DeviceContext, user: UserContext) -> list[models.JobInfo]: ...

    async def release(
        self, device: DeviceContext, user: UserContext, body: models.ReleaseRequest
    ) -> list[models.JobInfo]: ...

    async def delete_job(
        self, device: DeviceContext, user: UserContext, job_id: str
    ) -> models.JobInfo: ...

    async def download(self, device: DeviceContext, user: UserContext, job_id: str) -> Download: ...

    async def scan_profiles(
        self, device: DeviceContext, user: UserContext
    ) -> list[models.ScanDestination]: ...

    async def upload_scan(
        self,
        device: DeviceContext,
        description: models.ScanDescription,
        chunks: AsyncIterator[bytes],
    ) -> models.ScanReceipt: ...

    async def record_usage(
        self, device: DeviceContext, body: models.AccountingRecord
    ) -> models.AccountingReceipt: ...
