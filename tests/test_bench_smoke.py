"""``bench/run.py --quick`` still runs end to end and writes every benchmark's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_bench_writes_all_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert set(figures["benchmarks"]) == {
        "overhead",
        "scale",
        "sleepy",
        "stg",
        "durable",
        "handoff",
        "resources",
        "wfcommons",
        "events",
    }
    stg = figures["benchmarks"]["stg"]
    assert stg["infeasible_schedules"] == 0
    assert stg["importer"].startswith("agrees with the bench's own parser on 36/36")
    # schedule quality does not depend on the machine's load: it holds even in a smoke run
    assert stg["summary"]["critical-path"]["all"]["mean"] <= 1.01
    assert figures["benchmarks"]["wfcommons"]["infeasible_schedules"] == 0
    events = figures["benchmarks"]["events"]
    assert events["latency_samples"] == 100 and len(events["approval_ms"]) == 1
