"""The gateway's only state is none: every request becomes gRPC calls to the cloud.

What it does keep is a short-lived, in-memory cache of checked logins (keyed by a keyed hash of
company, login and password, never the password itself) so that a workstation printing ten
jobs does not cost ten password checks, of whose access tokens it was shown (keyed by a keyed
hash of the token), and of queue descriptions for Get-Printer-Attributes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc
from printfabric.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    spool_pb2,
    spool_pb2_grpc,
    tenant_pb2,
    tenant_pb2_grpc,
)

# Job chunks are at most 1 MiB; 8 MiB leaves room.
MAX_MESSAGE_BYTES = 8 << 20
_CACHE_ENTRIES = 10_000

K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """A bounded LRU map whose entries expire."""

    def __init__(self, entries: int = _CACHE_ENTRIES) -> None:
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._entries = entries

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._entries:
            self._data.popitem(last=False)

    def drop(self, key: K) -> None:
        self._data.pop(key, None)


@dataclass(frozen=True)
class UserSession:
    """A user the cloud accepted, with the access token the gateway calls the cloud with."""

    company_code: str
    login: str
    full_name: str
    access_token: str = field(repr=False)
    # The cache entry this session sits under (a keyed hash of the credentials).
    cache_key: bytes = field(default=b"", repr=False)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"),)


class TokenRefused(Exception):
    """The cloud accepted the access token, but not for a person printing (disabled user)."""


@dataclass(frozen=True)
class QueueInfo:
    printer: device_pb2.Printer
    queued_job_count: int


class Upstream:
    """gRPC stubs to the cloud plus the caches above."""

    def __init__(self, target: str, ca_pem: bytes, auth_cache_seconds: float) -> None:
        self.channel = grpc.aio.secure_channel(
            target,
            grpc.ssl_channel_credentials(root_certificates=ca_pem),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.devices = device_pb2_grpc.DeviceServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.spool = spool_pb2_grpc.SpoolServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.tenants = tenant_pb2_grpc.TenantServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.directory = directory_pb2_grpc.DirectoryServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._auth_ttl = auth_cache_seconds
        self._key = secrets.token_bytes(32)
        self._sessions: _TtlCache[bytes, UserSession] = _TtlCache()
        self._queues: _TtlCache[tuple[str, str], QueueInfo] = _TtlCache()
        self._inflight: dict[bytes, asyncio.Future[UserSession]] = {}

    async def close(self) -> None:
        await self.channel.close()

    async def login(self, company: str, login: str, password: str) -> UserSession:
        """The session for these credentials; raises grpc.aio.AioRpcError when refused."""
        key = hmac.new(
            self._key, "\0".join((company, login, password)).encode(), hashlib.sha256
        ).digest()

        async def check() -> tuple[UserSession, float]:
            reply = await self.auth.AuthenticateUser(
                auth_pb2.AuthenticateUserRequest(
                    company_code=company,
                    credential=auth_pb2.UserCredential(
                        password=auth_pb2.PasswordCredential(login=login, password=password)
                    ),
                ),
                timeout=30,
            )
            session = UserSession(
                company, reply.user.login, reply.user.full_name, reply.tokens.access_token, key
            )
            expires = reply.tokens.access_token_expire_time.seconds - time.time()
            return session, max(0.0, min(self._auth_ttl, expires - 30))

        return await self._cached(key, check)

    async def token_session(self, token: str) -> UserSession:
        """The user whose access token this is (IPP with a bearer token).

        The cloud checks the token and names its user and tenant; the answer is cached for a
        short while under a keyed hash of the token. Raises grpc.aio.AioRpcError when the cloud
        refuses the token, TokenRefused when it is not a usable person's.
        """
        key = hmac.new(self._key, b"bearer\0" + token.encode(), hashlib.sha256).digest()

        async def check() -> tuple[UserSession, float]:
            metadata = (("authorization", f"Bearer {token}"),)
            # GetUser without a user_id or login names the caller: the cloud verifies the token.
            user = (
                await self.directory.GetUser(
                    directory_pb2.GetUserRequest(), metadata=metadata, timeout=30
                )
            ).user
            if user.disabled:
                raise TokenRefused(f"the account {user.login} is disabled")
            tenant = (
                await self.tenants.GetTenant(
                    tenant_pb2.GetTenantRequest(), metadata=metadata, timeout=30
                )
            ).tenant
            session = UserSession(tenant.company_code, user.login, user.full_name, token, key)
            return session, self._auth_ttl

        return await self._cached(key, check)

    async def _cached(
        self, key: bytes, check: Callable[[], Awaitable[tuple[UserSession, float]]]
    ) -> UserSession:
        """The session cached under key, else check()'s (cached for the time it says)."""
        cached = self._sessions.get(key)
        if cached is not None:
            return cached
        # Concurrent requests with the same credentials share one check.
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[UserSession] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            session, ttl = await check()
            self._sessions.put(key, session, ttl)
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning if nobody waited
            raise
        finally:
            del self._inflight[key]

    def forget(self, session: UserSession) -> None:
        """Drops a session the cloud no longer accepts (revoked, user disabled)."""
        self._sessions.drop(session.cache_key)

    async def describe(self, company: str, queue: str) -> QueueInfo:
        """A queue's public description (cached for a second: printers are polled often)."""
        key = (company, queue)
        cached = self._queues.get(key)
        if cached is not None:
            return cached
        reply = await self.devices.DescribePrinter(
            device_pb2.DescribePrinterRequest(company_code=company, name=queue), timeout=30
        )
        info = QueueInfo(reply.printer, reply.queued_job_count)
        self._queues.put(key, info, 1.0)
        return info

    async def submit(
        self,
        user: UserSession,
        header: spool_pb2.JobHeader,
        chunks: AsyncIterator[bytes],
    ) -> spool_pb2.Job:
        broken: list[BaseException] = []

        header.ends_with_marker = True

        async def requests() -> AsyncIterator[spool_pb2.SubmitJobRequest]:
            yield spool_pb2.SubmitJobRequest(header=header)
            size = 0
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    yield spool_pb2.SubmitJobRequest(chunk=chunk)
                # Only a whole document gets the marker: a cut stream stores nothing.
                yield spool_pb2.SubmitJobRequest(end=spool_pb2.SubmitJobEnd(size=size))
            except (GeneratorExit, asyncio.CancelledError):
                # gRPC stopped reading: the cloud answered before the end (a job it already
                # has under this request_id) or the call itself ended; the call tells which.
                raise
            except BaseException as exc:
                # The document stream broke (client gone, bad compression): the call is
                # cancelled, so the cloud keeps nothing; the caller sees the real cause.
                broken.append(exc)
                raise

        try:
            reply = await self.spool.SubmitJob(requests(), metadata=user.metadata)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            if broken:
                raise broken[0] from None
            raise
        if broken:
            raise broken[0]
        job: spool_pb2.Job = reply.job
        return job

    async def create_job(self, user: UserSession, header: spool_pb2.JobHeader) -> spool_pb2.Job:
        reply = await self.spool.CreateJob(
            spool_pb2.CreateJobRequest(header=header), metadata=user.metadata, timeout=30
        )
        job: spool_pb2.Job = reply.job
        return job

    async def find_job(self, user: UserSession, number: int) -> spool_pb2.Job | None:
        reply = await self.spool.ListJobs(
            spool_pb2.ListJobsRequest(number=number, page_size=1),
            metadata=user.metadata,
            timeout=30,
        )
        return reply.jobs[0] if reply.jobs else None

    async def list_jobs(
        self, user: UserSession, queue: str, states: Sequence[int], limit: int
    ) -> list[spool_pb2.Job]:
        jobs: list[spool_pb2.Job] = []
        token = ""
        while len(jobs) < limit:
            reply = await self.spool.ListJobs(
                spool_pb2.ListJobsRequest(
                    printer_id=queue,
                    states=states,  # type: ignore[arg-type]
                    page_size=min(500, limit - len(jobs)),
                    page_token=token,
                ),
                metadata=user.metadata,
                timeout=30,
            )
            jobs.extend(reply.jobs)
            token = reply.next_page_token
            if not token:
                break
        return jobs

    async def cancel(self, user: UserSession, job_id: str) -> spool_pb2.Job:
        reply = await self.spool.CancelJob(
            spool_pb2.CancelJobRequest(job_id=job_id), metadata=user.metadata, timeout=30
        )
        job: spool_pb2.Job = reply.job
        return job
