"""Serving an ASGI app over HTTPS the way every PrintFabric listener does: TLS >= 1.2, no TLS 1.3
session tickets (libcups-based clients drop the connection after the first answer when they get
them), Nagle off (else every answer over TLS waits ~40 ms for the client's delayed ACK), and no
signal handling of uvicorn's own (the process that embeds it decides when to stop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn


def listen_socket(host: str, port: int, backlog: int = 512) -> socket.socket:
    """A bound, listening TCP socket with Nagle off; OSError if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio turns Nagle off only on sockets that say so.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: Any,
    sock: socket.socket,
    cert: Path,
    key: Path,
    *,
    idle_timeout: float = 30.0,
    name: str = "https",
) -> AsyncIterator[uvicorn.Server]:
    """Serves app on sock until the block ends (then stops it gracefully)."""
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_keep_alive=int(idle_timeout),
        timeout_graceful_shutdown=5,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    config.load()
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    config.ssl.num_tickets = 0
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"{name} stopped while starting")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
