"""Durable runs: what journaling every transition costs, and how fast a killed run goes on.

1. Overhead. No-op workflows loaded from YAML with ``counterpoint.load`` (as the CLI does: the
   store keeps the YAML text, so fingerprinting is cheap); only ``await counterpoint.run(wf,
   store=...)`` is timed, for three sides interleaved rep by rep: no store, a ``MemoryStore``,
   and a fresh SQLite store (``open_store`` on a new temporary folder every rep). Stores are
   opened before and closed after the timing. Shapes: the layered DAG of the overhead
   benchmark (group commit at its best: many transitions per loop turn) and a chain (one
   commit per step: durability at its dearest).
2. Resume. A layered workflow whose agent (``kind: python``) sleeps 1 ms runs through the CLI
   (``python -m counterpoint run FILE --store S -j 50``) in a child process, which is killed
   with SIGKILL once half its steps have succeeded in the journal (read-only polling of the
   SQLite file). The store is copied, then resumed twice: in-process with
   ``counterpoint.resume`` (time from the call, store opening included, until an observer
   sees the first new step start, which then interrupts the run) and through the CLI
   (``python -m counterpoint resume RUN_ID --store COPY``: time from launching the process
   until the ``started`` entry of its first step, whose wall-clock time is in the journal).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

import common
import counterpoint as cp
from counterpoint.store import MemoryStore, Store, open_store, replay

TARGET_RATIO = 1.5  # durable (SQLite) run / the same run with the in-memory store
TARGET_RESUME_S = 1.0  # until a resumed run is running again
JOBS = 50  # -j of the run that gets killed
NAP_S = 0.001
AGENT_MODULE = "durable_bench_nap"  # written next to the workflow file

SIDES = ("no store", "memory", "sqlite")


def write_yaml(path: Path, name: str, preds: common.Preds, agent: str) -> None:
    """Block-style YAML with one agent ``a`` for every step."""
    lines = [f"name: {name}", "agents:", f"  a: {agent}", "steps:"]
    for i, ps in enumerate(preds):
        lines.append(f"  - id: s{i}")
        lines.append("    agent: a")
        if ps:
            lines.append(f"    needs: [{', '.join(f's{p}' for p in ps)}]")
    path.write_text("\n".join(lines) + "\n")


# --- 1. overhead -------------------------------------------------------------------------------


def _timed_run(wf: cp.Workflow, make_store: Callable[[], Store | None]) -> float:
    async def main() -> float:
        store = make_store()
        try:
            t0 = time.perf_counter()
            result = await cp.run(wf, store=store)
            took = time.perf_counter() - t0
        finally:
            if store is not None:
                await store.close()
        if result.status is not cp.RunStatus.SUCCEEDED:
            raise RuntimeError(f"durable run {result.status}: {result.error}")
        return took

    return asyncio.run(main())


class _SqliteSide:
    """A new store folder every rep; the previous one is removed, the last one kept."""

    def __init__(self, tmp: Path, shape: str) -> None:
        self.tmp = tmp
        self.shape = shape
        self.n = 0
        self.folder: Path | None = None

    def __call__(self) -> Store:
        if self.folder is not None:
            shutil.rmtree(self.folder)
        self.n += 1
        self.folder = self.tmp / f"{self.shape}-store-{self.n}"
        return open_store(self.folder)


def _store_figures(folder: Path) -> dict[str, Any]:
    """What one run left in the store: file sizes, frames (journal rows), entries."""
    db = folder / "store.db"
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        frames, first, last = conn.execute(
            "SELECT count(*), min(first), max(last) FROM journal"
        ).fetchone()
        journal_bytes = conn.execute("SELECT sum(length(entries)) FROM journal").fetchone()[0]
        kinds: dict[str, int] = {}
        for (text,) in conn.execute("SELECT entries FROM journal"):
            for e in orjson.loads(text):
                kinds[e[1]] = kinds.get(e[1], 0) + 1
    finally:
        conn.close()
    return {
        "files": files,
        "db_bytes": files.get("store.db", 0),
        "frames": frames,
        "entries": last - first + 1 if frames else 0,
        "journal_bytes": journal_bytes or 0,
        "entry_kinds": kinds,
    }


def overhead(tmp: Path, quick: bool) -> tuple[dict[str, Any], str]:
    n = 2_000 if quick else 10_000
    side = max(2, round(n**0.5))
    shapes = {"layered": common.layered(side, side, seed=1), "chain": common.chain(2_000)}
    reps = 3 if quick else 7
    out: dict[str, Any] = {"reps": reps, "target_sqlite_over_memory": TARGET_RATIO}
    rows: list[list[object]] = []
    size_rows: list[list[object]] = []
    for name, preds in shapes.items():
        steps = len(preds)
        path = tmp / f"durable-{name}.yaml"
        write_yaml(path, f"durable-{name}", preds, "{kind: noop}")
        t0 = common.now()
        wf = cp.load(path)
        load_s = common.now() - t0
        sqlite_side = _SqliteSide(tmp, name)
        times = common.interleaved(
            {
                "no store": lambda wf=wf: _timed_run(wf, lambda: None),
                "memory": lambda wf=wf: _timed_run(wf, MemoryStore),
                "sqlite": lambda wf=wf, s=sqlite_side: _timed_run(wf, s),
            },
            reps,
        )
        assert sqlite_side.folder is not None
        store = _store_figures(sqlite_side.folder)
        med = {s: common.median(times[s]) for s in SIDES}
        fig: dict[str, Any] = {
            "steps": steps,
            "edges": common.edges(preds),
            "yaml_bytes": path.stat().st_size,
            "load_s": load_s,
            "times_s": times,
            "median_s": med,
            "us_per_step": {s: med[s] / steps * 1e6 for s in SIDES},
            "sqlite_over_no_store": med["sqlite"] / med["no store"],
            "sqlite_over_memory": med["sqlite"] / med["memory"],
            "memory_over_no_store": med["memory"] / med["no store"],
            "best_sqlite_over_memory": min(times["sqlite"]) / min(times["memory"]),
            "store": store,
        }
        if name == "layered":
            fig["target_ok"] = fig["sqlite_over_memory"] <= TARGET_RATIO
        out[name] = fig
        label = f"{name} {side} x {side}" if name == "layered" else f"{name} {steps:,}"
        for s in SIDES:
            is_target = name == "layered" and s == "sqlite"
            rows.append(
                [
                    label,
                    s,
                    med[s] * 1e3,
                    med[s] / steps * 1e6,
                    med[s] / med["no store"],
                    med[s] / med["memory"],
                    f"<= {TARGET_RATIO:g}" if is_target else "",
                    common.verdict(fig["sqlite_over_memory"], TARGET_RATIO) if is_target else "",
                ]
            )
        size_rows.append(
            [
                label,
                store["db_bytes"] / 1024,
                store["frames"],
                store["entries"],
                store["entries"] / store["frames"],
                store["db_bytes"] / steps,
            ]
        )
    text = (
        common.table(
            f"durable: overhead of the journal, no-op steps (median of {reps} interleaved reps)",
            ["shape", "store", "ms", "µs/step", "/ no store", "/ memory", "target", ""],
            rows,
        )
        + "\n"
        + common.table(
            "durable: what one SQLite run leaves (after close)",
            ["shape", "store.db KiB", "frames", "entries", "entries/frame", "bytes/step"],
            size_rows,
        )
    )
    return out, text


# --- 2. resume ---------------------------------------------------------------------------------


class _JournalReader:
    """Reads a store's journal read-only, frame by frame, as another process writes it."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None
        self.after = 0  # last seq read
        self.succeeded = 0
        self.run_id: str | None = None
        self.session = 1  # of the last run-started entry read
        self.first_new_start: list[Any] | None = None  # first 'started' of a later session
        self.session_start: list[Any] | None = None  # that session's run-started entry

    def poll(self) -> None:
        try:
            if self.conn is None:
                if not self.db.exists():
                    return
                self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=0.1)
            if self.run_id is None:
                row = self.conn.execute("SELECT id FROM runs").fetchone()
                if row is None:
                    return
                self.run_id = row[0]
            frames = self.conn.execute(
                "SELECT last, entries FROM journal WHERE first > ? ORDER BY first", (self.after,)
            ).fetchall()
        except sqlite3.Error:  # not created yet, or being recovered: next time
            return
        for last, text in frames:
            self.after = last
            for e in orjson.loads(text):
                kind = e[1]
                if kind == "succeeded":
                    self.succeeded += 1
                elif kind == "run-started":
                    self.session = e[3]
                    if self.session > 1 and self.session_start is None:
                        self.session_start = e
                elif kind == "started" and self.session > 1 and self.first_new_start is None:
                    self.first_new_start = e

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "counterpoint", *args]


def child_env(cache: Path) -> dict[str, str]:
    """The children's environment: compiled modules are kept in ``cache`` (as an installed
    package has its ``__pycache__``), whatever ``PYTHONDONTWRITEBYTECODE`` says here."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _wait_for(
    proc: subprocess.Popen[bytes], reader: _JournalReader, done: Callable[[], bool], log: Path
) -> None:
    deadline = time.perf_counter() + 120
    while True:
        reader.poll()
        if done():
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"the child (exit {proc.returncode}) ended first:\n" + log.read_text()[-2000:]
            )
        if time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError("durable: gave up waiting for the child")
        time.sleep(0.002)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def start_and_kill(file: Path, folder: Path, steps: int, env: dict[str, str]) -> dict[str, Any]:
    """Run through the CLI, SIGKILL at half the steps; the run's id and figures."""
    reader = _JournalReader(folder / "store.db")
    log = folder.parent / f"{folder.name}.log"
    with log.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            _cli("run", str(file), "--store", str(folder), "-j", str(JOBS), "--json"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        try:
            _wait_for(proc, reader, lambda: reader.succeeded >= steps // 2, log)
        finally:
            reader.close()
            _kill(proc)
    assert reader.run_id is not None
    return {
        "run_id": reader.run_id,
        "succeeded_seen": reader.succeeded,
        "killed_after_s": time.perf_counter() - t0,
    }


class _FirstStart(cp.RunObserver):
    """Notes when the engine is built and when the first step starts; then interrupts."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.t_engine: float | None = None
        self.t_first: float | None = None
        self.restored = 0

    def on_engine(self, engine: Any) -> None:
        self.engine = engine

    def run_started(self, run_id: str, workflow: str, steps: list[cp.StepRecord]) -> None:
        self.t_engine = time.perf_counter()
        self.restored = sum(r.restored for r in steps)

    def step_started(self, record: cp.StepRecord, attempt: int) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()
            self.engine.interrupt()


def resume_in_process(folder: Path, run_id: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        obs = _FirstStart()
        wall0 = time.time()
        t0 = time.perf_counter()
        store = open_store(folder)
        try:
            result = await cp.resume(run_id, store=store, observers=[obs], on_engine=obs.on_engine)
            t_end = time.perf_counter()
            session = [e for e in await store.entries(run_id) if e.kind == "run-started"][-1]
        finally:
            await store.close()
        if obs.t_first is None or obs.t_engine is None:
            raise RuntimeError(f"resumed run {result.status} without starting a step")
        return {
            "first_start_s": obs.t_first - t0,
            "session_started_s": session.time - wall0,
            "engine_ready_s": obs.t_engine - t0,
            "returned_s": t_end - t0,
            "restored_steps": obs.restored,
            "status": result.status.value,
        }

    gc.collect()
    return asyncio.run(main())


def resume_parts(folder: Path, run_id: str) -> dict[str, float]:
    """What resume does before the engine, one piece at a time (on the same store)."""

    async def main() -> dict[str, float]:
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        store = open_store(folder)
        t["open_store_s"] = time.perf_counter() - t0
        try:
            t1 = time.perf_counter()
            info = await store.get_run(run_id)
            t["get_run_s"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            cp.load(info.source)
            t["load_yaml_s"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            entries = await store.entries(run_id)
            t["read_journal_s"] = time.perf_counter() - t1
            t1 = time.perf_counter()
            replay(entries)
            t["replay_s"] = time.perf_counter() - t1
            t["journal_entries"] = len(entries)
        finally:
            await store.close()
        return t

    gc.collect()
    return asyncio.run(main())


def resume_cli(folder: Path, run_id: str, env: dict[str, str]) -> dict[str, Any]:
    """Launch ``counterpoint resume``; times from the launch until the resumed session's
    ``run-started`` entry and its first ``started`` entry (their wall-clock times, from the
    journal), and until the poller saw that entry."""
    reader = _JournalReader(folder / "store.db")
    log = folder.parent / f"{folder.name}.log"
    with log.open("wb") as err:
        wall0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            _cli("resume", run_id, "--store", str(folder)),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        try:
            _wait_for(proc, reader, lambda: reader.first_new_start is not None, log)
            seen = time.perf_counter() - t0
        finally:
            reader.close()
            _kill(proc)
    assert reader.first_new_start is not None and reader.session_start is not None
    return {
        "first_start_s": reader.first_new_start[4] - wall0,
        "session_started_s": reader.session_start[4] - wall0,
        "seen_by_poller_s": seen,
    }


def python_start(env: dict[str, str]) -> float:
    """Seconds to start the interpreter and import what the CLI imports, for reference."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import counterpoint.cli"], check=True, env=env)
    return time.perf_counter() - t0


def resume(tmp: Path, quick: bool) -> tuple[dict[str, Any], str]:
    preds = common.layered(20 if quick else 100, 100, seed=1)
    steps = len(preds)
    reps = 3
    (tmp / f"{AGENT_MODULE}.py").write_text(
        f"import asyncio\n\n\nasync def nap(ctx):\n    await asyncio.sleep({NAP_S})\n"
    )
    file = tmp / "durable-resume.yaml"
    write_yaml(file, "durable-resume", preds, f"{{kind: python, function: {AGENT_MODULE}:nap}}")
    env = child_env(tmp / "pycache")
    python_start(env)  # compiles the modules once, as installing the package would
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        base = tmp / f"resume-{rep}"
        base.mkdir()
        killed = start_and_kill(file, base / "killed", steps, env)
        copies = {}
        for side in ("in-process", "cli"):  # the same crashed state for both
            copies[side] = base / side
            copies[side].mkdir(parents=True)
            for name in ("store.db", "store.db-wal"):  # not -shm: rebuilt on opening
                if (base / "killed" / name).exists():
                    shutil.copy2(base / "killed" / name, copies[side] / name)
        rid = killed["run_id"]
        fig: dict[str, Any] = {"kill": killed, "db_bytes_at_kill": {}}
        for name in ("store.db", "store.db-wal"):
            p = copies["cli"] / name
            fig["db_bytes_at_kill"][name] = p.stat().st_size if p.exists() else 0
        order = ["in-process", "cli"] if rep % 2 == 0 else ["cli", "in-process"]
        for side in order:
            if side == "in-process":
                fig["in_process"] = resume_in_process(copies[side], rid)
            else:
                fig["cli"] = resume_cli(copies[side], rid, env)
        fig["parts"] = resume_parts(copies["in-process"], rid)
        fig["python_import_s"] = python_start(env)
        fig["python_import_as_is_s"] = python_start(dict(os.environ))
        runs.append(fig)
        shutil.rmtree(base)

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return common.median([get(r) for r in runs])

    inproc = med(lambda r: r["in_process"]["first_start_s"])
    cli = med(lambda r: r["cli"]["first_start_s"])
    out: dict[str, Any] = {
        "steps": steps,
        "edges": common.edges(preds),
        "jobs": JOBS,
        "nap_s": NAP_S,
        "reps": reps,
        "target_s": TARGET_RESUME_S,
        "runs": runs,
        "restored_steps_median": med(lambda r: r["in_process"]["restored_steps"]),
        "in_process_first_start_s": inproc,
        "in_process_session_started_s": med(lambda r: r["in_process"]["session_started_s"]),
        "in_process_engine_ready_s": med(lambda r: r["in_process"]["engine_ready_s"]),
        "in_process_returned_s": med(lambda r: r["in_process"]["returned_s"]),
        "cli_first_start_s": cli,
        "cli_session_started_s": med(lambda r: r["cli"]["session_started_s"]),
        "cli_seen_by_poller_s": med(lambda r: r["cli"]["seen_by_poller_s"]),
        "python_import_s": med(lambda r: r["python_import_s"]),
        "python_import_as_is_s": med(lambda r: r["python_import_as_is_s"]),
        "environment_pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
        "parts_median_s": {
            k: common.median([r["parts"][k] for r in runs]) for k in runs[0]["parts"]
        },
        "in_process_ok": inproc <= TARGET_RESUME_S,
        "cli_ok": cli <= TARGET_RESUME_S,
    }
    restored = out["restored_steps_median"]
    rows: list[list[object]] = [
        [
            "counterpoint.resume (in-process)",
            out["in_process_session_started_s"],
            inproc,
            [round(r["in_process"]["first_start_s"], 3) for r in runs],
            f"<= {TARGET_RESUME_S:g} s",
            common.verdict(inproc, TARGET_RESUME_S),
        ],
        [
            "counterpoint resume (CLI process)",
            out["cli_session_started_s"],
            cli,
            [round(r["cli"]["first_start_s"], 3) for r in runs],
            f"<= {TARGET_RESUME_S:g} s",
            common.verdict(cli, TARGET_RESUME_S),
        ],
    ]
    parts = out["parts_median_s"]
    text = common.table(
        f"durable: resume a killed {steps:,}-step run ({restored:,.0f} steps done; "
        f"median of {reps}): seconds until running again",
        ["how", "run-started entry s", "first step s", "reps", "target", ""],
        rows,
    ) + (
        f"\n(run-started: the new session's journal entry, written once the journal is "
        "read; first step: seen by the observer (in-process), its 'started' entry (CLI).\n"
        f"Pieces: open {parts['open_store_s'] * 1e3:.1f} ms, load YAML "
        f"{parts['load_yaml_s'] * 1e3:.0f} ms, read {parts['journal_entries']:,.0f} journal "
        f"entries {parts['read_journal_s'] * 1e3:.0f} ms, replay {parts['replay_s'] * 1e3:.0f}"
        f" ms; python -c 'import counterpoint.cli' {out['python_import_s']:.2f} s, "
        f"{out['python_import_as_is_s']:.2f} s in this environment as it is)"
    )
    return out, text


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    with tempfile.TemporaryDirectory(prefix="cp-bench-durable-") as name:
        tmp = Path(name)
        figures, text = overhead(tmp, quick)
        figures_r, text_r = resume(tmp, quick)
    figures["resume"] = figures_r
    return figures, text + "\n" + text_r
