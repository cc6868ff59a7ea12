"""Events: dispatch rate with triggers, event-to-step latency, approvals across processes.

1. Dispatch: a step publishes 100,000 events (``ctx.emit``) into a run with two triggers
   whose conditions are evaluated on every event (``event.data.sentiment == 'negative'``,
   ``event.data.k == -1``); the rate is events over the time the loop took, beside the same
   with no trigger (the floor). Target: >= 200,000 events/s with the triggers.
2. Latency: a step publishes ``go`` events 2 ms apart; each starts one held step through its
   own trigger (``when: event.data.n == K``); latency = the held step's agent starting minus
   the emit (``perf_counter`` in both). Target: p99 <= 1 ms.
3. Approval across processes: a run of ``python -m counterpoint run`` (a child process, SQLite
   store) waits on an approval step; once the store says ``paused`` this process posts the
   approval to the store (as ``counterpoint approve`` does) and the figure is the time until
   the approval step's ``succeeded`` entry is in the journal. Also the whole ``counterpoint
   approve`` command (process start included). Target: delivery <= 200 ms.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import common
import counterpoint as cp

TARGET_RATE = 200_000
TARGET_P99_MS = 1.0
TARGET_APPROVAL_MS = 200.0

_STATE: dict[str, Any] = {}


async def _emitter(ctx: cp.StepContext) -> object:
    n = _STATE["n"]
    emit = ctx.emit
    t0 = time.perf_counter()
    for k in range(n):
        emit("progress", {"k": k, "sentiment": "negative" if k == n - 1 else "neutral"})
    _STATE["dt"] = time.perf_counter() - t0
    return None


def _dispatch(n: int, triggers: bool) -> float:
    _STATE["n"] = n
    data: dict[str, Any] = {
        "name": "dispatch",
        "agents": {"emit": {"kind": "python", "function": _emitter}, "noop": {"kind": "noop"}},
        "steps": [{"id": "e", "agent": "emit"}, {"id": "r", "agent": "noop"}],
    }
    if triggers:
        data["triggers"] = [
            {"on": "progress", "when": "event.data.sentiment == 'negative'", "run": "r"},
            {"on": "progress", "when": "event.data.k == -1", "run": "r"},
        ]
    wf = _build(data)
    result = asyncio.run(cp.run(wf))
    assert result.status is cp.RunStatus.SUCCEEDED
    if triggers:
        assert result.steps["r"].status is cp.StepState.SUCCEEDED
    return n / _STATE["dt"]


def _build(data: dict[str, Any]) -> cp.Workflow:
    from counterpoint.model.load import workflow_from_data
    from counterpoint.model.locate import NoPositions

    return workflow_from_data(data, NoPositions())


async def _go(ctx: cp.StepContext) -> object:
    stamps = _STATE["emitted"]
    for k in range(_STATE["count"]):
        await asyncio.sleep(0.002)
        stamps[k] = time.perf_counter()
        ctx.emit("go", {"n": k})
    return None


async def _held(ctx: cp.StepContext) -> object:
    _STATE["started"][int(ctx.step_id[1:])] = time.perf_counter()
    return None


def _latency(count: int) -> list[float]:
    _STATE.update(count=count, emitted={}, started={})
    data: dict[str, Any] = {
        "name": "latency",
        "agents": {
            "go": {"kind": "python", "function": _go},
            "held": {"kind": "python", "function": _held},
        },
        "triggers": [
            {"on": "go", "when": f"event.data.n == {k}", "run": f"h{k}"} for k in range(count)
        ],
        "steps": [{"id": "g", "agent": "go"}]
        + [{"id": f"h{k}", "agent": "held"} for k in range(count)],
    }
    result = asyncio.run(cp.run(_build(data)))
    assert result.status is cp.RunStatus.SUCCEEDED
    return sorted((_STATE["started"][k] - _STATE["emitted"][k]) * 1e3 for k in range(count))


_APPROVAL_WF = """\
name: approve-me
agents:
  sign-off: {kind: approval, timeout: 60}
  done: {kind: noop}
steps:
  - {id: review, agent: sign-off}
  - {id: after, agent: done, needs: review}
"""


def _approval(via_cli: bool) -> float:
    """Milliseconds from posting the approval (or launching ``counterpoint approve``) to
    the approval step's success in the journal."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "wf.yaml").write_text(_APPROVAL_WF)
        store_dir = folder / "store"
        env = {**os.environ, "PYTHONPYCACHEPREFIX": str(folder / "pyc")}
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "counterpoint",
                "run",
                str(folder / "wf.yaml"),
                "--store",
                str(store_dir),
                "--json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            store = cp.open_store(store_dir)
            run_id = _wait_paused(store, child)
            t0 = time.perf_counter()
            if via_cli:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "counterpoint",
                        "approve",
                        run_id,
                        "review",
                        "--store",
                        str(store_dir),
                    ],
                    check=True,
                    capture_output=True,
                    env=env,
                )
            else:
                asyncio.run(cp.approve(store, run_id, "review", source="bench"))
            took = _wait_succeeded(store, run_id, "review", t0)
            asyncio.run(store.close())
            child.wait(timeout=30)
            return took
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def _wait_paused(store: cp.Store, child: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the run ended early ({child.returncode})")
        runs = asyncio.run(store.list_runs(limit=1))
        if runs and runs[0].status == "paused":
            return runs[0].run_id
        time.sleep(0.002)  # polling the store, not waiting for time to pass
    raise RuntimeError("the run never paused")


def _wait_succeeded(store: cp.Store, run_id: str, step: str, t0: float) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entries = asyncio.run(store.entries(run_id))
        if any(e.kind == "succeeded" and e.step == step for e in entries):
            return (time.perf_counter() - t0) * 1e3
        time.sleep(0.002)
    raise RuntimeError("the approval never arrived")


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    n = 20_000 if quick else 100_000
    reps = 3 if quick else 5
    rates: dict[str, list[float]] = {"two triggers": [], "no trigger": []}
    for _ in range(reps):
        rates["two triggers"].append(_dispatch(n, True))
        rates["no trigger"].append(_dispatch(n, False))
    rate = common.median(rates["two triggers"])
    floor = common.median(rates["no trigger"])
    count = 100 if quick else 500
    lat = _latency(count)
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    approvals = [_approval(False) for _ in range(1 if quick else 3)]
    cli = [_approval(True) for _ in range(1 if quick else 3)]
    delivery = common.median(approvals)
    out = {
        "events": n,
        "reps": reps,
        "rate_with_triggers": rate,
        "rate_without_triggers": floor,
        "rates": rates,
        "latency_ms_p50": p50,
        "latency_ms_p99": p99,
        "latency_ms_max": lat[-1],
        "latency_samples": count,
        "approval_ms": approvals,
        "approval_cli_ms": cli,
        "ok": rate >= TARGET_RATE and p99 <= TARGET_P99_MS and delivery <= TARGET_APPROVAL_MS,
    }
    text = common.table(
        f"events: {n:,} events published by a step (median of {reps} reps)",
        ["side", "events/s", "µs/event"],
        [
            ["two triggers (conditions on every event)", rate, 1e6 / rate],
            ["no trigger", floor, 1e6 / floor],
        ],
    )
    text += (
        f"\ndispatch: {rate:,.0f} events/s with two triggers evaluated; target >= "
        f"{TARGET_RATE:,} [{'ok' if rate >= TARGET_RATE else 'MISSED'}]"
        f"\nevent to triggered step start ({count} events 2 ms apart, one trigger each): p50 "
        f"{p50:.3f} ms, p99 {p99:.3f} ms, max {lat[-1]:.3f} ms; target p99 <= "
        f"{TARGET_P99_MS:g} ms [{common.verdict(p99, TARGET_P99_MS)}]"
        f"\napproval from another process to the step done: "
        f"{', '.join(f'{a:.0f}' for a in approvals)} ms (posted to the store); target <= "
        f"{TARGET_APPROVAL_MS:g} ms [{common.verdict(delivery, TARGET_APPROVAL_MS)}]; with "
        f"the `counterpoint approve` process: {', '.join(f'{a:.0f}' for a in cli)} ms"
    )
    return out, text


if __name__ == "__main__":
    print(textwrap.dedent(bench("--quick" in sys.argv)[1]))
