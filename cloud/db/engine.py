"""The database handle: one async engine and a session factory, SQLite or PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from printfabric.db_sqlite import engine_options
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

T = TypeVar("T")
_READ_ONLY = "printfabric_read_only"


async def run_to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Runs database work to its end even if the caller is cancelled meanwhile.

    A query cut off by cancellation can leave an aiosqlite connection inside a transaction that
    holds SQLite's write lock; the work takes milliseconds, so letting it finish is cheap. If the
    caller is gone, the outcome is still retrieved, so nothing is logged as never retrieved.
    """
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return await asyncio.shield(task)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine
        read_engine: AsyncEngine
        if self.is_sqlite:
            # SQLite has one writer at a time. Writers share one connection, so they queue on
            # the pool (an asyncio wait that hands over at once) rather than in SQLite's busy
            # handler (which sleeps 1, 2, 5, 10 ... ms between tries). Readers have their own
            # connections and, in WAL mode, read a snapshot without waiting for the writer.
            self.engine = create_async_engine(
                url,
                connect_args={"timeout": 30},
                **engine_options(url),
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
            )
            read_engine = create_async_engine(
                url,
                connect_args={"timeout": 30},
                execution_options={_READ_ONLY: True},
                **engine_options(url),
            )
            for engine in (self.engine, read_engine):
                _sqlite_serialized_writes(engine)
            _sqlite_wal(url)
        else:
            self.engine = create_async_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            read_engine = self.engine
        self._read_engine = read_engine
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        # For work that only reads (anything written in it is rolled back at the end).
        self.reader: async_sessionmaker[AsyncSession] = async_sessionmaker(
            read_engine, expire_on_commit=False
        )

    async def close(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


def _sqlite_wal(url: str) -> None:
    """Puts the database file in WAL mode (kept in the file) before any engine connects.

    Switching takes an exclusive lock; done in every new connection, two connections opened at
    once (the server's background loops and the first request) deadlock on it and one fails
    with "database is locked" after the busy timeout. Once, here, nothing competes.
    """
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def _sqlite_serialized_writes(engine: AsyncEngine) -> None:
    # pysqlite's implicit BEGIN upgrades read locks to write locks mid-transaction, which fails
    # at once under concurrency; BEGIN IMMEDIATE makes writers queue on busy_timeout instead.
    # Readers (Database.reader) take a deferred BEGIN: in WAL mode they never wait for writers.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
