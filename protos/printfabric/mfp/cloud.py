"""The MFP API answered by gRPC calls to the cloud, as the device (the gateway uses this as is;
the node answers log-ins from its replica and forwards the rest through this).

The device token the API hands out wraps the cloud's access token of the device with the
company code and device id, so that no server keeps state: `pfd1.<company>.<device>.<token>`.
Calls made for a user go to the cloud as the device acting for that user (owner_login), and the
user is named by a signed user token (printfabric.mfp.tokens).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from printfabric.formats import mime_type
from printfabric.mfp import models
from printfabric.mfp.backend import DeviceContext, Download, UserContext
from printfabric.mfp.errors import MfpError, from_grpc
from printfabric.mfp.tokens import UserTokenSigner
from printfabric.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    directory_pb2,
    scan_pb2,
    scan_pb2_grpc,
    spool_pb2,
    spool_pb2_grpc,
)

T = TypeVar("T")
_TOKEN_PREFIX = "pfd1"
_TIMEOUT = 30.0
_CHUNK = 1 << 20
_USAGE_KINDS = {
    "print": accounting_pb2.USAGE_KIND_PRINT,
    "copy": accounting_pb2.USAGE_KIND_COPY,
    "scan": accounting_pb2.USAGE_KIND_SCAN,
    "fax": accounting_pb2.USAGE_KIND_FAX,
}


@dataclass(frozen=True)
class DeviceToken:
    company: str
    device_id: str
    cloud_token: str

    def encode(self) -> str:
        company = base64.urlsafe_b64encode(self.company.encode()).rstrip(b"=").decode()
        return f"{_TOKEN_PREFIX}.{company}.{self.device_id}.{self.cloud_token}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.cloud_token}"),)

    @classmethod
    def decode(cls, token: str) -> DeviceToken:
        parts = token.split(".", 3)
        if len(parts) != 4 or parts[0] != _TOKEN_PREFIX or not all(parts):
            raise MfpError(
                401, "DEVICE_SESSION_INVALID", "the device session is not valid; log in again"
            )
        try:
            company = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode()
        except ValueError as exc:
            raise MfpError(
                401, "DEVICE_SESSION_INVALID", "the device session is not valid; log in again"
            ) from exc
        return cls(company, parts[2], parts[3])


def timestamp(ts: Timestamp) -> datetime | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def rights(user: directory_pb2.User) -> list[str]:
    return [
        common_pb2.AccessRight.Name(r).removeprefix("ACCESS_RIGHT_").lower()
        for r in user.rights
        if r
    ]


def user_info(user: directory_pb2.User) -> models.UserInfo:
    return models.UserInfo(
        login=user.login,
        email=user.email,
        full_name=user.full_name,
        department=user.department,
        rights=rights(user),
    )


def job_info(job: spool_pb2.Job) -> models.JobInfo:
    return models.JobInfo(
        job_id=job.job_id,
        number=job.number,
        title=job.title,
        state=spool_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower(),
        state_message=job.state_message,
        owner=job.owner_login,
        queue=job.printer_name,
        format=mime_type(job.format),
        pages=job.page_count,
        size=job.size_bytes,
        created_at=timestamp(job.create_time),
    )


def printer_info(printer: device_pb2.Printer) -> models.PrinterInfo | None:
    if not printer.printer_id:
        return None
    return models.PrinterInfo(
        printer_id=printer.printer_id,
        name=printer.name,
        display_name=printer.display_name or printer.name,
        location=printer.location,
        color=printer.color,
        duplex=printer.duplex,
    )


def credential(body: models.UserLogin) -> auth_pb2.UserCredential:
    """The gRPC credential of a log-in; 400 when the method's fields are missing."""
    if body.method == "password":
        if not body.login or body.password is None:
            raise MfpError(400, "INVALID_REQUEST", "a password log-in needs login and password")
        return auth_pb2.UserCredential(
            password=auth_pb2.PasswordCredential(login=body.login, password=body.password)
        )
    if body.method == "pin":
        if not body.pin:
            raise MfpError(400, "INVALID_REQUEST", "a PIN log-in needs pin")
        return auth_pb2.UserCredential(pin=body.pin)
    if not body.card:
        raise MfpError(400, "INVALID_REQUEST", "a card log-in needs card")
    return auth_pb2.UserCredential(card=body.card)


async def call(work: Awaitable[T]) -> T:
    """Awaits a gRPC call; its failure as the MFP API's error."""
    try:
        return await work
    except grpc.aio.AioRpcError as exc:
        raise from_grpc(exc) from None


class CloudMfpBackend:
    def __init__(self, channel: grpc.aio.Channel, signer: UserTokenSigner) -> None:
        self.signer = signer
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        self.devices = device_pb2_grpc.DeviceServiceStub(channel)  # type: ignore[no-untyped-call]
        self.spool = spool_pb2_grpc.SpoolServiceStub(channel)  # type: ignore[no-untyped-call]
        self.scans = scan_pb2_grpc.ScanServiceStub(channel)  # type: ignore[no-untyped-call]
        self.accounting = accounting_pb2_grpc.AccountingServiceStub(channel)  # type: ignore[no-untyped-call]

    # Devices ---------------------------------------------------------------------------------

    async def device_login(self, body: models.DeviceLogin) -> models.DeviceSession:
        reply = await call(
            self.auth.AuthenticateDevice(
                auth_pb2.AuthenticateDeviceRequest(
                    company_code=body.company_code,
                    serial_number=body.serial_number,
                    access_token=body.access_token,
                    kind=auth_pb2.DEVICE_KIND_MFP,
                ),
                timeout=_TIMEOUT,
            )
        )
        token = DeviceToken(body.company_code, reply.device_id, reply.tokens.access_token)
        config = await self._config(token)
        return models.DeviceSession(
            device_token=token.encode(),
            expires_at=reply.tokens.access_token_expire_time.ToDatetime(tzinfo=UTC),
            device_id=reply.device_id,
            tenant_display_name=config.tenant_display_name,
            printer=printer_info(config.printer),
        )

    async def _config(self, token: DeviceToken) -> device_pb2.GetDeviceConfigResponse:
        reply: device_pb2.GetDeviceConfigResponse = await call(
            self.devices.GetDeviceConfig(
                device_pb2.GetDeviceConfigRequest(), metadata=token.metadata, timeout=_TIMEOUT
            )
        )
        return reply

    async def device_config(self, device: DeviceContext) -> models.DeviceConfig:
        token = DeviceToken.decode(device.token)
        config = await self._config(token)
        return models.DeviceConfig(
            device_id=config.device.device_id,
            display_name=config.device.display_name or config.device.serial_number,
            tenant_display_name=config.tenant_display_name,
            printer=printer_info(config.printer),
            settings=dict(config.settings),
        )

    # Users -----------------------------------------------------------------------------------

    async def authenticate(
        self, device: DeviceContext, body: models.UserLogin
    ) -> models.UserSession:
        token = DeviceToken.decode(device.token)
        return await self._log_in(token, credential(body), "")

    async def register_card(
        self, device: DeviceContext, body: models.CardRegistration
    ) -> models.UserSession:
        token = DeviceToken.decode(device.token)
        password = auth_pb2.UserCredential(
            password=auth_pb2.PasswordCredential(login=body.login, password=body.password)
        )
        return await self._log_in(token, password, body.card)

    async def _log_in(
        self, token: DeviceToken, cred: auth_pb2.UserCredential, register_card: str
    ) -> models.UserSession:
        # The device session must still be good before anyone logs in at it.
        await self._config(token)
        request = auth_pb2.AuthenticateUserRequest(
            company_code=token.company, credential=cred, device_id=token.device_id
        )
        if register_card:
            request.register_card = register_card
        reply = await call(self.auth.AuthenticateUser(request, timeout=_TIMEOUT))
        return self.session(token.company, token.device_id, user_info(reply.user))

    def session(self, tenant: str, device_id: str, user: models.UserInfo) -> models.UserSession:
        user_token, expires = self.signer.issue(tenant, user.login, device_id)
        return models.UserSession(
            user_token=user_token,
            expires_at=datetime.fromtimestamp(expires, UTC),
            user=user,
        )

    async def user(self, device: DeviceContext, user_token: str) -> UserContext:
        token = DeviceToken.decode(device.token)
        claims = self.signer.verify(user_token, token.device_id)
        return UserContext(user_token, claims.tenant, claims.login, claims.device_id)

    # Jobs ------------------------------------------------------------------------------------

    async def list_jobs(self, device: DeviceContext, user: UserContext) -> list[models.JobInfo]:
        token = DeviceToken.decode(device.token)
        jobs: list[models.JobInfo] = []
        page = ""
        while True:
            reply = await call(
                self.spool.ListJobs(
                    spool_pb2.ListJobsRequest(
                        owner_login=user.login,
                        states=[spool_pb2.JOB_STATE_HELD],
                        page_size=500,
                        page_token=page,
                    ),
                    metadata=token.metadata,
                    timeout=_TIMEOUT,
                )
            )
            jobs.extend(job_info(j) for j in reply.jobs)
            page = reply.next_page_token
            if not page or len(jobs) >= 5000:
                return jobs

    async def release(
        self, device: DeviceContext, user: UserContext, body: models.ReleaseRequest
    ) -> list[models.JobInfo]:
        token = DeviceToken.decode(device.token)
        reply = await call(
            self.spool.ReleaseJobs(
                spool_pb2.ReleaseJobsRequest(
                    job_ids=body.job_ids, all_held=body.all, owner_login=user.login
                ),
                metadata=token.metadata,
                timeout=_TIMEOUT,
            )
        )
        return [job_info(j) for j in reply.jobs]

    async def _own_job(self, token: DeviceToken, user: UserContext, job_id: str) -> spool_pb2.Job:
        reply = await call(
            self.spool.GetJob(
                spool_pb2.GetJobRequest(job_id=job_id), metadata=token.metadata, timeout=_TIMEOUT
            )
        )
        job: spool_pb2.Job = reply.job
        if job.owner_login.casefold() != user.login.casefold():
            # Another user's job answers exactly like an unknown one.
            raise MfpError(404, "UNKNOWN_JOB", f"job {job_id} not found")
        return job

    async def delete_job(
        self, device: DeviceContext, user: UserContext, job_id: str
    ) -> models.JobInfo:
        token = DeviceToken.decode(device.token)
        await self._own_job(token, user, job_id)
        reply = await call(
            self.spool.CancelJob(
                spool_pb2.CancelJobRequest(job_id=job_id), metadata=token.metadata, timeout=_TIMEOUT
            )
        )
        return job_info(reply.job)

    async def download(self, device: DeviceContext, user: UserContext, job_id: str) -> Download:
        token = DeviceToken.decode(device.token)
        job = await self._own_job(token, user, job_id)
        stream = self.spool.DownloadJob(
            spool_pb2.DownloadJobRequest(job_id=job_id), metadata=token.metadata
        )
        first = await call(stream.read())
        if first is grpc.aio.EOF or first.WhichOneof("item") != "job":
            stream.cancel()
            raise MfpError(502, "BAD_UPSTREAM", "the cloud sent no job header")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await stream.read()
                    if message is grpc.aio.EOF:
                        return
                    if message.WhichOneof("item") == "chunk":
                        yield message.chunk
            finally:
                stream.cancel()

        return Download(job_info(job), mime_type(job.format), chunks())

    # Scan and accounting ------------------------------------------------------------------------

    async def scan_profiles(
        self, device: DeviceContext, user: UserContext
    ) -> list[models.ScanDestination]:
        token = DeviceToken.decode(device.token)
        reply = await call(
            self.scans.ListScanDestinations(
                scan_pb2.ListScanDestinationsRequest(user_login=user.login),
                metadata=token.metadata,
                timeout=_TIMEOUT,
            )
        )
        return [
            models.ScanDestination(
                destination_id=d.destination_id,
                display_name=d.display_name,
                kind=scan_pb2.ScanDestinationKind.Name(d.kind)
                .removeprefix("SCAN_DESTINATION_KIND_")
                .lower(),
                target=d.target,
                format=d.format,
            )
            for d in reply.destinations
        ]

    async def upload_scan(
        self,
        device: DeviceContext,
        description: models.ScanDescription,
        chunks: AsyncIterator[bytes],
    ) -> models.ScanReceipt:
        token = DeviceToken.decode(device.token)
        header = scan_header(description)

        async def requests() -> AsyncIterator[scan_pb2.UploadScanRequest]:
            yield scan_pb2.UploadScanRequest(header=header)
            async for chunk in chunks:
                for start in range(0, len(chunk), _CHUNK):
                    yield scan_pb2.UploadScanRequest(chunk=chunk[start : start + _CHUNK])

        reply = await call(self.scans.UploadScan(requests(), metadata=token.metadata))
        scan = reply.scan
        return models.ScanReceipt(
            scan_id=scan.scan_id,
            state=scan_pb2.ScanState.Name(scan.state).removeprefix("SCAN_STATE_").lower(),
            size=scan.size_bytes,
            sha256=scan.sha256,
        )

    async def record_usage(
        self, device: DeviceContext, body: models.AccountingRecord
    ) -> models.AccountingReceipt:
        token = DeviceToken.decode(device.token)
        reply = await call(
            self.accounting.RecordUsage(
                accounting_pb2.RecordUsageRequest(entry=usage_entry(body, token.device_id)),
                metadata=token.metadata,
                timeout=_TIMEOUT,
            )
        )
        return models.AccountingReceipt(entry_id=reply.entry.entry_id, duplicate=reply.duplicate)


def scan_header(description: models.ScanDescription) -> scan_pb2.ScanHeader:
    return scan_pb2.ScanHeader(
        destination_id=description.destination_id,
        user_login=description.login,
        file_name=description.file_name,
        mime_type=description.mime_type,
        page_count=description.page_count,
        metadata=description.metadata,
        request_id=description.request_id,
        size=description.size,
    )


def usage_entry(body: models.AccountingRecord, device_id: str) -> accounting_pb2.UsageEntry:
    occurred = Timestamp()
    occurred.FromDatetime(body.occurred_at)
    return accounting_pb2.UsageEntry(
        request_id=body.id,
        kind=_USAGE_KINDS[body.kind],
        user_login=body.login,
        document_name=body.document_name,
        device_id=device_id,
        job_id=body.job_id,
        pages=body.pages,
        sheets=body.sheets,
        color_pages=body.color_pages,
        mono_pages=body.mono_pages,
        duplex=body.duplex,
        paper_size=body.paper_size,
        occur_time=occurred,
    )
