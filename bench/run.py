"""Run the benchmarks: ``python bench/run.py [--quick] [--only NAME[,NAME]] [--out PATH]``.

Each benchmark prints a table and its figures go to one JSON file (default
``bench/results/latest.json``). See bench/README.md for what each one measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # when imported rather than run as a script
    sys.path.insert(0, str(HERE))

import counterpoint  # noqa: E402
import durable  # noqa: E402
import events  # noqa: E402
import handoff  # noqa: E402
import overhead  # noqa: E402
import ray_steps  # noqa: E402
import resources  # noqa: E402
import scale  # noqa: E402
import selection  # noqa: E402
import sleepy  # noqa: E402
import stg  # noqa: E402
import wfcommons  # noqa: E402

Bench = Callable[[bool], tuple[dict[str, Any], str]]
BENCHMARKS: dict[str, Bench] = {
    "overhead": overhead.bench,
    "scale": scale.bench,
    "sleepy": sleepy.bench,
    "stg": stg.bench,
    "durable": durable.bench,
    "handoff": handoff.bench,
    "resources": resources.bench,
    "wfcommons": wfcommons.bench,
    "events": events.bench,
    "selection": selection.bench,
    "ray": ray_steps.bench,
}


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "counterpoint": counterpoint.__version__,
        "git_commit": commit,
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--only", default="", help=f"comma-separated benchmarks ({', '.join(BENCHMARKS)})"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")

    info = machine()
    print(
        f"counterpoint {info['counterpoint']} ({info['git_commit'] or '?'}), "
        f"Python {info['python']}, {info['nproc']} CPUs ({info['cpu']}), "
        f"{'quick' if args.quick else 'full'} run"
    )
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": info,
        "benchmarks": {},
    }
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        figures, text = BENCHMARKS[name](args.quick)
        figures["bench_s"] = time.perf_counter() - t0
        report["benchmarks"][name] = figures
        print(text)
        print(f"({name}: {figures['bench_s']:.1f} s)", flush=True)
        _write(args.out, report)  # after each benchmark, so a crash keeps what was measured
    report["total_s"] = time.perf_counter() - t_all
    report["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    _write(args.out, report)
    print(f"\nall done in {report['total_s']:.1f} s; figures in {args.out}")
    return 0


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
