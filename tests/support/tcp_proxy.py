"""A TCP proxy on loopback that can break one connection on purpose, for network-drop tests.

It relays bytes as they are (TLS passes through untouched), in a thread of its own so that
subprocess clients and a subprocess fabric can both use it. Arm one fault at a time:
- `cut_request_after(n)`: the next connection that has sent n bytes towards the server is cut
  there, both ways (an upload that breaks off midway);
- `drop_answer_after(n)`: the next connection that has sent at least n bytes towards the server
  is cut when the server starts answering, so the server did the work but the client never
  hears of it (the case an idempotency key is for).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass
class _Fault:
    kind: str  # "cut" or "drop"
    after: int


class TcpProxy:
    def __init__(self, target_port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.faults_fired = 0
        self._fault: _Fault | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> TcpProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut_request_after(self, n: int) -> None:
        with self._lock:
            self._fault = _Fault("cut", n)

    def drop_answer_after(self, n: int) -> None:
        with self._lock:
            self._fault = _Fault("drop", n)

    @property
    def armed(self) -> bool:
        with self._lock:
            return self._fault is not None

    def _take(self, sent: int, kind: str) -> bool:
        """Whether the armed fault of kind fires for a connection that has sent `sent` bytes."""
        with self._lock:
            fault = self._fault
            if fault is None or fault.kind != kind or sent < fault.after:
                return False
            self._fault = None
            self.faults_fired += 1
            return True

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._relay, self.host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    @staticmethod
    async def _both(*work: Coroutine[Any, Any, None]) -> None:
        await asyncio.gather(*work, return_exceptions=True)

    @staticmethod
    async def _flag(event: asyncio.Event) -> None:
        await event.wait()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_w.close()
            return
        sent = 0
        doomed = asyncio.Event()

        async def upstream() -> None:
            nonlocal sent
            while data := await client_r.read(1 << 16):
                if self._take(sent + len(data), "cut"):
                    doomed.set()
                    return
                sent += len(data)
                server_w.write(data)
                await server_w.drain()
            server_w.write_eof()

        async def downstream() -> None:
            while data := await server_r.read(1 << 16):
                if self._take(sent, "drop"):
                    doomed.set()
                    return
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        both = asyncio.ensure_future(self._both(upstream(), downstream()))
        stop = asyncio.ensure_future(self._flag(doomed))
        try:
            await asyncio.wait([both, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            both.cancel()
            stop.cancel()
            for writer in (client_w, server_w):
                transport = writer.transport
                if doomed.is_set():
                    transport.abort()
                else:
                    transport.close()
