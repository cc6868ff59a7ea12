"""Selection and learning in plain words: ``explain``, the line ``run`` starts with, and
``history``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from counterpoint.durations import format_duration
from counterpoint.selection.learning import WorkflowHistory
from counterpoint.selection.select import Recommendation

__all__ = ["print_explanation", "print_history", "selection_line"]

_HOW = {
    "selected": "selected",
    "override": "your choice",
    "workflow": "fixed by the workflow",
    "preference": "your preference, learned",
}


_METHOD = {
    "simulated": "each simulated on the virtual clock",
    "exact": "nothing limits them but the dependencies, so their makespans follow exactly "
    "from the estimates",
    "bounds": "too many steps to simulate each: compared by their bounds",
}


def _secs(value: float | None) -> str:
    return format_duration(value) if value is not None else "-"


def cost_line(rec: Recommendation) -> str | None:
    """What running another pattern than the recommended one is expected to cost."""
    if rec.pattern == rec.recommended or rec.cost_s is None:
        return None
    base = rec.alternative(rec.recommended).makespan_s or 0.0
    if abs(rec.cost_s) <= 1e-9 * max(base, 1.0):
        return f"{rec.pattern} is expected to take as long as the recommended {rec.recommended}"
    share = f" ({rec.cost_s / base:+.0%})" if base > 0 else ""
    word = "longer" if rec.cost_s > 0 else "shorter"
    return (
        f"{rec.pattern} is expected to take {format_duration(abs(rec.cost_s))} {word}{share} "
        f"than the recommended {rec.recommended}"
    )


def selection_line(rec: Recommendation) -> str:
    """One line for the start of a run: the pattern, how it was chosen, and the main why."""
    expected = rec.alternative(rec.pattern).makespan_s
    why = next((r for r in rec.reasons[1:] if not r.startswith("not ")), rec.reasons[0])
    line = f"pattern: {rec.pattern} ({_HOW[rec.how]}), expected {_secs(expected)}: {why}"
    cost = cost_line(rec)
    return f"{line}\n{cost}" if cost else line


def print_explanation(console: Console, workflow: str, rec: Recommendation) -> None:
    a = rec.analysis
    console.print(f"[bold]{workflow}[/bold]: {rec.pattern} ({_HOW[rec.how]})")
    console.print(f"  {rec.policy.summary}", markup=False)
    console.print("why:")
    for reason in rec.reasons:
        console.print(f"  - {reason}", markup=False)
    cost = cost_line(rec)
    if cost:
        console.print(f"cost of the choice: {cost}", markup=False)
    best = min(
        (x.makespan_s for x in rec.alternatives if x.admissible and x.makespan_s is not None),
        default=None,
    )
    table = Table(box=None, pad_edge=False, title_justify="left")
    for col in ("pattern", "expected", "vs best", "past runs", "trade-offs"):
        table.add_column(col, overflow="fold")
    for alt in rec.alternatives:
        if not alt.admissible and alt.makespan_s is None:
            table.add_row(alt.pattern, "-", "-", "", f"ruled out: {alt.why_not}")
            continue
        vs = (
            f"{alt.makespan_s / best - 1:+.0%}"
            if best and alt.makespan_s is not None and best > 0
            else "-"
        )
        past = (
            f"{alt.measured_runs} run(s), median {_secs(alt.measured_s)}"
            if alt.measured_runs
            else ""
        )
        mark = " *" if alt.pattern == rec.pattern else ""
        table.add_row(f"{alt.pattern}{mark}", _secs(alt.makespan_s), vs, past, alt.tradeoffs)
    console.print(f"alternatives ({_METHOD[rec.method]}):")
    console.print(table)
    console.print(
        f"analysis: {a.steps} steps ({a.size}), depth {a.depth}, width {a.width}, critical "
        f"path {_secs(a.critical_path_s)}, work {_secs(a.work_s)}, parallelism "
        f"{a.parallelism:.2f}; {a.gates} gate(s), {a.phases} phase(s); contention "
        f"{a.contention:.2f}; {a.interaction} interaction point(s)",
        markup=False,
    )
    for pref in rec.preferences:
        console.print(
            f"preference: {pref.pattern}, chosen in {pref.chosen} of {pref.runs} runs, "
            f"confidence {pref.confidence:.2f} ({pref.level})",
            markup=False,
        )


def print_history(console: Console, h: WorkflowHistory) -> None:
    console.print(f"[bold]{h.workflow}[/bold]")
    if h.agents:
        table = Table(box=None, pad_edge=False)
        for col in ("agent", "steps", "failure rate", "median", "estimate used"):
            table.add_column(col)
        for name, st in h.agents.items():
            table.add_row(
                name,
                str(st.steps),
                f"{st.failure_rate:.0%}",
                _secs(st.median_s),
                _secs(h.learned[name]) if name in h.learned else "declared",
            )
        console.print(table)
    if h.outcomes:
        console.print("patterns on each definition (fingerprint):")
        for o in h.outcomes:
            console.print(
                f"  {o.fingerprint[:10]}  {o.pattern:<15} {o.runs} run(s), {o.succeeded} "
                f"succeeded, median {_secs(o.median_makespan_s)}",
                markup=False,
            )
    for pref in h.preferences:
        console.print(
            f"preference: {pref.pattern}, chosen over the recommendation in {pref.chosen} of "
            f"{pref.runs} runs, confidence {pref.confidence:.2f}: {pref.level}",
            markup=False,
        )
