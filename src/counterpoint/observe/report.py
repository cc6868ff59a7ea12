"""Summaries printed after a run, and the plan and simulation reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from counterpoint.durations import format_duration
from counterpoint.graph.analysis import GraphStats
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.result import RunResult, RunStatus
from counterpoint.store.base import RunInfo
from counterpoint.store.replay import StepReplay

if TYPE_CHECKING:
    from counterpoint.history import AgentStats

__all__ = [
    "lower_bound_of",
    "print_plan",
    "print_run",
    "print_runs",
    "print_simulation",
    "print_stats",
    "print_structure",
    "print_summary",
]

STEP_TABLE_UP_TO = 60
_COLOUR = {
    StepState.SUCCEEDED: "green",
    StepState.FAILED: "red",
    StepState.SKIPPED: "yellow",
    StepState.CANCELLED: "yellow",
    StepState.RUNNING: "cyan",
    StepState.WAITING: "cyan",
    StepState.PENDING: "dim",
    StepState.READY: "dim",
}
_RUN_COLOUR = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.PAUSED: "yellow",
    RunStatus.RUNNING: "cyan",
}


def print_summary(console: Console, result: RunResult) -> None:
    """A step table (small runs) or the failures (large ones), then one line of totals."""
    records = list(result.steps.values())
    if len(records) <= STEP_TABLE_UP_TO:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("step", "agent", "status", "tries", "time", "note"):
            table.add_column(col, no_wrap=col != "note")
        for r in records:
            took = (
                format_duration(r.end - r.start)
                if r.start is not None and r.end is not None
                else ""
            )
            table.add_row(
                r.id,
                r.agent,
                Text(r.status.value, style=_COLOUR[r.status]),
                str(r.attempts),
                took,
                "cached" if r.cached else _short(r.error),
            )
        console.print(table)
    else:
        bad = [r for r in records if r.status is StepState.FAILED]
        for r in bad[:10]:
            console.print(Text.assemble(("✗ ", "red"), (r.id, "bold"), f": {_short(r.error)}"))
        if len(bad) > 10:
            console.print(f"… and {len(bad) - 10} more failed steps")
    counts = ", ".join(f"{result.count(s)} {s.value}" for s in StepState if result.count(s))
    console.print(
        Text.assemble(
            ("run ", "bold"),
            result.run_id,
            " ",
            (result.status.value, f"bold {_RUN_COLOUR[result.status]}"),
            f" in {format_duration(result.makespan_s)} ({counts}); pattern: {result.pattern}"
            + "".join(f" → {a.get('to')}" for a in result.adaptations),
        )
    )


def _short(text: str | None, limit: int = 100) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def print_plan(
    console: Console,
    name: str,
    stats: GraphStats,
    workers: int | None,
    planning: Mapping[str, object] | None = None,
) -> None:
    """The shape of a workflow: levels, width, critical path, work, parallelism; with
    ``planning``, the priority rule chosen for ``workers`` and the makespan it expects."""
    console.print(Text(name, style="bold"))
    rows = [
        ("steps", f"{stats.steps} ({stats.edges} dependencies)"),
        ("levels", f"{stats.depth} (sizes: {_sizes(stats.level_sizes)})"),
        ("width", f"{stats.width} (the widest level)"),
        (
            "critical path",
            f"{format_duration(stats.critical_path)} "
            f"({len(stats.critical_steps)} steps: "
            f"{_path(stats.critical_steps)})",
        ),
        ("total work", format_duration(stats.total_work)),
        ("parallelism", f"{stats.parallelism:.2f} (work / critical path)"),
        (
            "lower bound",
            f"{format_duration(lower_bound_of(planning, stats, workers))}"
            + (
                f" on {workers} worker{'s' if workers != 1 else ''}"
                if workers
                else " with unlimited workers"
            )
            + (" and the pools" if _pools_bind(planning, stats, workers) else ""),
        ),
    ]
    if planning:
        expected = planning["expected_makespan_s"]
        assert isinstance(expected, float | int)
        rows.append(("expected makespan", f"{format_duration(float(expected))} ({expected:.6g}s)"))
        rows += _planning_rows(planning)
    if stats.unestimated:
        rows.append(("note", f"{stats.unestimated} steps have no estimate; 1s assumed"))
    _rows(console, rows)


def print_simulation(
    console: Console, result: RunResult, stats: GraphStats, workers: int | None
) -> None:
    """The makespan on the virtual clock beside the critical path and the lower bound."""
    bound = lower_bound_of(result.planning, stats, workers)
    what = "max(critical path, work / workers" + (
        ", each pool's work / capacity)" if _pools_bind(result.planning, stats, workers) else ")"
    )
    ratio = result.makespan_s / bound if bound > 0 else 1.0
    console.print(Text(f"{result.workflow} on the virtual clock", style="bold"))
    rows = [
        ("workers", str(workers) if workers else "unlimited"),
        ("makespan", format_duration(result.makespan_s) + f" ({result.makespan_s:.6g}s)"),
        ("critical path", format_duration(stats.critical_path) + f" ({stats.critical_path:.6g}s)"),
        ("total work", format_duration(stats.total_work) + f" ({stats.total_work:.6g}s)"),
        (
            "lower bound",
            format_duration(bound) + f" ({bound:.6g}s) = {what}",
        ),
        ("makespan / bound", f"{ratio:.4f}"),
    ]
    rows += _planning_rows(result.planning)
    if stats.unestimated:
        rows.append(("note", f"{stats.unestimated} steps have no estimate; 1s assumed"))
    _rows(console, rows)


def lower_bound_of(
    planning: Mapping[str, object] | None, stats: GraphStats, workers: int | None
) -> float:
    """The planner's lower bound (it counts the pools), else the graph's."""
    given = planning.get("lower_bound_s") if planning else None
    return float(given) if isinstance(given, int | float) else stats.lower_bound(workers)


def _pools_bind(
    planning: Mapping[str, object] | None, stats: GraphStats, workers: int | None
) -> bool:
    """Whether a pool's work over its capacity is what sets the lower bound."""
    return lower_bound_of(planning, stats, workers) > stats.lower_bound(workers) + 1e-9


def _planning_rows(planning: Mapping[str, object] | None) -> list[tuple[str, str]]:
    """What the planner chose, and what the plain critical-path rule would have given."""
    if not planning:
        return []
    tried = planning["schedules_tried"]
    took = planning["planning_s"]
    assert isinstance(took, float | int)
    base = planning["critical_path_rule_makespan_s"]
    expected = planning["expected_makespan_s"]
    assert isinstance(base, float | int) and isinstance(expected, float | int)
    proven = " (proven optimal: it reaches the lower bound)" if planning["proven_optimal"] else ""
    return [
        ("priority rule", f"{planning['rule']}{proven}"),
        (
            "planning",
            f"{tried} schedule{'s' if tried != 1 else ''} simulated in "
            f"{format_duration(float(took))}; the critical-path "
            f"rule alone gives {format_duration(float(base))} ({float(base):.6g}s)",
        ),
    ]


def _rows(console: Console, rows: list[tuple[str, str]]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


def _sizes(sizes: list[int], limit: int = 12) -> str:
    shown = ", ".join(map(str, sizes[:limit]))
    return shown + (f", … ({len(sizes) - limit} more)" if len(sizes) > limit else "")


def _path(ids: list[str], limit: int = 8) -> str:
    if len(ids) <= limit:
        return " → ".join(ids)
    return " → ".join(ids[:4]) + " → … → " + " → ".join(ids[-3:])


_STATE_COLOUR = {
    "succeeded": "green",
    "failed": "red",
    "crashed": "red",
    "interrupted": "yellow",
    "paused": "yellow",
    "skipped": "yellow",
    "cancelled": "yellow",
    "running": "cyan",
    "waiting": "cyan",
}


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def print_runs(console: Console, runs: list[RunInfo], location: str) -> None:
    """``counterpoint runs``: one line per run, newest first."""
    from counterpoint.history import run_state

    if not runs:
        console.print(f"no runs in {location}")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("run", "workflow", "status", "pattern", "started", "duration"):
        table.add_column(col, no_wrap=True)
    for info in runs:
        state = run_state(info)
        took = format_duration(info.makespan_s) if info.makespan_s is not None else ""
        table.add_row(
            info.run_id,
            info.workflow,
            Text(state, style=_STATE_COLOUR.get(state, "")),
            info.pattern,
            _when(info.created_at),
            took,
        )
    console.print(table)


def print_stats(console: Console, agents: list[AgentStats], location: str) -> None:
    """``counterpoint stats``: one line per agent."""
    if not agents:
        console.print(f"no runs in {location}")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("agent", "steps", "failed", "failure rate", "median", "p90", "mean"):
        table.add_column(col, no_wrap=True, justify="left" if col == "agent" else "right")

    def took(value: float | None) -> str:
        return format_duration(value) if value is not None else ""

    for a in agents:
        table.add_row(
            a.agent,
            str(a.steps),
            str(a.failed),
            f"{a.failure_rate:.0%}",
            took(a.median_s),
            took(a.p90_s),
            took(a.mean_s),
        )
    console.print(table)


def print_run(console: Console, info: RunInfo, states: Mapping[str, StepReplay]) -> None:
    """``counterpoint show``: the run, then a table of its steps."""
    from counterpoint.history import run_state

    state = run_state(info)
    console.print(
        Text.assemble(
            ("run ", "bold"),
            info.run_id,
            " of ",
            (info.workflow, "bold"),
            ": ",
            (state, _STATE_COLOUR.get(state, "")),
            f", started {_when(info.created_at)}",
            f", pattern {info.pattern}" if info.pattern else "",
        )
    )
    console.print(f"from {info.source}; inputs {json.dumps(info.inputs)}", markup=False)
    if info.error:
        console.print(Text(f"error: {info.error}", style="red"))
    steps = list(info.agents.items())
    if len(steps) > STEP_TABLE_UP_TO:  # a big run: the counts, then what did not succeed
        counts: dict[str, int] = {}
        for step, _ in steps:
            status = states[step].status if step in states else "pending"
            counts[status] = counts.get(status, 0) + 1
        console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        steps = [(s, a) for s, a in steps if s not in states or states[s].status != "succeeded"]
        if len(steps) > STEP_TABLE_UP_TO:
            console.print(f"the first {STEP_TABLE_UP_TO} steps that did not succeed (--json: all):")
            steps = steps[:STEP_TABLE_UP_TO]
        if not steps:
            return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("step", "agent", "status", "tries", "started", "time", "output or error"):
        table.add_column(col, no_wrap=col != "output or error")
    for step, agent in steps:
        s = states.get(step)
        status = s.status if s else "pending"
        took = format_duration(s.duration_s) if s and s.duration_s is not None else ""
        if s and status == "succeeded":
            note = _short(s.output_json, 60) if s.output_json not in (None, "null") else ""
        else:
            note = _short(s.error if s else None, 60)
        table.add_row(
            step,
            agent,
            Text(status, style=_STATE_COLOUR.get(status, "dim")),
            str(s.attempts if s else 0),
            _when(s.started_at if s else None),
            took,
            note,
        )
    console.print(table)


def print_structure(console: Console, parts: list[dict[str, object]]) -> None:
    """``plan``: the constructs, nested as written, with their patterns, streams, sync
    points, gates and policies."""
    if not parts:
        return
    console.print(Text("structure", style="bold"))
    children: dict[object, list[dict[str, object]]] = {}
    for part in parts:
        children.setdefault(part["parent"], []).append(part)

    def show(part: dict[str, object], depth: int) -> None:
        pad = "  " * (depth + 1)
        line = f"{pad}{part['id']}: {part['kind']}, {part['pattern']}"
        extras = []
        if "rollback" in part:
            extras.append(f"rollback up to {part['rollback']}")
        if part.get("lookahead"):
            extras.append("lookahead")
        if "gate" in part:
            extras.append(f"gate {json.dumps(part['gate'])}")
        if extras:
            line += " (" + "; ".join(extras) + ")"
        console.print(line, markup=False)
        streams = part.get("streams")
        if isinstance(streams, dict):
            shares = part.get("shares") or {}
            assert isinstance(shares, dict)
            for name, ids in streams.items():
                share = f" [share {shares[name]}]" if name in shares else ""
                console.print(f"{pad}  stream {name}{share}: {' -> '.join(ids)}", markup=False)
        syncs = part.get("sync_points")
        if isinstance(syncs, dict):
            for name, sp in syncs.items():
                after = ", ".join(f"{s} after {step}" for s, step in sp["after"].items())
                console.print(f"{pad}  sync point {name}: {after}", markup=False)
        if "conflicts" in part:
            console.print(f"{pad}  conflicts: {json.dumps(part['conflicts'])}", markup=False)
        if not streams:
            members = part.get("members")
            assert isinstance(members, list)
            plain = [m for m in members if m not in {c["id"] for c in children.get(part["id"], [])}]
            if plain:
                joiner = " -> " if part["pattern"] == "sequential" else ", "
                console.print(f"{pad}  steps: {joiner.join(plain)}", markup=False)
        for child in children.get(part["id"], []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)
