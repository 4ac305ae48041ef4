"""Shared fixtures: a real cloud on TLS over SQLite and over a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.cups import cups_avahi, cupsd, ippeveprinter, ipptool_dir  # noqa: F401
from tests.support.fabric import CloudHarness, cloud_harness
from tests.support.lpd_peer import cups_lpd  # noqa: F401
from tests.support.postgres import postgres_server
from tests.support.processes import RedisServer, require_peer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One real PostgreSQL database for the session; tenants keep tests apart."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the module (replicas sharing a bus, rate limits)."""
    program = require_peer("redis-server", "redis-server")
    where = tmp_path_factory.mktemp("redis")
    server = RedisServer(program, where, where / "redis.log")
    try:
        server.start_ready()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cloud.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def cloud(tmp_path: Path, database_url: str) -> AsyncIterator[CloudHarness]:
    async with cloud_harness(tmp_path / "home", database_url) as harness:
        yield harness


@pytest.fixture
async def sqlite_cloud(tmp_path: Path) -> AsyncIterator[CloudHarness]:
    """For tests about the transport or the process rather than the database."""
    async with cloud_harness(tmp_path / "home") as harness:
        yield harness
