"""The one-hop aiosqlite driver (printfabric.db_sqlite) under the cloud's Database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cloud.db.engine import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
    async with database.session() as session, session.begin():
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield database
    await database.close()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls made on aiosqlite's connection threads, by name."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


async def test_a_statement_is_one_hop_and_a_reader_three(db: Database, hops: list[str]) -> None:
    async with db.reader() as session:
        await session.execute(text("SELECT 1"))  # the pool's connection is made here
    hops.clear()
    async with db.reader() as session:
        assert (await session.execute(text("SELECT 41 + 1"))).scalar_one() == 42
    # BEGIN, the SELECT, the session's ROLLBACK; no extra rollback from the pool.
    assert hops == ["_run", "_run", "rollback"]


async def test_rows_rowcount_lastrowid_and_executemany(db: Database) -> None:
    async with db.session() as session, session.begin():
        inserted = await session.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.lastrowid == 1  # type: ignore[attr-defined]
        await session.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        changed = await session.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert changed.rowcount == 2  # type: ignore[attr-defined]
    async with db.reader() as session:
        rows = (await session.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!")]


async def test_errors_are_sqlalchemys_and_the_transaction_is_undone(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.session() as session, session.begin():
            await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
            await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
    async with db.reader() as session:
        count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
    assert count == 0
    # The writer connection is usable again (no transaction left open on it).
    async with db.session() as session, session.begin():
        await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
