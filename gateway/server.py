"""Runs the gateway: TLS (>= 1.2) HTTP server on uvicorn, gRPC channel to the cloud."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from printfabric.mfp import UserTokenSigner, build_mfp_app
from printfabric.mfp.cloud import CloudMfpBackend
from printfabric.mfp.tokens import load_or_create_key
from printfabric.tls import TlsFiles, ensure_dev_pki

from gateway.app import GatewaySettings, build_app, with_mfp_api
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


def _listen_socket(config: GatewayConfig) -> socket.socket:
    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets that say so, and with
    # Nagle on, every answer over TLS waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, config.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {config.listen}: {exc.strerror}") from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process that embeds it decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[RunningGateway]:
    """Starts the gateway on config.listen (port 0: any free port) and stops it on exit."""
    try:
        ca_pem = config.cloud_ca.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the cloud's CA certificate {config.cloud_ca} "
            "(PF_GATEWAY_CLOUD_CA): {exc.strerror}"
        ) from exc
    tls = tls_files(config)
    upstream = Upstream(config.cloud_target, ca_pem, config.auth_cache_seconds)
    signer = UserTokenSigner(load_or_create_key(config.mfp_key_path), config.mfp_session_seconds)
    app = with_mfp_api(
        build_app(upstream, GatewaySettings(default_company=config.default_company)),
        build_mfp_app(CloudMfpBackend(upstream.channel, signer)),
    )
    sock = _listen_socket(config)
    uv_config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_keep_alive=int(config.idle_timeout),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
    )
    uv_config.load()
    assert uv_config.ssl is not None
    uv_config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets: CUPS's libcups (ipptool, lpadmin, the ipps backend) drops the
    # connection after the first answer when it gets them, and reconnects forever.
    uv_config.ssl.num_tickets = 0
    server = _Server(uv_config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the gateway stopped while starting")
        await asyncio.sleep(0.02)
    port = sock.getsockname()[1]
    log.info("gateway listening on %s:%d", config.host, port)
    try:
        yield RunningGateway(port=port, ca_cert=tls.ca_cert, server=server)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
        await upstream.close()
