"""Looking at a workflow before running it: `validate`, `plan`, `simulate`, `explain`, `import`."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from counterpoint.cli.common import (
    EXIT_INVALID,
    FileArg,
    ImportFormat,
    JsonOpt,
    PatternOpt,
    PlanningBudgetOpt,
    PriorityRule,
    StoreOpt,
    app,
    count,
    err,
    load_workflow,
    open_store_or_exit,
    out,
    print_json,
    query,
    seconds,
)
from counterpoint.errors import (
    ImportFormatError,
)
from counterpoint.graph.analysis import analyse
from counterpoint.graph.dag import Graph
from counterpoint.graph.mermaid import to_mermaid
from counterpoint.model.workflow import Workflow
from counterpoint.observe.explain import print_explanation, selection_line
from counterpoint.observe.report import (
    lower_bound_of,
    print_plan,
    print_simulation,
    print_structure,
)
from counterpoint.runner import simulate as simulate_workflow
from counterpoint.scheduler.planning import PoolModel, choose_priority
from counterpoint.selection.select import select


@app.command()
def validate(file: FileArg) -> None:
    """Check a workflow; print every problem as FILE:LINE:COL: message (exit 2)."""
    wf = load_workflow(file)
    parts = len(wf.plan.parts)
    steps = len(wf.steps) - parts
    shown = [count(steps, "step"), count(len(wf.agents), "agent")]
    if parts:
        shown.append(count(parts, "construct"))
    out.print(f"{file}: ok ({', '.join(shown)})")


@app.command()
def plan(
    file: FileArg,
    json_out: JsonOpt = False,
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="Print the graph as a Mermaid flowchart.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Workers for the lower bound (default: no limit).")
    ] = None,
) -> None:
    """Show a workflow's shape: levels, width, critical path, total work, parallelism, and
    the pattern a run would use (without what past runs say: see explain)."""
    wf = load_workflow(file)
    graph = Graph.from_workflow(wf)
    stats = analyse(graph)
    choice = None if mermaid else _choice(wf, graph, workers)
    if mermaid:
        labels = {s.id: s.agent for s in wf.steps}
        out.print(to_mermaid(graph, labels, stats.critical_steps), end="", markup=False)
        return
    if json_out:
        data = {
            "workflow": wf.name,
            "steps": stats.steps,
            "edges": stats.edges,
            "levels": stats.depth,
            "level_sizes": stats.level_sizes,
            "width": stats.width,
            "critical_path_s": stats.critical_path,
            "critical_path": stats.critical_steps,
            "total_work_s": stats.total_work,
            "parallelism": stats.parallelism,
            "lower_bound_s": choice["lower_bound_s"] if choice else stats.lower_bound(workers),
            "workers": workers,
            "unestimated_steps": stats.unestimated,
            "parts": wf.plan.describe(),
            "planning": choice,
            "selection": asyncio.run(select(wf, workers=workers)).to_json(),
        }
        print_json(data)
        return
    print_plan(out, wf.name, stats, workers, choice)
    print_structure(out, wf.plan.describe())
    rec = asyncio.run(select(wf, workers=workers))
    out.print(selection_line(rec), markup=False)
    out.print(f"(counterpoint explain {file}: the reasons and every alternative)", markup=False)


@app.command()
def simulate(
    file: FileArg,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", min=1, help="Steps at once (default: the workflow's limit, or none)."
        ),
    ] = None,
    json_out: JsonOpt = False,
    priority: Annotated[
        PriorityRule,
        typer.Option(
            help="Which released step starts first: planned (the best of several rules, "
            "simulated before the run), critical-path, efficiency (critical path per share "
            "of the pools a step holds) or fifo."
        ),
    ] = PriorityRule.planned,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"],
            help="The date the simulated run starts at, for time windows (default: now; UTC "
            "unless it has an offset).",
        ),
    ] = None,
    planning_budget: PlanningBudgetOpt = "100ms",
    pattern: PatternOpt = None,
) -> None:
    """Run on the virtual clock (each step takes its estimate): makespan and lower bound.
    With --pattern, under that pattern's policy (its rule instead of --priority)."""
    wf = load_workflow(file)
    workers = workers or wf.max_concurrency
    budget = seconds(planning_budget, "--planning-budget")
    result = asyncio.run(
        simulate_workflow(
            wf,
            workers=workers,
            priority=priority.value,
            start_at=at,
            planning_budget=budget,
            pattern=pattern.value if pattern is not None else None,
        )
    )
    stats = analyse(Graph.from_workflow(wf))
    if json_out:
        bound = lower_bound_of(result.planning, stats, workers)
        data = {
            "workflow": wf.name,
            "workers": workers,
            "priority": priority.value,
            "makespan_s": result.makespan_s,
            "critical_path_s": stats.critical_path,
            "total_work_s": stats.total_work,
            "lower_bound_s": bound,
            "ratio_to_lower_bound": result.makespan_s / bound if bound > 0 else 1.0,
            "steps": {k: {"start_s": r.start, "end_s": r.end} for k, r in result.steps.items()},
            "parts": result.parts,
            "planning": result.planning,
        }
        print_json(data)
        return
    print_simulation(out, result, stats, workers)


@app.command()
def explain(
    file: FileArg,
    json_out: JsonOpt = False,
    pattern: PatternOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", min=1, help="Steps at once (default: the workflow's limit, or none)."
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Which pattern a run of this workflow would use and why: the analysis, the reasons,
    and each alternative with its expected makespan and trade-offs (what past runs in the
    store say included). With --pattern: what choosing that one is expected to cost."""
    wf = load_workflow(file)
    rec = query(
        open_store_or_exit(store),
        lambda s: select(
            wf,
            store=s,
            pattern=pattern.value if pattern is not None else None,
            workers=workers or wf.max_concurrency,
        ),
    )
    if json_out:
        print_json({"workflow": wf.name, **rec.to_json()})
        return
    print_explanation(out, wf.name, rec)


@app.command("import")
def import_(
    fmt: Annotated[ImportFormat, typer.Argument(help="The file's format.", metavar="FORMAT")],
    file: Annotated[Path, typer.Argument(help="The file to convert.", show_default=False)],
) -> None:
    """Convert an STG, WfCommons or DAX file, or an Agent OS template (agent-os), to a
    workflow (YAML on stdout)."""
    from counterpoint.importers import convert, to_yaml

    try:
        data = convert(fmt.value, file)
    except ImportFormatError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    sys.stdout.write(to_yaml(data))


def _choice(wf: Workflow, graph: Graph, workers: int | None) -> dict[str, object] | None:
    """The planner's choice for ``workers`` and the workflow's pools (None without either:
    nothing to choose)."""
    pools = PoolModel.of(wf)
    if not workers and pools is None:
        return None
    return choose_priority(graph, workers, pools=pools).to_json()
