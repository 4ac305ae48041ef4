"""Runs the gateway: TLS (>= 1.2) HTTP server on uvicorn, gRPC channel to the cloud."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from printfabric.https import listen_socket, serving
from printfabric.mfp import UserTokenSigner, build_mfp_app
from printfabric.mfp.cloud import CloudMfpBackend
from printfabric.mfp.tokens import load_or_create_key
from printfabric.tls import TlsFiles, ensure_dev_pki

from gateway.app import GatewaySettings, build_app, with_mfp_api
from gateway.blob_urls import BlobFolder, BlobKeyError
from gateway.config import ConfigError, GatewayConfig
from gateway.upstream import Upstream

log = logging.getLogger(__name__)


@dataclass
class RunningGateway:
    port: int
    ca_cert: Path
    server: uvicorn.Server


def tls_files(config: GatewayConfig) -> TlsFiles:
    """The configured certificate, else one from the dev CA in $PF_HOME/tls (made if missing)."""
    if config.tls_cert and config.tls_key:
        return TlsFiles(ca_cert=config.tls_cert, cert=config.tls_cert, key=config.tls_key)
    return ensure_dev_pki(config.tls_dir, config.tls_hostnames)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[RunningGateway]:
    """Starts the gateway on config.listen (port 0: any free port) and stops it on exit."""
    try:
        ca_pem = config.cloud_ca.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the cloud's CA certificate {config.cloud_ca} "
            f"(PF_GATEWAY_CLOUD_CA): {exc.strerror}"
        ) from exc
    blobs = BlobFolder(config.blob_dir, config.blob_key_path)
    try:
        blobs.check()
    except BlobKeyError as exc:
        raise ConfigError(f"{exc} (PF_GATEWAY_BLOB_KEY)") from exc
    tls = tls_files(config)
    upstream = Upstream(config.cloud_target, ca_pem, config.auth_cache_seconds)
    signer = UserTokenSigner(load_or_create_key(config.mfp_key_path), config.mfp_session_seconds)
    settings = GatewaySettings(default_company=config.default_company, blob_folder=blobs)
    app = with_mfp_api(
        build_app(upstream, settings),
        build_mfp_app(CloudMfpBackend(upstream.channel, signer)),
    )
    try:
        sock = listen_socket(config.host, config.port)
    except OSError as exc:
        await upstream.close()
        raise ConfigError(f"cannot listen on {config.listen}: {exc.strerror}") from exc
    try:
        async with serving(
            app, sock, tls.cert, tls.key, idle_timeout=config.idle_timeout, name="gateway"
        ) as server:
            port = sock.getsockname()[1]
            log.info("gateway listening on %s:%d", config.host, port)
            yield RunningGateway(port=port, ca_cert=tls.ca_cert, server=server)
    finally:
        sock.close()
        await upstream.close()
