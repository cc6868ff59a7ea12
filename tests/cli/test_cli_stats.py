"""``counterpoint stats``: what past runs say of each agent."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.backends.virtual import VirtualBackend
from counterpoint.scheduler.clock import VirtualClock

WORKFLOW = """\
name: learn
agents:
  fetch: {kind: sleep}
  flaky: {kind: sleep}
steps:
  - {id: a, agent: fetch, estimate: 2s}
  - {id: b, agent: flaky, needs: a, estimate: 1s, retries: 0}
"""


def _store_with_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    wf = cp.loads(WORKFLOW)
    durations = [2.0, 4.0, 3.0]

    async def go() -> None:
        store = cp.open_store(folder)
        try:
            for k, took in enumerate(durations):

                def duration(job: Job, took: float = took) -> float:
                    return took if job.step_id == "a" else 1.0

                def fail(job: Job, k: int = k) -> str | None:
                    return "boom" if job.step_id == "b" and k == 1 else None

                await cp.run(
                    wf,
                    store=store,
                    clock=VirtualClock(),
                    backend=lambda c, d=duration, f=fail: VirtualBackend(c, duration=d, fail=f),  # type: ignore[misc]
                )
        finally:
            await store.close()

    asyncio.run(go())
    return folder


def _stats(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "counterpoint", "stats", "--store", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_stats_json_gives_each_agent_its_durations_and_failures(tmp_path: Path) -> None:
    folder = _store_with_runs(tmp_path)
    done = _stats(folder, "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert set(got) == {"fetch", "flaky"}
    fetch, flaky = got["fetch"], got["flaky"]
    assert (fetch["steps"], fetch["failed"], fetch["failure_rate"]) == (3, 0, 0.0)
    # (journal times are wall-clock floats: durations come back within a few microseconds)
    assert abs(fetch["median_s"] - 3.0) < 1e-4
    assert abs(fetch["mean_s"] - 3.0) < 1e-4
    assert (flaky["steps"], flaky["failed"]) == (3, 1)
    assert abs(flaky["failure_rate"] - 1 / 3) < 1e-9


def test_stats_table_and_an_empty_store(tmp_path: Path) -> None:
    folder = _store_with_runs(tmp_path)
    done = _stats(folder)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "agent",
        "steps",
        "failed",
        "failure",
        "rate",
        "median",
        "p90",
        "mean",
    ]
    assert lines[1].split()[:4] == ["fetch", "3", "0", "0%"]
    empty = _stats(tmp_path / "nothing")
    assert empty.returncode == 0
    assert empty.stdout.startswith("no runs in ")
