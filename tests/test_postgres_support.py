"""The PostgreSQL test helper: fresh databases on a real server, gone again afterwards."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy import URL, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support import postgres as support
from tests.support.postgres import (
    ENV_PRIVATE,
    ENV_URL,
    PostgresUnavailable,
    find_postgres_bindir,
    postgres_server,
)

pytestmark = pytest.mark.postgres

needs_initdb = pytest.mark.skipif(
    find_postgres_bindir() is None, reason="PostgreSQL (initdb) is not installed on this machine"
)


def _clear_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests of how the server is chosen state their own settings; the others honour the
    # caller's, so the suite can be pointed at any server.
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_PRIVATE, raising=False)


async def _roundtrip(url: str) -> None:
    """The database starts empty and takes a table, rows, and queries through SQLAlchemy."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            tables = await conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            )
            assert tables == 0
            await conn.execute(text("CREATE TABLE printer (id serial PRIMARY KEY, name text)"))
            await conn.execute(
                text("INSERT INTO printer (name) VALUES (:a), (:b)"),
                {"a": "Ground floor", "b": "Lab"},
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, name FROM printer ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "Ground floor"), (2, "Lab")]
    finally:
        await engine.dispose()


async def _scalar(url: URL | str, query: str, **params: object) -> object:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(query), params)
    finally:
        await engine.dispose()


async def _exists(admin: URL, name: str) -> bool:
    found = await _scalar(admin, "SELECT 1 FROM pg_database WHERE datname = :n", n=name)
    return found == 1


async def _gone(url: str) -> bool:
    """Whether the database of url no longer exists on its server."""
    try:
        return not await _exists(_admin_of(url), make_url(url).database or "")
    except OSError:
        # A private cluster is stopped at exit, and its databases go with it.
        return True


def _admin_of(url: str) -> URL:
    # Every server the helper uses has the maintenance database "postgres".
    return make_url(url).set(database="postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_fresh_database_roundtrip_and_dropped_at_exit() -> None:
    with postgres_server() as url:
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+asyncpg"
        name = parsed.database
        assert name is not None
        assert name.startswith("pf_test_")
        await _roundtrip(url)
        assert await _exists(_admin_of(url), name)
    assert await _gone(url)


async def test_each_context_gets_its_own_database() -> None:
    with postgres_server() as first, postgres_server() as second:
        assert make_url(first).database != make_url(second).database
        await _roundtrip(first)
        await _roundtrip(second)


async def test_database_is_dropped_despite_open_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The inner database lives on the outer one's server, which is still up to be asked
    # whether the database was dropped, even when it is a private cluster.
    with postgres_server() as outer:
        _clear_settings(monkeypatch)
        monkeypatch.setenv(ENV_URL, outer)
        with postgres_server() as url:
            engine = create_async_engine(url)
            conn = await engine.connect()
            await conn.execute(text("SELECT 1"))
        try:
            assert not await _exists(_admin_of(url), make_url(url).database or "")
        finally:
            # The server already ended that session; only the client side is left to discard.
            await conn.invalidate()
            await engine.dispose()


def test_works_from_synchronous_code() -> None:
    with postgres_server() as url:
        assert make_url(url).database


@needs_initdb
async def test_private_cluster_is_started_and_stopped() -> None:
    with postgres_server(prefer_private=True) as url:
        parsed = make_url(url)
        assert parsed.host == "127.0.0.1"
        assert parsed.port not in (None, 5432)
        await _roundtrip(url)
        data_dir = await _scalar(url, "SHOW data_directory")
        assert isinstance(data_dir, str)
        assert Path(data_dir).parent.name.startswith("pf-pg-")
        assert await _scalar(url, "SHOW fsync") == "off"
        assert await _scalar(url, "SHOW listen_addresses") == "127.0.0.1"
    assert not await asyncio.to_thread(Path(data_dir).exists)
    with pytest.raises(OSError):
        # Connection refused: the cluster is gone, and its database with it.
        await _scalar(url, "SELECT 1")


@needs_initdb
async def test_env_private_forces_the_private_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_settings(monkeypatch)
    monkeypatch.setenv(ENV_PRIVATE, "1")
    with postgres_server() as url:
        assert make_url(url).port != 5432
        await _roundtrip(url)


@needs_initdb
async def test_env_url_names_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_settings(monkeypatch)
    # A private cluster stands in for "some other server"; the URL is given the way a person
    # would write it, without the SQLAlchemy driver.
    with postgres_server(prefer_private=True) as other:
        port = make_url(other).port
        monkeypatch.setenv(ENV_URL, f"postgresql://postgres@127.0.0.1:{port}/postgres")
        with postgres_server() as url:
            parsed = make_url(url)
            assert parsed.drivername == "postgresql+asyncpg"
            assert parsed.port == port
            await _roundtrip(url)
        assert not await _exists(_admin_of(url), parsed.database or "")


def test_env_url_that_does_not_answer_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_settings(monkeypatch)
    monkeypatch.setenv(ENV_URL, f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres")
    with pytest.raises(PostgresUnavailable, match=ENV_URL), postgres_server():
        pass


def test_no_server_at_all_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_settings(monkeypatch)
    monkeypatch.setattr(support, "_LOCAL_PORT", _free_port())
    monkeypatch.setattr(support, "_BIN_GLOB", "/nonexistent/postgresql/*/bin")
    with pytest.raises(RuntimeError, match="Debian package `postgresql`"), postgres_server():
        pass
