"""Scale: a 100,000-step layered workflow from a YAML file, in a fresh child process.

The parent writes the YAML (block style, as a person would) to a temporary file; a child
(``sys.executable bench/scale.py --child counterpoint FILE``) loads and validates it with
``counterpoint.load``, runs it (``noop`` agents) and reports load s, run s and its peak RSS.
For reference, another child does the bare minimum with the same file: parse it with PyYAML's
C loader (garbage collector off) and run the bare asyncio loop over the ``needs``, with no
validation, positions or model. Children alternate.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_TOTAL_S = 15.0
TARGET_RSS_KIB = 1024 * 1024  # 1 GiB


def write_yaml(path: Path, preds: list[list[int]]) -> None:
    lines = ["name: scale", "agents:", "  noop: {kind: noop}", "steps:"]
    for i, ps in enumerate(preds):
        lines.append(f"  - id: s{i}")
        lines.append("    agent: noop")
        if ps:
            lines.append(f"    needs: [{', '.join(f's{p}' for p in ps)}]")
    path.write_text("\n".join(lines) + "\n")


# --- in the child ----------------------------------------------------------------------------


def child_counterpoint(file: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import counterpoint as cp

    t1 = time.perf_counter()
    wf = cp.load(file)
    t2 = time.perf_counter()
    result = cp.run_sync(wf)
    t3 = time.perf_counter()
    if result.status is not cp.RunStatus.SUCCEEDED:
        raise SystemExit(f"run {result.status}")
    return {
        "import_s": t1 - t0,
        "load_s": t2 - t1,
        "run_s": t3 - t2,
        "total_s": t3 - t1,
        "steps": len(wf.steps),
    }


def child_baseline(file: str) -> dict[str, Any]:
    import gc

    import yaml

    import baseline

    gc.disable()  # no cycles are made; as counterpoint does, spare the collector's re-scans
    t1 = time.perf_counter()
    with open(file, encoding="utf-8") as f:
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    index = {s["id"]: i for i, s in enumerate(data["steps"])}
    preds = [[index[d] for d in s.get("needs", ())] for s in data["steps"]]
    t2 = time.perf_counter()
    asyncio.run(baseline.run_dag(preds, lambda _i: baseline.noop()))
    t3 = time.perf_counter()
    return {"import_s": 0.0, "load_s": t2 - t1, "run_s": t3 - t2, "total_s": t3 - t1}


def child_main(side: str, file: str) -> None:
    figures = child_counterpoint(file) if side == "counterpoint" else child_baseline(file)
    figures["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(figures))


# --- in the parent ---------------------------------------------------------------------------


def _child(side: str, file: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", side, str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"scale child ({side}) failed:\n{proc.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["process_wall_s"] = wall
    return figures


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    import common  # not at the top: the baseline child must not import counterpoint

    steps = 10_000 if quick else 100_000
    width = 100
    reps = 1 if quick else 3
    preds = common.layered(steps // width, width, seed=2)
    runs: dict[str, list[dict[str, Any]]] = {"counterpoint": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        file = Path(tmp) / "scale.yaml"
        write_yaml(file, preds)
        size = file.stat().st_size
        for rep in range(reps):
            order = ["counterpoint", "baseline"] if rep % 2 == 0 else ["baseline", "counterpoint"]
            for side in order:
                runs[side].append(_child(side, file))

    def med(side: str, key: str) -> float:
        return common.median([r[key] for r in runs[side]])

    summary = {
        side: {
            key: med(side, key)
            for key in ("load_s", "run_s", "total_s", "maxrss_kib", "process_wall_s")
        }
        for side in runs
    }
    cp_total = summary["counterpoint"]["total_s"]
    cp_rss = summary["counterpoint"]["maxrss_kib"]
    out = {
        "steps": len(preds),
        "edges": common.edges(preds),
        "yaml_bytes": size,
        "reps": reps,
        "target_total_s": TARGET_TOTAL_S,
        "target_rss_kib": TARGET_RSS_KIB,
        "median": summary,
        "runs": runs,
        "total_ok": cp_total <= TARGET_TOTAL_S,
        "rss_ok": cp_rss <= TARGET_RSS_KIB,
    }
    rows: list[list[object]] = []
    for side in ("counterpoint", "baseline"):
        s = summary[side]
        rows.append(
            [
                side,
                s["load_s"],
                s["run_s"],
                s["total_s"],
                s["maxrss_kib"] / 1024,
                s["process_wall_s"],
            ]
        )
    rows.append(
        [
            "ratio",
            summary["counterpoint"]["load_s"] / summary["baseline"]["load_s"],
            summary["counterpoint"]["run_s"] / summary["baseline"]["run_s"],
            cp_total / summary["baseline"]["total_s"],
            cp_rss / summary["baseline"]["maxrss_kib"],
            summary["counterpoint"]["process_wall_s"] / summary["baseline"]["process_wall_s"],
        ]
    )
    text = common.table(
        f"scale: {len(preds):,}-step layered YAML ({size / 1e6:.1f} MB) in a child process "
        f"(median of {reps}; targets: total <= {TARGET_TOTAL_S:g} s "
        f"[{common.verdict(cp_total, TARGET_TOTAL_S)}], RSS <= 1 GiB "
        f"[{common.verdict(cp_rss, TARGET_RSS_KIB)}])",
        ["side", "load s", "run s", "total s", "peak RSS MiB", "process s"],
        rows,
    )
    return out, text


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        child_main(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: scale.py --child counterpoint|baseline FILE (or run bench/run.py)")
