"""Fixtures for the store tests: each store kind, opened in tmp_path and always closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from counterpoint.store import MemoryStore, SqliteStore, Store


def _make(kind: str, path: Path) -> Store:
    return MemoryStore() if kind == "memory" else SqliteStore(path)


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind (``s.db`` in tmp_path for SQLite), closed afterwards."""
    s = _make(store_kind, tmp_path / "s.db")
    yield s
    asyncio.run(s.close())


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[Callable[..., SqliteStore]]:
    """``open(path=tmp_path/'s.db', **options)``: SQLite stores closed at the end of the test
    (closing twice is allowed, so tests may close them earlier)."""
    opened: list[SqliteStore] = []

    def open_(path: Path | None = None, **options: object) -> SqliteStore:
        s = SqliteStore(path or tmp_path / "s.db", **options)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield open_
    for s in opened:
        asyncio.run(s.close())
