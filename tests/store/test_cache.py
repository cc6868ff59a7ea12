"""The cache of step outputs: hits, misses, versions, TTL, --no-cache, and both stores."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.store import MemoryStore, SqliteStore, Store

CODE = """\
CALLS = []

async def work(ctx):
    CALLS.append(ctx.step_id)
    return {"v": ctx.input, "up": sorted(ctx.upstream)}
"""


def _workflow(tmp_path: Path, name: str, agent: str = "{ttl: 1h}", version: str = "1") -> Path:
    (tmp_path / f"{name}.py").write_text(CODE)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""\
name: cached
inputs:
  x: 1
agents:
  w: {{kind: python, function: "{name}:work", cache: {agent}, version: "{version}"}}
  plain: {{kind: python, function: "{name}:work"}}
steps:
  - {{id: a, agent: w, input: "${{{{ inputs.x }}}}"}}
  - {{id: b, agent: w, needs: a, input: 2}}
  - {{id: c, agent: plain, needs: b, input: 3}}
  - {{id: d, agent: w, needs: c, input: 4, cache: false}}
"""
    )
    return path


def _calls(name: str) -> list[str]:
    calls: list[str] = sys.modules[name].CALLS  # type: ignore[attr-defined]
    out = list(calls)
    calls.clear()
    return out


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_second_run_reuses_cached_outputs(tmp_path: Path, kind: str) -> None:
    name = f"cache_hits_{kind}"
    path = _workflow(tmp_path, name)
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "s.db")

    async def go() -> None:
        first = await cp.run(path, store=store)
        assert _calls(name) == ["a", "b", "c", "d"]
        second = await cp.run(path, store=store)
        # a and b come from the cache; c's agent has no cache; d says cache: false
        assert _calls(name) == ["c", "d"]
        assert [s.cached for s in second.steps.values()] == [True, True, False, False]
        assert second.outputs == first.outputs
        assert second.to_json()["steps"]["a"]["cached"] is True
        assert [e.name for e in second.events if e.step_id == "a"] == ["cache-hit"]
        # another input misses, and so does everything downstream of the change
        third = await cp.run(path, store=store, inputs={"x": 5})
        assert _calls(name) == ["a", "b", "c", "d"]
        assert not third.steps["a"].cached
        # without the cache nothing is reused
        await cp.run(path, store=store, cache=False)
        assert _calls(name) == ["a", "b", "c", "d"]
        await store.close()

    asyncio.run(go())


def test_a_new_agent_version_does_not_use_old_outputs(tmp_path: Path) -> None:
    name = "cache_version"
    store = MemoryStore()
    asyncio.run(cp.run(_workflow(tmp_path, name, version="1"), store=store))
    _calls(name)
    asyncio.run(cp.run(_workflow(tmp_path, name, version="2"), store=store))
    assert _calls(name) == ["a", "b", "c", "d"]


def test_outputs_older_than_the_ttl_are_not_used(tmp_path: Path) -> None:
    name = "cache_ttl"
    path = _workflow(tmp_path, name, agent="{ttl: 10s}")
    store = MemoryStore()
    asyncio.run(cp.run(path, store=store))
    _calls(name)
    # age every entry by a minute
    store._cache = {k: (v, t - 60) for k, (v, t) in store._cache.items()}
    asyncio.run(cp.run(path, store=store))
    assert _calls(name) == ["a", "b", "c", "d"]


def test_runs_without_a_store_do_not_cache(tmp_path: Path) -> None:
    name = "cache_none"
    path = _workflow(tmp_path, name)
    cp.run_sync(path)
    cp.run_sync(path)
    assert _calls(name) == ["a", "b", "c", "d"] * 2


def test_the_cli_shows_hits_and_no_cache_skips_them(tmp_path: Path) -> None:
    path = _workflow(tmp_path, "cache_cli")
    cmd = [sys.executable, "-m", "counterpoint", "run", str(path), "--store", str(tmp_path / "st")]
    first = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert "✓ a succeeded (cached)" in second.stderr
    third = subprocess.run(
        [*cmd, "--no-cache"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert "(cached)" not in third.stderr


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_cache_entries_round_trip_in_both_stores(tmp_path: Path, kind: str) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "s.db")

    async def go() -> None:
        assert await store.cache_get("k") is None
        await store.cache_put("k", '{"a": "é"}', 12.5)
        assert await store.cache_get("k") == ('{"a": "é"}', 12.5)
        await store.cache_put("k", "2", 13.0)  # replaced
        assert await store.cache_get("k") == ("2", 13.0)
        await store.close()

    asyncio.run(go())
