"""SQLAlchemy's aiosqlite driver with one thread hop per statement instead of four.

SQLAlchemy's aiosqlite adapter runs every statement as four calls on aiosqlite's connection
thread (make a cursor, execute, fetch all, close), each a round trip between the event loop and
that thread: about 100 µs apiece, so 400 µs for `SELECT 1`. Here one function does the four on
the connection's thread, and the statement costs one round trip. Nothing else changes: same
dialect, same URL (`sqlite+aiosqlite://`), same connection, transactions and errors.

Used through `engine_options()`, which the cloud's and the node's engines pass to
create_async_engine. It calls aiosqlite's `Connection._execute` (the function its own public
methods go through), which is why pyproject.toml pins aiosqlite's minor versions.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

# (description, rows, lastrowid, rowcount) of one statement, as the cursor would show them.
_Outcome = tuple[Any, list[Any], int | None, int]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """One statement, on the connection's own thread: everything SQLAlchemy reads after it."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, operation: str, seq_of_parameters: Any) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return None, [], cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _hop(self, fn: Any, operation: Any, parameters: Any) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            description, rows, lastrowid, rowcount = self.await_(
                connection._execute(fn, connection._conn, operation, parameters)  # type: ignore[no-untyped-call]
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = description
        self._rows = deque(rows)
        self.lastrowid = lastrowid
        self.rowcount = rowcount

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._hop(_run, operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._hop(_run_many, operation, seq_of_parameters)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            return super().cursor(server_side=True)
        return _OneHopCursor(self)


class _OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # SQLAlchemy's connect() opens the connection (and marks its thread a daemon); only
        # the cursor differs, so the adapter it made takes this class (no fields of its own).
        adapted = super().connect(*arg, **kw)
        if type(adapted) is AsyncAdapt_aiosqlite_connection:
            adapted.__class__ = _OneHopConnection
        return adapted


def engine_options(url: str) -> dict[str, Any]:
    """create_async_engine's keywords for an aiosqlite url: this driver, and no rollback when
    a connection goes back to the pool.

    The pool's rollback is one more thread hop per session, and here it has nothing to undo:
    the engines run pysqlite in autocommit mode with explicit BEGINs (see their "begin"
    listeners), and a Session or Connection that ends rolls back its own transaction first.
    """
    if not url.startswith("sqlite+aiosqlite:"):
        return {}
    return {"module": _OneHopDbapi(aiosqlite, sqlite3), "pool_reset_on_return": None}
