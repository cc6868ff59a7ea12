"""Schedule quality on real scientific workflow traces (WfCommons, WfFormat 1.5).

For every trace in ``../shared/benchdata/wfcommons`` (Montage, Epigenomics, 1000Genome,
SRA-search, BLAST) the workflow comes from the project's importer
(``counterpoint.importers``): a pool ``machines`` with the trace's cores (and memory), and
every step ``uses`` its task's cores (and memory) from it. It is simulated on the virtual
clock with ``counterpoint.simulate`` at the recorded core count and with the pool cut to 8, 4
and 2 cores, for the default ``planned`` priority, plain ``critical-path`` and ``fifo``.

The figures: simulated makespan over a lower bound no schedule can beat, max(critical path,
each pool dimension's work / capacity), computed here from the trace itself (not from the
importer's output nor the planner's own bound), and over the makespan measured when the
workflow really ran (``workflow.execution.makespanInSeconds``). Every simulated schedule is
checked against the trace: each step takes its runtime, starts after its parents end, and
at no instant do the running steps hold more cores (or memory) than the pool has.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import common
import counterpoint as cp
from counterpoint.durations import parse_duration
from counterpoint.importers import convert, import_workflow
from counterpoint.model.load import workflow_from_data
from counterpoint.model.locate import NoPositions

ROOT = Path(
    os.environ.get(
        "COUNTERPOINT_WFCOMMONS",
        Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "wfcommons",
    )
)
REDUCED = (8, 4, 2)
QUICK_REDUCED = (4,)
QUICK_TRACES = 2
PRIORITIES = ("planned", "critical-path", "fifo")
_EPS = 1e-9


class Trace:
    """What the trace itself says, read here without the importer: runtimes, parents, each
    task's cores (1 when not given) and memory, the machines' totals, the measured makespan."""

    def __init__(self, path: Path) -> None:
        doc = json.loads(path.read_text(encoding="utf-8"))
        workflow = doc["workflow"]
        execution = workflow["execution"]
        spec_tasks = workflow["specification"]["tasks"]
        runs = {t["id"]: t for t in execution["tasks"]}
        self.path = path
        self.ids = [t["id"] for t in spec_tasks]
        index = {tid: i for i, tid in enumerate(self.ids)}
        self.runtime = [float(runs[tid]["runtimeInSeconds"]) for tid in self.ids]
        self.preds = [[index[p] for p in t.get("parents", [])] for t in spec_tasks]
        self.cores = [float(runs[tid].get("coreCount", 1)) for tid in self.ids]
        memory = [runs[tid].get("memoryInBytes") for tid in self.ids]
        self.memory = [float(m) if m is not None else 0.0 for m in memory]
        machines = execution["machines"]
        self.machine_cores = sum(float(m["cpu"]["coreCount"]) for m in machines)
        mem = [m.get("memoryInBytes") for m in machines]
        self.machine_memory = sum(mem) if all(m is not None for m in mem) else None
        self.measured = float(execution["makespanInSeconds"])

    def critical_path(self) -> float:
        finish = [0.0] * len(self.ids)
        done: set[int] = set()

        def visit(i: int) -> float:  # parents are not always listed before their children
            if i not in done:
                finish[i] = self.runtime[i] + max((visit(p) for p in self.preds[i]), default=0.0)
                done.add(i)
            return finish[i]

        return max((visit(i) for i in range(len(self.ids))), default=0.0)

    def capacity(self, cores: float) -> dict[str, float]:
        cap = {"cores": cores}
        if self.machine_memory:
            cap["memory"] = float(self.machine_memory)
        return cap

    def uses(self, i: int) -> dict[str, float]:
        return {"cores": self.cores[i], "memory": self.memory[i]}

    def bound(self, cores: float) -> float:
        """max(critical path, work / capacity of every pool dimension)."""
        bounds = [self.critical_path()]
        for dim, cap in self.capacity(cores).items():
            work = sum(self.runtime[i] * self.uses(i)[dim] for i in range(len(self.ids)))
            bounds.append(work / cap)
        return max(bounds)


def _importer_agrees(trace: Trace, data: dict[str, Any]) -> bool:
    """The importer's steps are the trace's tasks: same order, runtimes, needs and uses, and
    the pool holds the machines' cores and memory."""
    steps = data["steps"]
    if len(steps) != len(trace.ids):
        return False
    pool = data["resources"]["pools"]["machines"]
    if pool != trace.capacity(trace.machine_cores):
        return False
    for i, step in enumerate(steps):
        needs = list(step.get("needs", ()))
        uses = step["uses"]["machines"]
        if (
            abs(parse_duration(step["estimate"]) - trace.runtime[i]) > _EPS
            or needs != [steps[p]["id"] for p in trace.preds[i]]
            or float(uses["cores"]) != trace.cores[i]
            or float(uses.get("memory", 0.0)) != (trace.memory[i] if "memory" in pool else 0.0)
        ):
            return False
    return True


def infeasible(
    result: cp.RunResult, trace: Trace, ids: list[str], capacity: dict[str, float]
) -> str:
    """Why the simulated schedule is not a valid one ('' if it is): every step succeeded and
    took its runtime, started after the steps it needs ended, and the running steps never
    held more of a pool dimension than its capacity; makespan = the last end."""
    recs = [result.steps[s] for s in ids]
    if any(r.status is not cp.StepState.SUCCEEDED for r in recs):
        return "a step did not succeed"
    if any(r.start is None or r.end is None for r in recs):
        return "a step has no start or end"
    start = [float(r.start or 0.0) for r in recs]
    end = [float(r.end or 0.0) for r in recs]
    for i, ps in enumerate(trace.preds):
        if abs(end[i] - start[i] - trace.runtime[i]) > _EPS:
            return f"{ids[i]} took {end[i] - start[i]}, not {trace.runtime[i]}"
        for p in ps:
            if start[i] < end[p] - _EPS:
                return f"{ids[i]} started at {start[i]} before {ids[p]} ended at {end[p]}"
    # ends before starts at the same instant (rounded: a start at a parent's end is that end)
    events = sorted(
        [(round(end[i], 6), 0, i) for i in range(len(ids))]
        + [(round(start[i], 6), 1, i) for i in range(len(ids))]
    )
    held = dict.fromkeys(capacity, 0.0)
    for t, kind, i in events:
        for dim, cap in capacity.items():
            held[dim] += trace.uses(i)[dim] if kind else -trace.uses(i)[dim]
            if held[dim] > cap + _EPS:
                return f"{held[dim]:g} {dim} held at {t} s, capacity {cap:g}"
    if abs(max(end, default=0.0) - result.makespan_s) > _EPS:
        return f"makespan {result.makespan_s} but the last step ended at {max(end)}"
    return ""


def _workflow(path: Path, data: dict[str, Any], cores: float | None) -> cp.Workflow:
    """The imported workflow, its pool cut to ``cores`` (None: as recorded)."""
    if cores is None:
        return import_workflow("wfcommons", path)
    data = json.loads(json.dumps(data))  # a deep copy
    data["resources"]["pools"]["machines"]["cores"] = cores
    return workflow_from_data(data, NoPositions(str(path)), path.resolve().parent)


def _short(path: Path) -> str:
    return path.stem.split("-", 1)[0]


def bench(quick: bool) -> tuple[dict[str, Any], str]:
    files = sorted(ROOT.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no WfCommons traces in {ROOT}")
    if quick:
        files = files[:QUICK_TRACES]
    reduced = QUICK_REDUCED if quick else REDUCED
    cases: list[dict[str, Any]] = []
    problems: list[str] = []
    agree = 0
    sim_s = 0.0

    async def simulate_all() -> None:
        nonlocal sim_s, agree
        for path in files:
            trace = Trace(path)
            data = convert("wfcommons", path)
            agree += _importer_agrees(trace, data)
            ids = [s["id"] for s in data["steps"]]
            for cores in (None, *reduced):
                wf = _workflow(path, data, cores)
                n_cores = trace.machine_cores if cores is None else float(cores)
                capacity = trace.capacity(n_cores)
                bound = trace.bound(n_cores)
                case: dict[str, Any] = {
                    "trace": path.name,
                    "tasks": len(ids),
                    "cores": int(n_cores),
                    "recorded": cores is None,
                    "measured_s": trace.measured,
                    "bound_s": bound,
                }
                for priority in PRIORITIES:
                    t0 = common.now()
                    result = await cp.simulate(wf, priority=priority)  # type: ignore[arg-type]
                    sim_s += common.now() - t0
                    case[priority] = result.makespan_s
                    why = infeasible(result, trace, ids, capacity)
                    if why:
                        problems.append(f"{path.name} cores={int(n_cores)} {priority}: {why}")
                    if priority == "planned":
                        planning = result.planning or {}
                        case["rule"] = planning.get("rule")
                        case["schedules_tried"] = planning.get("schedules_tried")
                        case["planning_s"] = planning.get("planning_s")
                        case["planner_bound_s"] = planning.get("lower_bound_s")
                        case["planner_expected_s"] = planning.get("expected_makespan_s")
                        case["planner_critical_path_rule_s"] = planning.get(
                            "critical_path_rule_makespan_s"
                        )
                cases.append(case)

    asyncio.run(simulate_all())

    def ratio(c: dict[str, Any], priority: str) -> float:
        return float(c[priority]) / float(c["bound_s"])

    rows: list[list[object]] = []
    for c in cases:
        rows.append(
            [
                _short(Path(c["trace"])),
                c["tasks"],
                f"{c['cores']}{'*' if c['recorded'] else ''}",
                c["measured_s"],
                c["planned"],
                c["bound_s"],
                ratio(c, "planned"),
                c["planned"] / c["measured_s"],
                c["rule"],
                c["schedules_tried"],
                c["planning_s"] * 1e3,
                c["planner_expected_s"],
                c["planner_critical_path_rule_s"],
                c["critical-path"],
                ratio(c, "critical-path"),
                c["fifo"],
                ratio(c, "fifo"),
            ]
        )
    text = common.table(
        f"wfcommons: simulated makespan on {len(files)} real traces (* = recorded cores; "
        "bound = max(critical path, work / capacity))",
        [
            "trace",
            "tasks",
            "cores",
            "measured s",
            "simulated s",
            "bound s",
            "sim/bound",
            "sim/measured",
            "rule",
            "tried",
            "planning ms",
            "expected s",
            "cp rule (plan) s",
            "crit-path s",
            "cp/bound",
            "fifo s",
            "fifo/bound",
        ],
        rows,
    )
    text += (
        "\nsimulated: simulate(wf) (planned); expected and cp rule (plan): the planner's "
        "expected_makespan_s and critical_path_rule_makespan_s; crit-path and fifo: "
        "simulate(wf, priority=...)"
    )

    def stats(sel: list[dict[str, Any]], priority: str) -> dict[str, Any]:
        r = [ratio(c, priority) for c in sel]
        return {
            "mean": sum(r) / len(r),
            "max": max(r),
            "at_bound": sum(x <= 1 + _EPS for x in r),
        }

    recorded = [c for c in cases if c["recorded"]]
    smaller = [c for c in cases if not c["recorded"]]
    groups: list[tuple[str, list[dict[str, Any]]]] = [("recorded", recorded)]
    groups += [(str(k), [c for c in smaller if c["cores"] == k]) for k in reduced]
    groups.append(("reduced, all", smaller))
    summary: dict[str, Any] = {}
    srows: list[list[object]] = []
    for label, sel in groups:
        if not sel:
            continue
        summary[label] = {p: stats(sel, p) for p in PRIORITIES}
        summary[label]["cases"] = len(sel)
        srows.append(
            [
                label,
                len(sel),
                *(
                    x
                    for p in PRIORITIES
                    for x in (summary[label][p]["mean"], summary[label][p]["max"])
                ),
                f"{summary[label]['planned']['at_bound']}/{len(sel)}",
            ]
        )
    text += common.table(
        "wfcommons: simulated / lower bound by core count",
        [
            "cores",
            "cases",
            "planned mean",
            "planned max",
            "crit-path mean",
            "crit-path max",
            "fifo mean",
            "fifo max",
            "planned at bound",
        ],
        srows,
    )

    vs_measured = [c["planned"] / c["measured_s"] for c in recorded]
    better_than_cp = sum(c["planned"] < c["critical-path"] - _EPS for c in cases)
    worse_than_cp = sum(c["planned"] > c["critical-path"] + _EPS for c in cases)
    better_than_fifo = sum(c["planned"] < c["fifo"] - _EPS for c in cases)
    worse_than_fifo = sum(c["planned"] > c["fifo"] + _EPS for c in cases)
    # the planner's own figures against what the engine did and this bench computed
    bound_differs = sum(abs(c["planner_bound_s"] - c["bound_s"]) > 1e-6 for c in cases)
    expected_differs = sum(abs(c["planner_expected_s"] - c["planned"]) > 1e-6 for c in cases)
    cp_rule_differs = sum(
        abs(c["planner_critical_path_rule_s"] - c["critical-path"]) > 1e-6 for c in cases
    )
    planning = sorted(c["planning_s"] for c in cases)
    importer = f"agrees with the traces on {agree}/{len(files)} files"
    out: dict[str, Any] = {
        "traces": len(files),
        "cases": len(cases),
        "reduced_cores": list(reduced),
        "summary": summary,
        "recorded_sim_over_bound": [ratio(c, "planned") for c in recorded],
        "recorded_sim_over_measured": vs_measured,
        "recorded_sim_over_measured_mean": sum(vs_measured) / len(vs_measured),
        "planned_vs_critical_path": {"better": better_than_cp, "worse": worse_than_cp},
        "planned_vs_fifo": {"better": better_than_fifo, "worse": worse_than_fifo},
        "planner_bound_differs": bound_differs,
        "planner_expected_differs": expected_differs,
        "planner_critical_path_rule_differs": cp_rule_differs,
        "planning_s_mean": sum(planning) / len(planning),
        "planning_s_max": planning[-1],
        "infeasible_schedules": len(problems),
        "infeasible_examples": problems[:10],
        "importer": importer,
        "simulations": len(PRIORITIES) * len(cases),
        "simulate_s": sim_s,
        "cases_detail": cases,
    }
    rec = summary["recorded"]["planned"]
    text += (
        f"\nrecorded cores: simulated / bound mean {rec['mean']:.3f}, max {rec['max']:.3f} "
        f"({rec['at_bound']}/{len(recorded)} at the bound); simulated / measured "
        f"{min(vs_measured):.3f}-{max(vs_measured):.3f} "
        f"(mean {out['recorded_sim_over_measured_mean']:.3f})"
    )
    if smaller:
        red = summary["reduced, all"]
        text += (
            f"\nreduced cores ({len(smaller)} cases): simulated / bound planned mean "
            f"{red['planned']['mean']:.3f} max {red['planned']['max']:.3f}; critical-path "
            f"{red['critical-path']['mean']:.3f} / {red['critical-path']['max']:.3f}; fifo "
            f"{red['fifo']['mean']:.3f} / {red['fifo']['max']:.3f}"
        )
    text += (
        f"\nplanned vs critical-path: shorter in {better_than_cp}, longer in {worse_than_cp} of "
        f"{len(cases)}; vs fifo: shorter in {better_than_fifo}, longer in {worse_than_fifo}"
        f"\nplanner's figures: lower bound differs from this bench's in {bound_differs}, "
        f"expected makespan from the engine's in {expected_differs}, critical-path rule "
        f"makespan from the engine's critical-path run in {cp_rule_differs}; planning "
        f"{out['planning_s_mean'] * 1e3:.2f} ms mean, {planning[-1] * 1e3:.2f} ms max"
        f"\n{out['simulations']} simulations in {sim_s:.2f} s; every schedule checked: "
        f"{len(problems)} infeasible"
        f"\nimporter counterpoint.importers.wfcommons: {importer}"
    )
    for p in problems[:5]:
        text += f"\n  infeasible: {p}"
    return out, text
