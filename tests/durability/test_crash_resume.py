"""Crash and resume: a 200-step run killed with SIGKILL 20 times ends as if never interrupted.

A random layered DAG (fixed seed) of Python agents that each sleep a few ms, hash their input
and their upstream outputs, and append one line with their idempotency key to a side-effect
log (only if the key is not in it yet). One run goes through uninterrupted; a second one, in
its own store, is killed at seeded random moments (each once the store has journaled a
seeded number of successes, then 0-20 ms later) and resumed, 20 kills in all, before a final
resume finishes it. It must end with the same outputs, one success per step in the journal,
one side effect per step, re-run attempts for the steps that were cut short, and a sound
store file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from counterpoint.agents.base import idempotency_key

SEED = 20240611
STEPS = 200
KILLS = 20
CONCURRENCY = 4
MAX_GROWTH = 15  # the kill target grows by 1..MAX_GROWTH successes each round
TARGET_BUDGET = 150  # the last kill target stays at most this, so that work is left
NO_PROGRESS_S = 20.0  # a round fails when no success is journaled for this long
FINAL_TIMEOUT_S = 60.0

MODULE = "crash_resume_agents"
CLI = [sys.executable, "-m", "counterpoint"]

AGENTS = '''\
"""The agent of the crash-resume test: deterministic output, idempotent side effect."""

import hashlib
import json
import os
import time


def work(ctx):
    time.sleep(ctx.input["ms"] / 1000)  # the work
    h = hashlib.sha256(f"{ctx.step_id}:{ctx.input['n']}".encode())
    for name in sorted(ctx.upstream):
        h.update(f"|{name}={ctx.upstream[name]['hash']}".encode())
    depth = 1 + max((u["depth"] for u in ctx.upstream.values()), default=0)
    key = ctx.idempotency_key
    log = ctx.input["log"]
    try:
        with open(log, "rb") as f:
            data = f.read().decode()
    except FileNotFoundError:
        data = ""
    # complete records only: a SIGKILL may cut a write short where it crosses a page
    done = {line.split()[0] for line in data.split("\\n")[:-1] if len(line.split()) == 2}
    wrote = key not in done
    if wrote:
        cut = "\\n" if data and not data.endswith("\\n") else ""  # end a record cut short
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{cut}{key} {ctx.step_id}\\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    # every call that got this far, for the test's own checks (no fsync: a hint only)
    fd = os.open(log + ".calls", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{ctx.step_id} {ctx.attempt} {'wrote' if wrote else 'kept'}\\n".encode())
    finally:
        os.close(fd)
    return {"hash": h.hexdigest(), "depth": depth}
'''


def _workflow_yaml(rng: random.Random) -> tuple[str, list[str]]:
    """A random layered DAG of STEPS steps: each needs 1-3 steps of earlier layers, at least
    one of them in the layer just before."""
    layers: list[list[str]] = []
    ids: list[str] = []
    while len(ids) < STEPS:
        width = min(rng.randint(1, 12), STEPS - len(ids))
        layer = [f"s{len(ids) + j:03d}" for j in range(width)]
        layers.append(layer)
        ids.extend(layer)
    lines = [
        "name: crash-resume",
        "inputs:",
        "  log: {type: string, required: true}",
        "agents:",
        f"  work: {{kind: python, function: '{MODULE}:work'}}",
        "steps:",
    ]
    n = 0
    for depth, layer in enumerate(layers):
        earlier = [s for lay in layers[:depth] for s in lay]
        for sid in layer:
            lines += [f"  - id: {sid}", "    agent: work"]
            if depth:
                needs = {rng.choice(layers[depth - 1])}
                needs.update(rng.sample(earlier, min(len(earlier), rng.randint(0, 2))))
                lines.append(f"    needs: [{', '.join(sorted(needs))}]")
            ms = rng.randint(2, 10)
            lines.append(f'    input: {{n: {n}, ms: {ms}, log: "${{{{ inputs.log }}}}"}}')
            n += 1
    return "\n".join(lines) + "\n", ids


def _kill_targets(rng: random.Random) -> list[int]:
    """How many successes the journal holds before each kill: growing by 1..MAX_GROWTH."""
    while True:
        growth = [rng.randint(1, MAX_GROWTH) for _ in range(KILLS)]
        if sum(growth) <= TARGET_BUDGET:
            break
    targets, total = [], 0
    for g in growth:
        total += g
        targets.append(total)
    return targets


@dataclass
class _Watch:
    """Reads a store's journal read-only, as it grows (frames are never rewritten)."""

    db: Path
    conn: sqlite3.Connection | None = None
    key: int | None = None
    run_id: str | None = None
    last_first: int = 0
    entries: list[list[object]] = field(default_factory=list)
    successes: int = 0

    def poll(self) -> int:
        """Read the frames committed since last time; the number of successes so far."""
        try:
            if self.conn is None:
                self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            if self.key is None:
                row = self.conn.execute("SELECT key, id FROM runs").fetchone()
                if row is None:
                    return 0
                self.key, self.run_id = row
            rows = self.conn.execute(
                "SELECT first, entries FROM journal WHERE run = ? AND first > ? ORDER BY first",
                (self.key, self.last_first),
            ).fetchall()
        except sqlite3.DatabaseError:  # not created yet (or still being created)
            self.close()
            return self.successes
        for first, frame in rows:
            items = json.loads(frame)
            self.entries.extend(items)
            self.successes += sum(item[1] == "succeeded" for item in items)
            self.last_first = first
        return self.successes

    def in_flight(self) -> dict[str, int]:
        """Steps whose last journaled attempt started and did not end: their attempt."""
        running: dict[str, int] = {}
        for _seq, kind, step, attempt, *_ in self.entries:
            if kind == "started":
                running[str(step)] = int(attempt)  # type: ignore[call-overload]
            elif kind in ("succeeded", "failed", "retried", "cancelled", "skipped"):
                running.pop(str(step), None)
        return running

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


@dataclass
class _Procs:
    """The CLI processes this test starts; stdout and stderr go to files."""

    cwd: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    count: int = 0

    def start(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.count += 1
        out = self.cwd / f"proc-{self.count:02d}"
        with open(f"{out}.out", "wb") as so, open(f"{out}.err", "wb") as se:
            proc = subprocess.Popen([*CLI, *args], cwd=self.cwd, env=_env(), stdout=so, stderr=se)
        self.started.append(proc)
        return proc, out

    def call(self, *args: str, timeout: float = 30) -> tuple[int, str, str]:
        proc, out = self.start(*args)
        rc = proc.wait(timeout=timeout)
        return rc, Path(f"{out}.out").read_text(), Path(f"{out}.err").read_text()

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()  # by its pid: only what this test started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


@contextlib.contextmanager
def _processes(cwd: Path) -> Iterator[_Procs]:
    procs = _Procs(cwd)
    try:
        yield procs
    finally:
        procs.cleanup()


def _tail(out: Path) -> str:
    parts = []
    for suffix in (".out", ".err"):
        text = Path(f"{out}{suffix}").read_text(errors="replace")
        parts.append(f"--- {suffix[1:]} ---\n{text[-3000:]}")
    return "\n".join(parts)


RECORD = re.compile(r"[0-9a-f]{32} s\d{3}")


def _log_lines(path: Path) -> list[tuple[str, str]]:
    """The side-effect log's complete records (a kill may leave the start of one behind, as
    it may cut any write that crosses a page: the agent ends such a line before its own)."""
    lines = path.read_text().splitlines()
    return [tuple(line.split()) for line in lines if RECORD.fullmatch(line)]  # type: ignore[misc]


def test_run_killed_20_times_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    text, ids = _workflow_yaml(rng)
    targets = _kill_targets(rng)
    (tmp_path / "wf.yaml").write_text(text)
    (tmp_path / f"{MODULE}.py").write_text(AGENTS)
    log1, log2 = tmp_path / "effects-1.log", tmp_path / "effects-2.log"
    store1, store2 = tmp_path / "store-1", tmp_path / "store-2"
    common = ["--max-concurrency", str(CONCURRENCY)]

    with _processes(tmp_path) as procs:
        # 1. uninterrupted
        rc, out, err = procs.call(
            "run", "wf.yaml", "--input", f"log={log1}", "--store", str(store1), "--json", *common
        )
        assert rc == 0, err
        clean = json.loads(out)
        assert clean["status"] == "succeeded"
        expected = {sid: step["output"] for sid, step in clean["steps"].items()}
        assert sorted(expected) == ids
        lines = _log_lines(log1)
        assert len(lines) == STEPS
        assert {(k, s) for k, s in lines} == {(idempotency_key(clean["run_id"], s), s) for s in ids}

        # 2. killed at random moments, resumed each time
        watch = _Watch(store2 / "store.db")
        in_flight_at_kill: list[dict[str, int]] = []
        proc, out_path = procs.start(
            "run", "wf.yaml", "--input", f"log={log2}", "--store", str(store2), "--json", *common
        )
        try:
            for round_no, target in enumerate(targets):
                # never before this process has journaled a success of its own
                goal = max(target, watch.successes + 1)
                seen, last_progress = watch.successes, time.monotonic()
                while watch.poll() < goal:
                    if proc.poll() is not None:
                        pytest.fail(
                            f"round {round_no}: the process ended (exit {proc.returncode}) "
                            f"before {goal} successes were journaled ({watch.successes})\n"
                            + _tail(out_path)
                        )
                    if watch.successes > seen:
                        seen, last_progress = watch.successes, time.monotonic()
                    elif time.monotonic() - last_progress > NO_PROGRESS_S:
                        pytest.fail(
                            f"round {round_no}: no success journaled for {NO_PROGRESS_S:g}s "
                            f"({watch.successes} of {goal})\n" + _tail(out_path)
                        )
                    time.sleep(0.002)
                time.sleep(rng.uniform(0, 0.020))  # the random moment of the kill
                assert proc.poll() is None, (
                    f"round {round_no}: the process ended before it was killed\n" + _tail(out_path)
                )
                proc.kill()
                proc.wait(timeout=10)
                watch.poll()  # everything it committed is there now
                in_flight_at_kill.append(watch.in_flight())
                assert watch.run_id is not None
                proc, out_path = procs.start("resume", watch.run_id, "--store", str(store2))
            rc = proc.wait(timeout=FINAL_TIMEOUT_S)
            assert rc == 0, f"the final resume failed (exit {rc})\n" + _tail(out_path)
            watch.poll()
        finally:
            watch.close()
        run_id = watch.run_id
        assert run_id is not None

        rc, out, err = procs.call("show", run_id, "--store", str(store2), "--json")
        assert rc == 0, err
        shown = json.loads(out)
        rc, out, err = procs.call("runs", "--store", str(store2), "--json")
        assert rc == 0, err
        listed = json.loads(out)

    # 3. the same result as the uninterrupted run
    assert shown["status"] == "succeeded", shown.get("error")
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "succeeded"
    assert sorted(shown["steps"]) == ids
    for sid in ids:
        assert shown["steps"][sid]["status"] == "succeeded", sid
        assert shown["steps"][sid]["output"] == expected[sid], sid

    # the journal: one success per step, attempts that only go up, 21 sessions
    entries = watch.entries
    seqs = [e[0] for e in entries]
    assert all(a < b for a, b in itertools.pairwise(seqs)), "journal seq not increasing"
    successes: dict[str, list[int]] = {sid: [] for sid in ids}
    starts: dict[str, list[int]] = {sid: [] for sid in ids}
    for _seq, kind, step, attempt, *_ in entries:
        if kind == "succeeded":
            successes[step].append(attempt)
        elif kind == "started":
            starts[step].append(attempt)
        assert kind not in ("failed", "retried", "cancelled", "skipped"), (kind, step)
    assert {sid: len(a) for sid, a in successes.items()} == dict.fromkeys(ids, 1)
    for sid in ids:
        assert starts[sid], sid
        assert all(a < b for a, b in itertools.pairwise(starts[sid])), (
            sid,
            starts[sid],
        )
        assert successes[sid] == [starts[sid][-1]], (sid, starts[sid], successes[sid])
        assert shown["steps"][sid]["attempts"] == starts[sid][-1], sid
    sessions = [e[3] for e in entries if e[1] == "run-started"]
    assert sessions == list(range(1, KILLS + 2))
    finished = [json.loads(e[5]) for e in entries if e[1] == "run-finished"]
    assert finished == [{"status": "succeeded", "error": None}]

    # steps cut short by a kill ran again, with a higher attempt number
    cut_short = [(sid, a) for flight in in_flight_at_kill for sid, a in flight.items()]
    assert cut_short, "no kill caught a step while it ran"
    for sid, attempt in cut_short:
        assert successes[sid][0] > attempt, (sid, attempt, starts[sid])
    assert any(step["attempts"] > 1 for step in shown["steps"].values())

    # one side effect per step, under the step's idempotency key
    lines = _log_lines(log2)
    assert len(lines) == STEPS
    assert len({k for k, _ in lines}) == STEPS
    for key, sid in lines:
        assert key == idempotency_key(run_id, sid), (key, sid)
    assert sorted(s for _, s in lines) == ids
    # the attempts the agent was given are the journaled ones
    journaled = {(sid, a) for sid, attempts in starts.items() for a in attempts}
    calls = [line.split() for line in Path(f"{log2}.calls").read_text().splitlines()]
    assert {(sid, int(a)) for sid, a, _ in calls} <= journaled

    # the store file is sound
    with contextlib.closing(sqlite3.connect(store2 / "store.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_the_agent_keeps_its_records_whole_after_a_write_cut_short(tmp_path: Path) -> None:
    from types import SimpleNamespace

    namespace: dict[str, object] = {}
    exec(compile(AGENTS, MODULE, "exec"), namespace)
    log = tmp_path / "effects.log"
    key = idempotency_key("run", "s000")
    log.write_text(key[:30])  # a kill cut the record short, mid-key
    ctx = SimpleNamespace(
        input={"ms": 0, "n": 0, "log": str(log)},
        step_id="s000",
        upstream={},
        idempotency_key=key,
        attempt=2,
    )
    namespace["work"](ctx)  # type: ignore[operator]
    namespace["work"](ctx)  # type: ignore[operator]  (again: the record is there now)
    assert log.read_text() == f"{key[:30]}\n{key} s000\n"
    assert _log_lines(log) == [(key, "s000")]
