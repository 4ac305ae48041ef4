"""Assembles the cloud: runtime from config, the TLS gRPC server, the retention sweeper and the
Azure AD sync schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
from printfabric.tls import TlsFiles, ensure_dev_pki
from printfabric.v1 import (
    accounting_pb2_grpc,
    auth_pb2_grpc,
    device_pb2_grpc,
    directory_pb2_grpc,
    node_link_pb2_grpc,
    scan_pb2_grpc,
    spool_pb2_grpc,
    tenant_pb2_grpc,
)

from cloud.api.accounting_servicer import AccountingServicer
from cloud.api.auth_servicer import AuthServicer
from cloud.api.device_servicer import DeviceServicer
from cloud.api.directory_servicer import DirectoryServicer
from cloud.api.interceptor import AuthInterceptor
from cloud.api.scan_servicer import ScanServicer
from cloud.api.spool_servicer import SpoolServicer
from cloud.api.tenant_servicer import TenantServicer
from cloud.blobs import BlobStore, LocalBlobStore, S3BlobStore
from cloud.bus import InProcessBus, RedisBus
from cloud.config import CloudConfig
from cloud.connectors import AzureAdSync, SecretBox
from cloud.db.engine import Database
from cloud.db.migrate import upgrade_async
from cloud.domain.accounting import Accounting
from cloud.domain.auth import Auth
from cloud.domain.delivery import CloudDelivery
from cloud.domain.devices import Devices
from cloud.domain.directory import Directory
from cloud.domain.ratelimit import AttemptLimiter, AttemptRule, InProcessAttempts, RedisAttempts
from cloud.domain.runtime import Runtime, Settings
from cloud.domain.scans import Scans
from cloud.domain.spool import Spool
from cloud.domain.tenants import Tenants
from cloud.domain.tokens import TokenSigner
from cloud.nodelink.servicer import NodeLinkServicer

log = logging.getLogger(__name__)

# Chunks are at most 1 MiB; leave room for the envelope and a header.
MAX_MESSAGE_BYTES = 8 << 20


def load_secret(path: Path) -> bytes:
    """A signing key (tokens, blob URLs), created with mode 0600 on first run."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise SystemExit(f"{path} holds a key shorter than 32 bytes")
    return key


def blob_store(config: CloudConfig) -> BlobStore:
    if config.s3 is not None:
        return S3BlobStore(
            bucket=config.s3.bucket,
            staging_dir=config.state_dir / "staging",
            endpoint_url=config.s3.endpoint_url,
            region=config.s3.region,
            access_key=config.s3.access_key,
            secret_key=config.s3.secret_key,
            create_bucket=True,
        )
    # The folder's URLs get a key of their own: the gateway that serves them must read it, and
    # must never hold the token-signing key (it could mint access tokens).
    url_key = load_secret(config.blob_url_key_file)
    return LocalBlobStore(config.blob_dir, config.public_url, url_key)


async def build_runtime(config: CloudConfig) -> Runtime:
    """Migrates the database and opens everything the domain needs."""
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await upgrade_async(config.database_url)
    key = load_secret(config.secret_file)
    return Runtime(
        db=Database(config.database_url),
        blobs=blob_store(config),
        signer=TokenSigner(key=key, access_ttl=config.access_token_ttl),
        settings=Settings(
            max_job_bytes=config.max_job_bytes,
            refresh_token_ttl=config.refresh_token_ttl,
            default_job_retention=config.default_job_retention,
            public_url=config.public_url,
            node_heartbeat=config.node_heartbeat,
        ),
        bus=RedisBus(config.redis_url) if config.redis_url else InProcessBus(),
    )


def azure_ad_sync(rt: Runtime, config: CloudConfig) -> AzureAdSync:
    """The Azure AD connector; its client secrets are sealed with a key of the cloud's home."""
    box = SecretBox(load_secret(config.connector_key_file))
    return AzureAdSync(rt, box, lease=config.connector_lease)


def tls_files(config: CloudConfig) -> TlsFiles:
    if config.tls_cert and config.tls_key:
        return TlsFiles(ca_cert=config.tls_cert, cert=config.tls_cert, key=config.tls_key)
    return ensure_dev_pki(config.tls_dir, config.tls_hostnames)


def attempt_limiter(config: CloudConfig) -> AttemptLimiter:
    """Failed log-in counters: in Redis when the replicas share one, in this process otherwise."""
    window, lockout = config.auth_failure_window, config.auth_lockout
    return AttemptLimiter(
        RedisAttempts(config.redis_url) if config.redis_url else InProcessAttempts(),
        per_login=AttemptRule(config.auth_max_failures, window, lockout),
        per_device=AttemptRule(config.auth_device_max_failures, window, lockout),
    )


def grpc_server(rt: Runtime, limiter: AttemptLimiter | None = None) -> grpc.aio.Server:
    auth = Auth(rt, limiter)
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(rt.signer, auth)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(auth), server)
    tenant_pb2_grpc.add_TenantServiceServicer_to_server(TenantServicer(Tenants(rt)), server)
    directory_pb2_grpc.add_DirectoryServiceServicer_to_server(
        DirectoryServicer(Directory(rt)), server
    )
    device_pb2_grpc.add_DeviceServiceServicer_to_server(DeviceServicer(Devices(rt)), server)
    spool_pb2_grpc.add_SpoolServiceServicer_to_server(SpoolServicer(Spool(rt)), server)
    accounting_pb2_grpc.add_AccountingServiceServicer_to_server(
        AccountingServicer(Accounting(rt)), server
    )
    scan_pb2_grpc.add_ScanServiceServicer_to_server(ScanServicer(Scans(rt)), server)
    node_link_pb2_grpc.add_NodeLinkServiceServicer_to_server(NodeLinkServicer(rt, auth), server)
    return server


@dataclass
class RunningCloud:
    runtime: Runtime
    server: grpc.aio.Server
    port: int
    tls: TlsFiles
    config: CloudConfig
    azure_ad: AzureAdSync


async def _sweep_forever(rt: Runtime, every: float) -> None:
    spool = Spool(rt)
    while True:
        try:
            purged = await spool.sweep()
            if purged:
                log.info("retention sweep purged %d blobs", purged)
        except Exception:
            log.exception("retention sweep failed; retrying")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def running_cloud(config: CloudConfig) -> AsyncIterator[RunningCloud]:
    """Starts the cloud on config.listen (port 0: any free port) and stops it gracefully."""
    rt = await build_runtime(config)
    tls = tls_files(config)
    _, cert, key = tls.read()
    limiter = attempt_limiter(config)
    server = grpc_server(rt, limiter)
    port = server.add_secure_port(config.listen, grpc.ssl_server_credentials([(key, cert)]))
    if port == 0:
        raise SystemExit(f"cannot listen on {config.listen}")
    await server.start()
    sweeper = asyncio.create_task(_sweep_forever(rt, config.sweep_interval.total_seconds()))
    delivery = asyncio.create_task(
        CloudDelivery(rt, config.file_printer_root).run(recover=not config.redis_url)
    )
    azure_ad = azure_ad_sync(rt, config)
    tasks = [sweeper, delivery]
    if config.connector_poll > timedelta(0):
        tasks.insert(0, asyncio.create_task(azure_ad.run_schedule(config.connector_poll)))
    try:
        yield RunningCloud(rt, server, port, tls, config, azure_ad)
    finally:
        for task in tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("a background task of the cloud failed")
        await server.stop(grace=5)
        await limiter.close()
        await rt.blobs.close()
        await rt.bus.close()
        await rt.db.close()
