"""A cloud that keeps nothing: the gateway's own ceiling in bench gateway_ipp.

`null_cloud` serves SpoolService.SubmitJob by reading the document stream to its end and
answering with a completed job, with no database, blob or delivery behind it. The two other
calls a Print-Job makes, AuthenticateUser (once a minute per login) and DescribePrinter (once a
second per queue), go on to a real cloud, so a gateway pointed here runs its usual path. What
such a gateway achieves is the most the fabric could do if the cloud cost nothing: the cost
of ipptool, TLS, HTTP, IPP and one gRPC call.

It runs on its own event loop in a thread of the calling process, with the real cloud's
certificate (the dev PKI of $PF_HOME/tls), on a free loopback port.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from printfabric.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    spool_pb2,
    spool_pb2_grpc,
)

from tests.support.processes import HOST, free_port

_START_SECONDS = 10.0
Ctx = grpc.aio.ServicerContext[Any, Any]


class _Auth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, real: auth_pb2_grpc.AuthServiceStub) -> None:
        self.real = real

    async def AuthenticateUser(
        self, request: auth_pb2.AuthenticateUserRequest, context: Ctx
    ) -> auth_pb2.AuthenticateUserResponse:
        reply: auth_pb2.AuthenticateUserResponse = await self.real.AuthenticateUser(request)
        return reply


class _Devices(device_pb2_grpc.DeviceServiceServicer):
    def __init__(self, real: device_pb2_grpc.DeviceServiceStub) -> None:
        self.real = real

    async def DescribePrinter(
        self, request: device_pb2.DescribePrinterRequest, context: Ctx
    ) -> device_pb2.DescribePrinterResponse:
        reply: device_pb2.DescribePrinterResponse = await self.real.DescribePrinter(request)
        return reply


class _Spool(spool_pb2_grpc.SpoolServiceServicer):
    def __init__(self) -> None:
        self.jobs = 0

    async def SubmitJob(
        self,
        request_iterator: AsyncIterator[spool_pb2.SubmitJobRequest],
        context: Ctx,
    ) -> spool_pb2.SubmitJobResponse:
        header = spool_pb2.JobHeader()
        size = 0
        async for message in request_iterator:
            if message.HasField("header"):
                header = message.header
            size += len(message.chunk)
        self.jobs += 1
        job = spool_pb2.Job(
            job_id=f"null-{self.jobs}",
            number=self.jobs,
            title=header.title,
            state=spool_pb2.JOB_STATE_COMPLETED,
            size_bytes=size,
        )
        return spool_pb2.SubmitJobResponse(job=job)


async def _serve(
    port: int, real_target: str, tls_dir: Path, ready: threading.Event, stop: asyncio.Event
) -> None:
    channel = grpc.aio.secure_channel(
        real_target, grpc.ssl_channel_credentials((tls_dir / "ca.pem").read_bytes())
    )
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        _Auth(auth_pb2_grpc.AuthServiceStub(channel)),
        server,
    )
    device_pb2_grpc.add_DeviceServiceServicer_to_server(
        _Devices(device_pb2_grpc.DeviceServiceStub(channel)),
        server,
    )
    spool_pb2_grpc.add_SpoolServiceServicer_to_server(_Spool(), server)
    credentials = grpc.ssl_server_credentials(
        [((tls_dir / "server-key.pem").read_bytes(), (tls_dir / "server.pem").read_bytes())]
    )
    server.add_secure_port(f"{HOST}:{port}", credentials)
    await server.start()
    ready.set()
    try:
        await stop.wait()
    finally:
        await server.stop(None)
        await channel.close()


@contextmanager
def null_cloud(real_target: str, tls_dir: Path) -> Iterator[str]:
    """Serves the null cloud while the block runs; yields its gRPC target (localhost:PORT)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(_serve(port, real_target, tls_dir, ready, stop))
        except BaseException as exc:  # reported to the caller below
            failed.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="null-cloud", daemon=True)
    thread.start()
    if not ready.wait(_START_SECONDS) or failed:
        raise RuntimeError(f"the null cloud did not start: {failed[:1]}")
    try:
        yield f"localhost:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(_START_SECONDS)
