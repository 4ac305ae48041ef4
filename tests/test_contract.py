"""The contract and the schema stay true: stubs regenerated, buf lint clean, migrations = models."""

from __future__ import annotations

import asyncio
import filecmp
import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from cloud.db.migrate import upgrade
from cloud.db.models import Base
from tests.tools.protogen import PROTO_ROOT, generate

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / ".venv" / "npm" / "node_modules" / ".bin" / "buf"


def test_generated_stubs_are_not_stale(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = tmp_path / "printfabric" / "v1"
    committed = PROTO_ROOT / "printfabric" / "v1"
    names = sorted(p.name for p in fresh.iterdir() if p.suffix in (".py", ".pyi"))
    assert names, "protoc generated nothing"
    stale = [
        n
        for n in names
        if not (committed / n).exists() or not filecmp.cmp(fresh / n, committed / n, shallow=False)
    ]
    assert stale == [], f"run `make proto`: {stale} differ from the .proto files"
    extra = sorted(
        p.name
        for p in committed.iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")) and p.name not in names
    )
    assert extra == [], f"generated files without a .proto: {extra}"


def test_buf_lint_is_clean() -> None:
    if not BUF.exists():
        pytest.fail(
            f"buf is not installed at {BUF}: run `make test` (it installs @bufbuild/buf from npm)"
        )
    result = subprocess.run(
        [str(BUF), "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    upgrade(database_url)

    async def diff() -> list[object]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []
