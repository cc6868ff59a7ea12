"""The Store contract (store/base.py), checked on every store: MemoryStore and SqliteStore."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from counterpoint.errors import RunNotFound, StoreError
from counterpoint.store import BLOB_THRESHOLD, Entry, RunInfo, Store


def go(fn: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(fn())  # type: ignore[arg-type]


def info(run_id: str, *, workflow: str = "wf", created_at: float = 100.0, **kw: object) -> RunInfo:
    """A run with every field set to something other than its default."""
    values: dict[str, object] = {
        "run_id": run_id,
        "workflow": workflow,
        "source": "/tmp/flows/wf.yaml",
        "fingerprint": "ab" * 32,
        "definition": "name: wf\nsteps:\n  - id: a\n    agent: x\n",
        "inputs": {"n": 3, "nested": {"list": [1, 2.5, None, True], "text": "héllo ✓"}},
        "options": {"max_concurrency": 2, "fail_fast": True, "priority": "fifo", "seed": 7},
        "agents": {"a": "x", "b": "y"},
        "status": "running",
        "pattern": "hybrid",
        "created_at": created_at,
        "finished_at": None,
        "makespan_s": None,
        "pid": 4242,
        "host": "box-1",
        "version": "0.1.0",
        "error": None,
    }
    values.update(kw)
    return RunInfo(**values)  # type: ignore[arg-type]


def entries(first: int, last: int, step: str | None = "a") -> list[Entry]:
    """Entries numbered first..last with varied fields (times with many digits)."""
    kinds = ["ready", "started", "succeeded", "event", "retried"]
    out = []
    for seq in range(first, last + 1):
        kind = kinds[seq % len(kinds)]
        data = None if kind in ("ready", "started") else json.dumps({"seq": seq, "v": [seq] * 3})
        out.append(Entry(seq, kind, step, seq % 3, 1_795_000_000.123456789 + seq / 7, data))
    return out


# --- runs ------------------------------------------------------------------------------------


def test_location_and_durability(store: Store, store_kind: str, tmp_path: Path) -> None:
    if store_kind == "memory":
        assert (store.location, store.durable) == ("<memory>", False)
    else:
        assert (store.location, store.durable) == (str(tmp_path / "s.db"), True)


def test_create_then_get_returns_every_field(store: Store) -> None:
    run = info("20260101-000000-aaaaaa", finished_at=123.25, makespan_s=4.5, error="oops ✗")

    async def body() -> None:
        await store.create_run(run)
        got = await store.get_run(run.run_id)
        assert got == run
        assert got is not run
        assert got.inputs == {"n": 3, "nested": {"list": [1, 2.5, None, True], "text": "héllo ✓"}}

    go(body)


def test_a_new_run_has_an_empty_journal(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        assert await store.entries("r1") == []

    go(body)


def test_the_stored_run_does_not_share_state_with_callers(store: Store) -> None:
    """What create_run was given, and what get_run returned, may be changed by the caller
    without changing the stored run."""
    run = info("r1")

    async def body() -> None:
        await store.create_run(run)
        run.status = "changed"
        run.inputs["n"] = 99
        run.options["seed"] = 99
        got = await store.get_run("r1")
        got.inputs["nested"]["text"] = "mutated"  # type: ignore[index]
        got.agents["a"] = "mutated"
        again = await store.get_run("r1")
        assert again.status == "running"
        assert again.inputs == info("r1").inputs
        assert again.options == info("r1").options
        assert again.agents == {"a": "x", "b": "y"}

    go(body)


def test_duplicate_create_is_refused_and_keeps_the_first(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1", workflow="first"))
        with pytest.raises(StoreError, match="r1"):
            await store.create_run(info("r1", workflow="second"))
        assert (await store.get_run("r1")).workflow == "first"
        assert [r.run_id for r in await store.list_runs()] == ["r1"]

    go(body)


def test_list_runs_newest_first_with_limit_and_workflow(store: Store) -> None:
    async def body() -> None:
        # created out of order, so that the order comes from created_at
        for rid, wf, t in [
            ("r2", "build", 20.0),
            ("r4", "deploy", 40.0),
            ("r1", "build", 10.0),
            ("r5", "build", 50.0),
            ("r3", "deploy", 30.0),
        ]:
            await store.create_run(info(rid, workflow=wf, created_at=t))
        assert [r.run_id for r in await store.list_runs()] == ["r5", "r4", "r3", "r2", "r1"]
        assert [r.run_id for r in await store.list_runs(limit=2)] == ["r5", "r4"]
        assert [r.run_id for r in await store.list_runs(workflow="build")] == ["r5", "r2", "r1"]
        assert [r.run_id for r in await store.list_runs(limit=1, workflow="deploy")] == ["r4"]
        assert await store.list_runs(workflow="nope") == []
        listed = await store.list_runs(limit=1)
        assert listed[0] == info("r5", workflow="build", created_at=50.0)

    go(body)


def test_list_runs_of_an_empty_store(store: Store) -> None:
    assert go(store.list_runs) == []


def test_get_run_by_unique_prefix(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("20260101-120000-abc123"))
        await store.create_run(info("20260101-120000-abd999"))
        await store.create_run(info("20260202-000000-ffffff"))
        assert (await store.get_run("20260101-120000-abc")).run_id == "20260101-120000-abc123"
        assert (await store.get_run("20260202")).run_id == "20260202-000000-ffffff"
        assert (await store.get_run("20260101-120000-abd999")).run_id == "20260101-120000-abd999"
        # the journal can be read by prefix too
        await store.append("20260202-000000-ffffff", entries(1, 2))
        assert await store.entries("20260202") == entries(1, 2)

    go(body)


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("run"))
        await store.create_run(info("run-2"))
        assert (await store.get_run("run")).run_id == "run"

    go(body)


def test_ambiguous_prefix_names_the_candidates(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("20260101-120000-abc123"))
        await store.create_run(info("20260101-120000-abd999"))
        with pytest.raises(RunNotFound) as caught:
            await store.get_run("20260101-120000-ab")
        message = str(caught.value)
        assert "matches 2 runs" in message
        assert "20260101-120000-abc123" in message
        assert "20260101-120000-abd999" in message
        assert store.location in message

    go(body)


def test_an_ambiguous_prefix_counts_every_match(store: Store) -> None:
    async def body() -> None:
        for i in range(9):
            await store.create_run(info(f"20260101-run-{i}", created_at=float(i)))
        with pytest.raises(RunNotFound) as caught:
            await store.get_run("20260101-run-")
        message = str(caught.value)
        assert "matches 9 runs" in message
        assert "20260101-run-0, 20260101-run-1" in message  # a few, sorted

    go(body)


def test_prefixes_are_case_sensitive(store: Store) -> None:
    """Ids differing only in case are different ids, however many there are."""

    async def body() -> None:
        for i in range(7):
            await store.create_run(info(f"CASE-{i}", created_at=float(i)))
        await store.create_run(info("case-7", created_at=7.0))
        assert (await store.get_run("case")).run_id == "case-7"
        assert (await store.get_run("CASE-3")).run_id == "CASE-3"
        with pytest.raises(RunNotFound, match="matches 7 runs"):
            await store.get_run("CASE")
        with pytest.raises(RunNotFound, match="no run 'Case'"):
            await store.get_run("Case")

    go(body)


@pytest.mark.parametrize("wanted", ["zzz", "", "r1-longer", "R1"])
def test_unknown_run_is_not_found_with_a_helpful_message(store: Store, wanted: str) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        with pytest.raises(RunNotFound) as caught:
            await store.get_run(wanted)
        message = str(caught.value)
        assert repr(wanted) in message
        assert store.location in message
        assert "counterpoint runs" in message
        with pytest.raises(RunNotFound):
            await store.entries(wanted)

    go(body)


def test_prefix_wildcards_are_literal(store: Store) -> None:
    """``_`` and ``%`` in an id are characters, not patterns."""

    async def body() -> None:
        await store.create_run(info("a_b-1"))
        await store.create_run(info("axb-2"))
        await store.create_run(info("a%c-3"))
        assert (await store.get_run("a_")).run_id == "a_b-1"
        assert (await store.get_run("a%")).run_id == "a%c-3"
        with pytest.raises(RunNotFound):
            await store.get_run("%")

    go(body)


def test_update_run_changes_only_the_given_fields(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        await store.update_run(
            "r1",
            status="failed",
            finished_at=150.5,
            makespan_s=12.25,
            pattern="sequential",
            pid=None,
            error="step 'a' failed ✗",
            options={"resumed": True},
        )
        expected = info(
            "r1",
            status="failed",
            finished_at=150.5,
            makespan_s=12.25,
            pattern="sequential",
            pid=None,
            error="step 'a' failed ✗",
            options={"resumed": True},
        )
        assert await store.get_run("r1") == expected
        await store.update_run("r1", finished_at=None, error=None, status="running")
        got = await store.get_run("r1")
        assert (got.status, got.finished_at, got.error, got.makespan_s) == (
            "running",
            None,
            None,
            12.25,
        )

    go(body)


@pytest.mark.parametrize("field", ["id", "colour", "key", "created"])
def test_update_run_refuses_unknown_fields(store: Store, field: str) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        with pytest.raises(StoreError, match=field):
            await store.update_run("r1", **{field: "x"})
        assert await store.get_run("r1") == info("r1")

    go(body)


def test_a_refused_update_changes_nothing(store: Store) -> None:
    """An update with one unknown field is refused as a whole."""

    async def body() -> None:
        await store.create_run(info("r1"))
        with pytest.raises(StoreError, match="colour"):
            await store.update_run("r1", status="failed", colour="red")
        assert (await store.get_run("r1")).status == "running"

    go(body)


def test_an_update_of_no_fields_changes_nothing(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        await store.update_run("r1")
        assert await store.get_run("r1") == info("r1")

    go(body)


def test_update_of_an_unknown_run_is_not_found(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        with pytest.raises(RunNotFound):
            await store.update_run("nope", status="failed")

    go(body)


# --- journal ---------------------------------------------------------------------------------


def test_append_and_entries_round_trip_exactly(store: Store) -> None:
    batches = [entries(1, 1), entries(2, 6), entries(7, 7, step=None), entries(8, 12, "b")]
    everything = [e for batch in batches for e in batch]

    async def body() -> None:
        await store.create_run(info("r1"))
        for batch in batches:
            await store.append("r1", batch)
        got = await store.entries("r1")
        assert got == everything
        assert all(type(e) is Entry for e in got)
        assert [tuple(e) for e in got] == [tuple(e) for e in everything]
        assert [type(e.time) for e in got] == [float] * 12
        assert await store.entries("r1", after=0) == everything
        assert await store.entries("r1", after=1) == everything[1:]
        assert await store.entries("r1", after=4) == everything[4:]  # inside a batch
        assert await store.entries("r1", after=6) == everything[6:]  # at a batch's end
        assert await store.entries("r1", after=11) == everything[11:]
        assert await store.entries("r1", after=12) == []
        assert await store.entries("r1", after=99) == []

    go(body)


def test_append_of_nothing_is_allowed(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        await store.append("r1", [])
        await store.append("r1", entries(1, 2))
        await store.append("r1", [])
        assert await store.entries("r1") == entries(1, 2)

    go(body)


def test_append_to_an_unknown_run_is_not_found(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        with pytest.raises(RunNotFound):
            await store.append("nope", entries(1, 1))
        assert await store.entries("r1") == []

    go(body)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param([3], id="repeats-last"),
        pytest.param([2], id="before-last"),
        pytest.param([3, 4], id="batch-starts-at-last"),
        pytest.param([5, 4], id="batch-goes-back"),
        pytest.param([4, 4], id="batch-repeats-itself"),
        pytest.param([4, 6, 5], id="batch-goes-back-later"),
    ],
)
def test_out_of_order_append_is_refused_and_writes_nothing(store: Store, bad: list[int]) -> None:
    def make(seqs: list[int]) -> list[Entry]:
        return [Entry(s, "event", "a", 0, 1000.0 + s, json.dumps({"bad": s})) for s in seqs]

    async def body() -> None:
        await store.create_run(info("r1"))
        await store.append("r1", entries(1, 3))
        with pytest.raises(StoreError, match="not after"):
            await store.append("r1", make(bad))
        assert await store.entries("r1") == entries(1, 3)
        # the journal is not broken by the refusal: the next entries go in
        await store.append("r1", entries(4, 5))
        assert await store.entries("r1") == entries(1, 5)

    go(body)


@pytest.mark.parametrize(
    "size", [BLOB_THRESHOLD - 1, BLOB_THRESHOLD, BLOB_THRESHOLD + 1, 3 * BLOB_THRESHOLD + 17]
)
def test_data_of_any_size_round_trips(store: Store, size: int) -> None:
    # varied text, so that compression cannot hide a mistake
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-+=()[]{}"
    unit = "".join(alphabet[(i * 7919) % len(alphabet)] for i in range(997))
    text = (unit * (size // len(unit) + 1))[: size - 2]
    data = json.dumps(text)
    assert len(data) == size
    batch = [
        Entry(1, "started", "big", 1, 1.5, None),
        Entry(2, "succeeded", "big", 1, 2.5, data),
        Entry(3, "event", "big", 0, 3.5, '{"name": "small"}'),
    ]

    async def body() -> None:
        await store.create_run(info("r1"))
        await store.append("r1", batch)
        await store.append("r1", [Entry(4, "succeeded", "again", 1, 4.5, data)])
        got = await store.entries("r1")
        assert [e[:5] for e in got] == [
            (1, "started", "big", 1, 1.5),
            (2, "succeeded", "big", 1, 2.5),
            (3, "event", "big", 0, 3.5),
            (4, "succeeded", "again", 1, 4.5),
        ]
        assert got[1].data == data
        assert got[3].data == data
        assert got[2].data == '{"name": "small"}'
        assert await store.entries("r1", after=2) == got[2:]

    go(body)


def test_large_unicode_data_in_two_runs(store: Store) -> None:
    """A big value with multibyte text, kept for two runs (the same blob twice)."""
    data = json.dumps("é✓😀" * (BLOB_THRESHOLD // 2), ensure_ascii=False)
    assert len(data) > BLOB_THRESHOLD

    async def body() -> None:
        for rid in ("r1", "r2"):
            await store.create_run(info(rid))
            await store.append(rid, [Entry(1, "succeeded", "s", 1, 1.0, data)])
        for rid in ("r1", "r2"):
            assert await store.entries(rid) == [Entry(1, "succeeded", "s", 1, 1.0, data)]

    go(body)


def test_unicode_data_and_names_round_trip(store: Store) -> None:
    texts = [
        "héllo wörld",
        "日本語のテキスト",
        "emoji 😀🎉 and 𝄞",
        "e\u0301 combining",
        "tab\tnl\n",
    ]
    batch = [
        Entry(i + 1, "event", f"étape-{i}-✓", 0, float(i), json.dumps(t, ensure_ascii=False))
        for i, t in enumerate(texts)
    ]
    batch.append(Entry(6, "failed", "δ", 2, 6.0, json.dumps("boom 💥")))

    async def body() -> None:
        await store.create_run(info("r-ü-1", workflow="wörkflow"))
        await store.append("r-ü-1", batch)
        assert await store.entries("r-ü-1") == batch
        assert [json.loads(e.data) for e in batch[:5]] == texts  # type: ignore[arg-type]
        assert (await store.get_run("r-ü")).workflow == "wörkflow"
        assert [r.run_id for r in await store.list_runs(workflow="wörkflow")] == ["r-ü-1"]

    go(body)


def test_journals_of_two_runs_do_not_mix(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1", created_at=1.0))
        await store.create_run(info("r2", created_at=2.0))
        await store.append("r1", entries(1, 2, "one"))
        await store.append("r2", entries(1, 3, "two"))
        await store.append("r1", entries(3, 4, "one"))
        await store.append("r2", entries(4, 4, "two"))
        assert await store.entries("r1") == entries(1, 4, "one")
        assert await store.entries("r2") == entries(1, 4, "two")
        assert await store.entries("r2", after=2) == entries(3, 4, "two")
        # each run checks its own numbering
        with pytest.raises(StoreError):
            await store.append("r1", entries(4, 4, "one"))
        await store.append("r1", entries(5, 5, "one"))
        assert await store.entries("r2") == entries(1, 4, "two")

    go(body)


def test_a_closed_store_refuses_everything(store: Store) -> None:
    async def body() -> None:
        await store.create_run(info("r1"))
        await store.append("r1", entries(1, 2))
        await store.close()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.create_run(info("r2")),
            lambda: store.update_run("r1", status="failed"),
            lambda: store.append("r1", entries(3, 3)),
            lambda: store.get_run("r1"),
            store.list_runs,
            lambda: store.entries("r1"),
        ]
        for call in calls:
            with pytest.raises(StoreError, match="closed"):
                await call()

    go(body)


def test_runinfo_defaults() -> None:
    run = RunInfo("r", "wf", "<python>", "f", "{}")
    assert dataclasses.asdict(run) == {
        "run_id": "r",
        "workflow": "wf",
        "source": "<python>",
        "fingerprint": "f",
        "definition": "{}",
        "inputs": {},
        "options": {},
        "agents": {},
        "status": "running",
        "pattern": "",
        "created_at": 0.0,
        "finished_at": None,
        "makespan_s": None,
        "pid": None,
        "host": "",
        "version": "",
        "error": None,
    }
