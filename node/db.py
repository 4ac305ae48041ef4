"""The node's SQLite database: WAL so `run` and the CLI share it, writers queue on busy_timeout."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from printfabric.db_sqlite import engine_options
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from node.models import Base

BUSY_TIMEOUT_MS = 30_000


class NodeDatabase:
    """One async engine over the node's file and a session factory; `open` creates the schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        url = f"sqlite+aiosqlite:///{path}"
        self.engine: AsyncEngine = create_async_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **engine_options(url)
        )
        _configure_sqlite(self.engine)
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @classmethod
    async def open(cls, path: Path) -> NodeDatabase:
        _private_file(path)
        db = cls(path)
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        return db

    async def close(self) -> None:
        await self.engine.dispose()


def _private_file(path: Path) -> None:
    # The file holds password hashes and the tenant's credential key: owner only.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit BEGIN upgrades a read lock to a write lock mid-transaction, which
    # fails at once when `enqueue-usage` writes beside `run`; BEGIN IMMEDIATE makes writers
    # wait on busy_timeout instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
