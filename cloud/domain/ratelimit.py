"""Failed log-in attempts counted per login and per device; too many lock the counter a while.

A counter's window opens with its first failure; the failure that reaches the rule's maximum
locks it for the lockout, and while it is locked every attempt it covers is refused, a right
secret included (otherwise it would be no lock). Counters live in Redis when the cloud has one
(shared by every replica), in this process otherwise. Time comes from the runtime's clock, so
the same code runs under tests that move it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis

from cloud.errors import ResourceExhausted


@dataclass(frozen=True)
class AttemptRule:
    """At most max_failures failures within window; then locked for lockout. 0: no limit."""

    max_failures: int
    window: timedelta
    lockout: timedelta


@dataclass(frozen=True)
class Counter:
    """One count of failures: its key, its rule, and how a person is told about its lock."""

    key: str
    rule: AttemptRule
    # "for this login", "at this device"
    scope: str


class TooManyAttempts(ResourceExhausted):
    def __init__(self, scope: str, seconds: int) -> None:
        super().__init__(
            f"too many failed attempts {scope}; try again in {say_duration(seconds)}",
            reason="TOO_MANY_ATTEMPTS",
            retry_after=seconds,
        )


def say_duration(seconds: int) -> str:
    """'4 min 10 s', '5 min', '45 s'."""
    minutes, rest = divmod(max(1, seconds), 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _ms(value: datetime | timedelta) -> int:
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    return int(value.timestamp() * 1000)


class AttemptStore(Protocol):
    async def locked_ms(self, keys: Sequence[str], now_ms: int) -> list[int]:
        """For each key, how many ms its lock still holds (0: not locked)."""
        ...

    async def fail(self, key: str, rule: AttemptRule, now_ms: int) -> int:
        """Counts a failure; returns the ms of the lock it is under now (0: none)."""
        ...

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _State:
    window_start: int = 0
    failures: int = 0
    locked_until: int = 0


def _fail(state: _State, rule: AttemptRule, now: int) -> int:
    """The counting rule, shared word for word with the Redis script below."""
    if state.locked_until > now:
        return state.locked_until - now
    if now - state.window_start >= _ms(rule.window):
        state.window_start, state.failures = now, 0
    state.failures += 1
    if state.failures >= rule.max_failures:
        state.window_start, state.failures = now, 0
        state.locked_until = now + _ms(rule.lockout)
        return state.locked_until - now
    return 0


class InProcessAttempts:
    """Counters in this process (one cloud process). Stale counters are dropped as it grows."""

    _PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._states: dict[str, tuple[_State, int]] = {}
        self._prune_at = self._PRUNE_AT

    async def locked_ms(self, keys: Sequence[str], now_ms: int) -> list[int]:
        out = []
        for key in keys:
            entry = self._states.get(key)
            out.append(max(0, entry[0].locked_until - now_ms) if entry else 0)
        return out

    async def fail(self, key: str, rule: AttemptRule, now_ms: int) -> int:
        state, _ = self._states.get(key, (None, 0))
        if state is None:
            state = _State()
            self._prune(now_ms)
        locked = _fail(state, rule, now_ms)
        # A counter matters until its window and any lock have both run out.
        forget_at = max(state.window_start + _ms(rule.window), state.locked_until)
        self._states[key] = (state, forget_at)
        return locked

    async def clear(self, key: str) -> None:
        self._states.pop(key, None)

    async def close(self) -> None:
        self._states.clear()

    def _prune(self, now_ms: int) -> None:
        if len(self._states) < self._prune_at:
            return
        for key in [k for k, (_, forget_at) in self._states.items() if forget_at <= now_ms]:
            del self._states[key]
        # Under a flood of distinct keys, prune again only after as many new ones again.
        self._prune_at = max(self._PRUNE_AT, 2 * len(self._states))


# The same rule as _fail, atomic in Redis. A hash per counter; it expires (Redis time) once its
# window and lock are surely over, so Redis keeps nothing for long.
_FAIL_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local lockout = tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'start', 'failures', 'until')
local start = tonumber(v[1]) or 0
local failures = tonumber(v[2]) or 0
local locked = tonumber(v[3]) or 0
if locked > now then return locked - now end
if now - start >= window then start = now; failures = 0 end
failures = failures + 1
local result = 0
if failures >= max then
  start = now; failures = 0; locked = now + lockout; result = lockout
end
redis.call('HSET', KEYS[1], 'start', start, 'failures', failures, 'until', locked)
redis.call('PEXPIRE', KEYS[1], window + lockout)
return result
"""


class RedisAttempts:
    """Counters in Redis, shared by every cloud replica."""

    def __init__(self, url: str, prefix: str = "pf.auth.") -> None:
        self.client: Any = aioredis.from_url(url)  # type: ignore[no-untyped-call]
        self.prefix = prefix
        self._fail = self.client.register_script(_FAIL_SCRIPT)

    async def locked_ms(self, keys: Sequence[str], now_ms: int) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self.prefix + key, "until")
            values = await pipe.execute()
        return [max(0, int(v) - now_ms) if v else 0 for v in values]

    async def fail(self, key: str, rule: AttemptRule, now_ms: int) -> int:
        args = [now_ms, _ms(rule.window), rule.max_failures, _ms(rule.lockout)]
        return int(await self._fail(keys=[self.prefix + key], args=args))

    async def clear(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def close(self) -> None:
        await self.client.aclose()


class AttemptLimiter:
    """Refuses attempts under a lock and counts failures; the caller says which counters apply."""

    def __init__(self, store: AttemptStore, per_login: AttemptRule, per_device: AttemptRule):
        self.store = store
        self.per_login = per_login
        self.per_device = per_device

    @classmethod
    def in_process(cls) -> AttemptLimiter:
        return cls(InProcessAttempts(), DEFAULT_PER_LOGIN, DEFAULT_PER_DEVICE)

    def login(self, tenant_id: str, login_key: str) -> Counter:
        return Counter(f"{tenant_id}:login:{login_key}", self.per_login, "for this login")

    def device(self, tenant_id: str, device_id: str) -> Counter:
        """A device of the tenant; '' counts the attempts that name no known device together."""
        return Counter(
            f"{tenant_id}:device:{device_id or '-'}",
            self.per_device,
            "at this device" if device_id else "with PINs and cards given without a device",
        )

    async def check(self, counters: Sequence[Counter], now: datetime) -> None:
        """Raises TooManyAttempts if any of the counters is locked."""
        active = [c for c in counters if c.rule.max_failures > 0]
        if not active:
            return
        remaining = await self.store.locked_ms([c.key for c in active], _ms(now))
        _raise_longest(active, remaining)

    async def failed(self, counters: Sequence[Counter], now: datetime) -> None:
        """Counts a failure on every counter; raises TooManyAttempts if that locked one."""
        active = [c for c in counters if c.rule.max_failures > 0]
        remaining = [await self.store.fail(c.key, c.rule, _ms(now)) for c in active]
        _raise_longest(active, remaining)

    async def succeeded(self, counter: Counter) -> None:
        await self.store.clear(counter.key)

    async def close(self) -> None:
        await self.store.close()


def _raise_longest(counters: Sequence[Counter], remaining_ms: Sequence[int]) -> None:
    longest = max(zip(remaining_ms, range(len(counters)), strict=True), default=(0, 0))
    if longest[0] > 0:
        raise TooManyAttempts(counters[longest[1]].scope, math.ceil(longest[0] / 1000))


DEFAULT_PER_LOGIN = AttemptRule(5, timedelta(minutes=5), timedelta(minutes=5))
DEFAULT_PER_DEVICE = AttemptRule(20, timedelta(minutes=5), timedelta(minutes=5))
