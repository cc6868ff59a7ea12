"""What only the SQLite store does: WAL, reopening, schema versions, damaged, locked and full
files, one frame per append, blobs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.errors import StoreError
from counterpoint.runner import resume
from counterpoint.store import (
    BLOB_THRESHOLD,
    SCHEMA_VERSION,
    Entry,
    RunInfo,
    SqliteStore,
    default_path,
    open_store,
    replay,
)

Factory = Callable[..., SqliteStore]


def info(run_id: str, created_at: float = 1.0) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        workflow="wf",
        source="<python>",
        fingerprint="f" * 64,
        definition="{}",
        inputs={"x": [1, 2]},
        options={"fail_fast": False},
        agents={"a": "fn"},
        created_at=created_at,
        pid=1,
        host="h",
        version="0.1.0",
    )


def batch(first: int, last: int) -> list[Entry]:
    return [
        Entry(s, "event", "a", 0, 1000.0 + s / 3, json.dumps({"n": s}))
        for s in range(first, last + 1)
    ]


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the file, closed at the end."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def test_the_file_is_in_wal_mode(sqlite_factory: Factory, tmp_path: Path) -> None:
    sqlite_factory()
    with raw(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_the_folder_is_created(sqlite_factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "runs.db"
    s = sqlite_factory(path)
    assert path.is_file()
    assert s.location == str(path)


def test_reopening_keeps_everything(sqlite_factory: Factory, tmp_path: Path) -> None:
    big = json.dumps("z" * (BLOB_THRESHOLD + 5))

    async def write() -> None:
        s = sqlite_factory()
        await s.create_run(info("r1", 1.0))
        await s.create_run(info("r2", 2.0))
        await s.append("r1", batch(1, 3))
        await s.append("r1", [Entry(4, "succeeded", "a", 1, 5.0, big)])
        await s.append("r2", batch(1, 1))
        await s.update_run("r1", status="failed", error="boom", finished_at=9.5)
        await s.close()

    async def read() -> None:
        s = sqlite_factory()
        got = await s.get_run("r1")
        assert (got.status, got.error, got.finished_at, got.inputs) == (
            "failed",
            "boom",
            9.5,
            {"x": [1, 2]},
        )
        assert [r.run_id for r in await s.list_runs()] == ["r2", "r1"]
        assert await s.entries("r1") == [*batch(1, 3), Entry(4, "succeeded", "a", 1, 5.0, big)]
        assert await s.entries("r2") == batch(1, 1)
        # the numbering goes on from what the file holds
        with pytest.raises(StoreError, match="not after 4"):
            await s.append("r1", batch(4, 4))
        await s.append("r1", batch(5, 5))
        assert [e.seq for e in await s.entries("r1")] == [1, 2, 3, 4, 5]
        assert s.integrity_check() == "ok"

    asyncio.run(write())
    asyncio.run(read())


def test_two_stores_on_one_file_see_each_other(sqlite_factory: Factory) -> None:
    async def body() -> None:
        one, two = sqlite_factory(), sqlite_factory()
        await one.create_run(info("r1"))
        await one.append("r1", batch(1, 2))
        assert await two.entries("r1") == batch(1, 2)
        # the second one knows where the first one's journal is, and refuses to overwrite it
        with pytest.raises(StoreError, match="another process"):
            await two.append("r1", batch(2, 2))
        assert await one.entries("r1") == batch(1, 2)

    asyncio.run(body())


def test_one_row_per_append_and_big_data_in_blobs(sqlite_factory: Factory, tmp_path: Path) -> None:
    big = json.dumps("q" * (BLOB_THRESHOLD + 1))

    async def body() -> None:
        s = sqlite_factory()
        await s.create_run(info("r1"))
        await s.append("r1", batch(1, 5))
        await s.append("r1", [Entry(6, "succeeded", "a", 1, 6.0, big), *batch(7, 8)])
        await s.append("r1", batch(9, 9))
        await s.create_run(info("r2"))
        await s.append("r2", [Entry(1, "succeeded", "a", 1, 6.0, big)])  # the same blob
        assert (await s.entries("r1"))[5].data == big

    asyncio.run(body())
    with raw(tmp_path / "s.db") as conn:
        frames = conn.execute("SELECT run, first, last FROM journal ORDER BY run, first").fetchall()
        assert [(f, last) for _, f, last in frames] == [(1, 5), (6, 8), (9, 9), (1, 1)]
        assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 1
        # the frame does not hold the big text itself
        sizes = [n for (n,) in conn.execute("SELECT length(entries) FROM journal")]
        assert max(sizes) < 10_000


def test_a_missing_blob_is_reported(sqlite_factory: Factory, tmp_path: Path) -> None:
    big = json.dumps("m" * (BLOB_THRESHOLD + 1))

    async def body() -> None:
        s = sqlite_factory()
        await s.create_run(info("r1"))
        await s.append("r1", [Entry(1, "succeeded", "a", 1, 1.0, big)])
        with raw(tmp_path / "s.db") as conn:
            conn.execute("DELETE FROM blobs")
        with pytest.raises(StoreError, match=r"blob [0-9a-f]+ is missing") as caught:
            await s.entries("r1")
        assert str(tmp_path / "s.db") in str(caught.value)

    asyncio.run(body())


def test_text_that_is_not_utf8_is_refused_as_a_store_error(sqlite_factory: Factory) -> None:
    """A lone surrogate cannot be written as UTF-8: the store says so, writes nothing, and
    goes on working."""

    async def body() -> None:
        s = sqlite_factory()
        await s.create_run(info("r1"))
        await s.append("r1", batch(1, 1))
        with pytest.raises(StoreError):
            await s.append("r1", [Entry(2, "succeeded", "a", 1, 2.0, '"bad \ud800"')])
        assert await s.entries("r1") == batch(1, 1)
        await s.append("r1", batch(2, 2))
        assert await s.entries("r1") == batch(1, 2)

    asyncio.run(body())


def test_integrity_check_is_ok(sqlite_factory: Factory) -> None:
    s = sqlite_factory()
    asyncio.run(s.create_run(info("r1")))
    assert s.integrity_check() == "ok"


def test_a_store_from_a_newer_counterpoint_is_refused(
    sqlite_factory: Factory, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer counterpoint") as caught:
        sqlite_factory(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema {SCHEMA_VERSION + 1}" in message
    with raw(path) as conn:  # left as it was
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"future"}


def test_an_empty_sqlite_file_is_made_a_store(sqlite_factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with raw(path) as conn:
        conn.execute("PRAGMA user_version=0")
    s = sqlite_factory(path)
    asyncio.run(s.create_run(info("r1")))
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not a database at all\n" * 200, id="text"),
        pytest.param(bytes(range(256)) * 64, id="binary"),
    ],
)
def test_a_corrupt_file_is_refused_and_left_alone(
    sqlite_factory: Factory, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        sqlite_factory(path)
    message = str(caught.value)
    assert str(path) in message
    assert "not a counterpoint store or is damaged" in message
    assert path.read_bytes() == content


def test_a_locked_store_says_so_and_recovers(sqlite_factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def body() -> None:
        s = sqlite_factory(path, busy_timeout=0.1)
        await s.create_run(info("r1"))
        await s.append("r1", batch(1, 3))
        with raw(path) as other:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreError, match="locked") as caught:
                await s.append("r1", batch(4, 4))
            message = str(caught.value)
            assert str(path) in message
            assert "0.1s" in message
            with pytest.raises(StoreError, match="locked"):
                await s.create_run(info("r2", 2.0))
            with pytest.raises(StoreError, match="locked"):
                await s.update_run("r1", status="failed")
            other.execute("ROLLBACK")
        # the lock is gone: the same entries go in, nothing was lost or doubled
        await s.append("r1", batch(4, 4))
        await s.create_run(info("r2", 2.0))
        await s.update_run("r1", status="failed")
        assert await s.entries("r1") == batch(1, 4)
        assert [r.run_id for r in await s.list_runs()] == ["r2", "r1"]
        assert (await s.get_run("r1")).status == "failed"
        assert s.integrity_check() == "ok"

    asyncio.run(body())


def test_a_locked_store_can_still_be_read(sqlite_factory: Factory, tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def body() -> None:
        s = sqlite_factory(path, busy_timeout=0.1)
        await s.create_run(info("r1"))
        await s.append("r1", batch(1, 2))
        with raw(path) as other:
            other.execute("BEGIN EXCLUSIVE")
            assert await s.entries("r1") == batch(1, 2)
            assert (await s.get_run("r1")).run_id == "r1"
            other.execute("ROLLBACK")

    asyncio.run(body())


def test_a_full_store_keeps_what_it_had_and_the_run_resumes(
    sqlite_factory: Factory, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    calls: list[str] = []

    async def work(ctx: cp.StepContext) -> object:
        calls.append(ctx.step_id)
        return {"step": ctx.step_id, "up": sorted(ctx.upstream), "pad": "x" * 3000}

    b = cp.WorkflowBuilder("filling")
    b.agent("work", function=work)
    prev: tuple[str, ...] = ()
    ids = []
    for i in range(12):
        ids.append(b.step(f"s{i:02d}", agent="work", needs=prev))
        prev = (ids[-1],)
    wf = b.build()

    async def first() -> str:
        s = sqlite_factory(path, max_bytes=80 * 1024)  # about 5 of the 12 steps fit
        result = await cp.run(wf, store=s)
        assert result.status is cp.RunStatus.FAILED
        assert result.error is not None
        assert "full" in result.error
        assert str(path) in result.error
        await s.close()
        return result.run_id

    run_id = asyncio.run(first())
    first_calls = list(calls)
    calls.clear()

    async def second() -> None:
        s = sqlite_factory(path)  # no cap any more
        assert s.integrity_check() == "ok"
        journal = await s.entries(run_id)
        # everything journaled before the disk filled up is there, in order
        assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
        assert journal[0].kind == "run-started"
        states = replay(journal)
        done = [sid for sid, st in states.items() if st.status == "succeeded"]
        assert 1 <= len(done) < len(ids), "the cap should stop the run part way"
        assert done == ids[: len(done)]
        for sid in done:
            assert states[sid].output == {
                "step": sid,
                "up": [ids[ids.index(sid) - 1]] if sid != "s00" else [],
                "pad": "x" * 3000,
            }
        assert (await s.get_run(run_id)).status == "failed"

        result = await resume(run_id, store=s, workflow=wf)
        assert result.status is cp.RunStatus.SUCCEEDED
        assert calls == ids[len(done) :]  # only the steps that had not succeeded
        assert first_calls[: len(done)] == done
        assert len(first_calls) - len(done) in (0, 1)  # one more, if its success was not kept
        assert all(result.steps[sid].restored for sid in done)
        assert result.outputs[ids[-1]] == {"step": ids[-1], "up": [ids[-2]], "pad": "x" * 3000}
        assert (await s.get_run(run_id)).status == "succeeded"
        assert [e.seq for e in await s.entries(run_id)] == list(
            range(1, len(await s.entries(run_id)) + 1)
        )

    asyncio.run(second())


def test_default_path_and_open_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_factory: Factory
) -> None:
    monkeypatch.delenv("COUNTERPOINT_HOME", raising=False)
    assert default_path() == Path(".counterpoint") / "store.db"
    monkeypatch.setenv("COUNTERPOINT_HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "store.db"
    assert default_path(tmp_path / "dir") == tmp_path / "dir" / "store.db"
    assert default_path(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    assert default_path(str(tmp_path / "y.db")) == tmp_path / "y.db"
    s = open_store(tmp_path / "dir", busy_timeout=0.5)
    try:
        assert s.path == tmp_path / "dir" / "store.db"
        assert s.busy_timeout == 0.5
        assert s.path.is_file()
    finally:
        asyncio.run(s.close())
