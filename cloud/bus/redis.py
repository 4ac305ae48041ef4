"""The Redis bus: pub/sub between cloud replicas, presence keys with TTL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

# Delete the key only if it still holds our value: another replica may have taken the node over.
_CLEAR_IF_OWNED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Subscription:
    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub

    async def __aiter__(self) -> AsyncIterator[str]:
        async for message in self.pubsub.listen():
            if message.get("type") == "message":
                channel = message["channel"]
                yield channel.decode() if isinstance(channel, bytes) else str(channel)


class RedisBus:
    def __init__(self, url: str) -> None:
        self.client: Any = aioredis.from_url(url)  # type: ignore[no-untyped-call]

    async def publish(self, topic: str) -> None:
        await self.client.publish(topic, b"1")

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[_Subscription]:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(*topics)
        try:
            yield _Subscription(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
            await pubsub.aclose()

    async def set_presence(self, key: str, value: str, ttl_seconds: float) -> None:
        await self.client.set(f"pf.presence.{key}", value, px=max(1, int(ttl_seconds * 1000)))

    async def get_presence(self, key: str) -> str | None:
        value = await self.client.get(f"pf.presence.{key}")
        return value.decode() if isinstance(value, bytes) else value

    async def clear_presence(self, key: str, value: str) -> None:
        await self.client.eval(_CLEAR_IF_OWNED, 1, f"pf.presence.{key}", value)

    async def close(self) -> None:
        await self.client.aclose()
