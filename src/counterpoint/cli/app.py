"""The ``counterpoint`` command line.

Exit codes: 0 the run succeeded (or the file is valid), 1 the workflow failed, 2 invalid
input (the workflow file, options or inputs), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TextIO, TypeVar, cast

import typer
from rich.console import Console

from counterpoint.cli.prompt import TerminalApprovals
from counterpoint.durations import parse_duration
from counterpoint.errors import (
    CannotResume,
    CounterpointError,
    ImportFormatError,
    Problem,
    RunNotFound,
    StoreError,
    WorkflowInvalid,
)
from counterpoint.graph.analysis import analyse
from counterpoint.graph.dag import Graph
from counterpoint.graph.mermaid import to_mermaid
from counterpoint.history import run_state
from counterpoint.model.load import load
from counterpoint.model.workflow import Workflow
from counterpoint.observe.explain import print_explanation, print_history, selection_line
from counterpoint.observe.progress import adaptation_line, progress_for
from counterpoint.observe.report import (
    lower_bound_of,
    print_plan,
    print_run,
    print_runs,
    print_simulation,
    print_stats,
    print_structure,
    print_summary,
)
from counterpoint.policy.redact import RedactingWriter, Redactor
from counterpoint.runner import approve as approve_step
from counterpoint.runner import resolve_inputs, send_event
from counterpoint.runner import resume as resume_run
from counterpoint.runner import run as run_workflow
from counterpoint.runner import simulate as simulate_workflow
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.engine import Engine
from counterpoint.scheduler.planning import PoolModel, choose_priority
from counterpoint.scheduler.result import RunResult, RunStatus
from counterpoint.selection.learning import workflow_history
from counterpoint.selection.select import select
from counterpoint.store import MemoryStore, RunInfo, StepReplay, Store, open_store, replay

__all__ = ["app", "main"]

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="counterpoint",
    help="Run multi-agent workflows: composable patterns, near-optimal schedules, durable runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Piped output is not cut to 80 columns: tables keep whole ids and messages.
# Everything the CLI prints goes through these, which keep secrets out (policy.redact).
_stdout = RedactingWriter("stdout", Redactor.from_environment())
_stderr = RedactingWriter("stderr", _stdout.redactor)
out = Console(
    file=cast(TextIO, _stdout),
    highlight=False,
    soft_wrap=True,
    width=None if sys.stdout.isatty() else 200,
)
err = Console(file=cast(TextIO, _stderr), highlight=False, soft_wrap=True)


class PriorityRule(StrEnum):
    planned = "planned"
    critical_path = "critical-path"
    efficiency = "efficiency"
    fifo = "fifo"


class PatternChoice(StrEnum):
    sequential = "sequential"
    parallel = "parallel"
    hybrid = "hybrid"
    event_driven = "event-driven"
    resource_aware = "resource-aware"


PatternOpt = Annotated[
    PatternChoice | None,
    typer.Option(
        "--pattern",
        help="Run this coordination pattern instead of the selected one (sequential, "
        "parallel, hybrid, event-driven, resource-aware).",
        show_default=False,
    ),
]


class ImportFormat(StrEnum):
    stg = "stg"
    wfcommons = "wfcommons"
    dax = "dax"
    agent_os = "agent-os"


def _invalid(problems: list[Problem]) -> NoReturn:
    for p in problems:
        err.print(str(p), markup=False)
    raise typer.Exit(EXIT_INVALID)


def _print_json(data: object) -> None:
    """Plain JSON on stdout, nothing else there (so it can be piped into jq)."""
    _stdout.write(json.dumps(data, indent=2, default=repr) + "\n")
    _stdout.flush()


def _load(file: Path) -> Workflow:
    try:
        wf = load(file)
    except WorkflowInvalid as exc:
        _invalid(exc.problems)
    if wf.policy.redact:  # the workflow's own secrets, in everything printed from now on
        _stdout.redactor = _stderr.redactor = Redactor.from_environment(wf.policy.redact)
    return wf


def _parse_inputs(workflow: Workflow, items: list[str]) -> dict[str, object]:
    """``k=v`` pairs; a value is JSON unless the input is declared as a string."""
    values: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            _invalid([Problem(f"--input {item!r}: write NAME=VALUE", file="<command line>")])
        spec = workflow.inputs.get(name)
        if spec is not None and spec.type == "string":
            values[name] = raw
            continue
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values


FileArg = Annotated[Path, typer.Argument(help="The workflow YAML file.", show_default=False)]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The run store: a folder (holding store.db) or a .db file; ':memory:' keeps "
        "nothing. Default: $COUNTERPOINT_HOME, else ./.counterpoint.",
        show_default=False,
    ),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option("--no-cache", help="Neither use nor fill the cache of step outputs."),
]
RunIdArg = Annotated[
    str, typer.Argument(help="A run id, or the start of one.", metavar="RUN_ID", show_default=False)
]


def _open_store(store: str | None) -> Store:
    if store == ":memory:":
        return MemoryStore()
    try:
        return open_store(store)
    except StoreError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


T = TypeVar("T")


def _query(store: Store, ask: Callable[[Store], Awaitable[T]]) -> T:
    """What ``ask`` finds in ``store``, which is closed afterwards; a store error exits 2."""

    async def go() -> T:
        try:
            return await ask(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except StoreError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]


@app.command()
def validate(file: FileArg) -> None:
    """Check a workflow; print every problem as FILE:LINE:COL: message (exit 2)."""
    wf = _load(file)
    parts = len(wf.plan.parts)
    steps = len(wf.steps) - parts
    shown = [_count(steps, "step"), _count(len(wf.agents), "agent")]
    if parts:
        shown.append(_count(parts, "construct"))
    out.print(f"{file}: ok ({', '.join(shown)})")


@app.command()
def run(
    file: FileArg,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="An input as NAME=VALUE (VALUE is JSON or text); repeatable."
        ),
    ] = None,
    json_out: JsonOpt = False,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency", "-j", min=1, help="Steps running at once (default: no limit)."
        ),
    ] = None,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="Stop everything at the first step that fails for good."),
    ] = False,
    priority: Annotated[
        PriorityRule | None,
        typer.Option(
            help="Which released step starts first: planned (the best of several rules, "
            "simulated before the run), critical-path, efficiency (critical path per share "
            "of the pools a step holds) or fifo. Default: the pattern's rule.",
            show_default=False,
        ),
    ] = None,
    pattern: PatternOpt = None,
    adapt: Annotated[
        bool | None,
        typer.Option(
            "--adapt/--no-adapt",
            help="Switch the coordination during the run when it pays. Default: when the "
            "pattern was selected, not when you or the workflow fixed it.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for retry jitter.")] = None,
    store: StoreOpt = None,
    no_cache: NoCacheOpt = False,
    planning_budget: Annotated[
        str,
        typer.Option(
            "--planning-budget",
            help="How long the planned rule may search before the run (250ms, 1s).",
        ),
    ] = "100ms",
) -> None:
    """Run a workflow, journaled in the store. Exit 0 succeeded, 1 failed, 2 invalid input,
    130 interrupted."""
    wf = _load(file)
    budget = _seconds(planning_budget, "--planning-budget")
    values = _parse_inputs(wf, inputs or [])
    try:
        resolve_inputs(wf, values)  # report bad inputs before anything is printed or run
    except WorkflowInvalid as exc:
        _invalid(exc.problems)
    observers = [] if json_out else [progress_for(err)]
    the_store = _open_store(store)
    if not json_out:
        _print_header(wf)

    ask = not json_out and sys.stdin.isatty() and _has_approvals(wf)

    async def go(on_engine: Callable[[Engine], None]) -> RunResult:
        if ask:
            watch = on_engine

            def on_engine(engine: Engine) -> None:
                watch(engine)
                TerminalApprovals(engine, err)

        selection = await select(  # (the workflow's own pattern: select says so)
            wf,
            store=the_store,
            pattern=pattern.value if pattern is not None else None,
            workers=max_concurrency or wf.max_concurrency,
        )
        if not json_out:
            err.print(selection_line(selection), markup=False)
        return await run_workflow(
            wf,
            inputs=values,
            observers=observers,
            max_concurrency=max_concurrency,
            fail_fast=fail_fast,
            priority=priority.value if priority is not None else None,
            seed=seed,
            store=the_store,
            cache=not no_cache,
            on_engine=on_engine,
            planning_budget=budget,
            selection=selection,
            adapt=adapt,
        )

    _finish(wf, _drive(go, the_store), json_out)


def _seconds(text: str, option: str) -> float:
    """A duration given on the command line; a bad one is a usage error (exit 2)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _has_approvals(wf: Workflow) -> bool:
    p = wf.policy
    held = p.mode == "mandatory" and p.approval_above is not None
    return (
        any(a.kind == "approval" for a in wf.agents.values())
        or any(o.kind == "escalate" for s in wf.steps for o in (s.recovery or wf.defaults.recovery))
        or (held and any(s.risk > (p.approval_above or 0.0) for s in wf.steps))
    )


def _finish(wf: Workflow, result: RunResult, json_out: bool) -> NoReturn:
    """Print the result of a run (or resumed run) and exit with its code."""
    if json_out:
        _print_json(result.to_json())
    else:
        print_summary(out, result)
        _print_results(wf, result)
        if result.status is RunStatus.INTERRUPTED:
            err.print("interrupted: running steps were cancelled")
    if result.error:
        err.print(f"error: {result.error}", markup=False)
    if result.status is not RunStatus.SUCCEEDED and result.store and result.store != "<memory>":
        err.print(f"to go on from here: counterpoint resume {result.run_id}", markup=False)
    raise typer.Exit(result.status.exit_code)


def _drive(
    go: Callable[[Callable[[Engine], None]], Awaitable[RunResult]], store: Store
) -> RunResult:
    """Run ``go`` with Ctrl-C handled and the store closed afterwards; bad input exits 2."""

    async def main() -> RunResult:
        try:
            return await _interruptible(go)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except WorkflowInvalid as exc:
        _invalid(exc.problems)
    except (StoreError, RunNotFound, CannotResume) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


RESULTS_UP_TO = 5  # final steps whose outputs are shown after a run
RESULT_LINES = 40


def _print_results(wf: Workflow, result: RunResult) -> None:
    """The outputs of the final steps (those nothing needs): what the workflow produced."""
    graph = wf.graph
    finals = [graph.ids[i] for i, succ in enumerate(graph.succs) if not succ]
    shown = [
        (sid, result.steps[sid].output)
        for sid in finals
        if result.steps[sid].status is StepState.SUCCEEDED and result.steps[sid].output is not None
    ]
    if not shown or len(finals) > RESULTS_UP_TO:
        return
    for sid, value in shown:
        text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
        lines = text.rstrip().splitlines()
        if len(lines) > RESULT_LINES:
            more = len(lines) - RESULT_LINES
            lines = [*lines[:RESULT_LINES], f"… {more} more lines (see --json)"]
        out.print(f"[bold]output of {sid}[/bold]")
        out.print("\n".join(lines), markup=False, highlight=False)


def _print_header(wf: Workflow) -> None:
    """The workflow, and which agent does what (so stand-ins are never taken for the real)."""
    parts = len(wf.plan.parts)
    constructs = f" in {_count(parts, 'construct')}" if parts else ""
    err.print(f"[bold]{wf.name}[/bold]: {_count(len(wf.steps) - parts, 'step')}{constructs}")
    if wf.description:
        err.print(wf.description.strip(), markup=False)
    described = [(n, a) for n, a in wf.agents.items() if a.description]
    if 0 < len(described) <= MAX_AGENTS_LISTED:
        for name, agent in described:
            err.print(f"  agent {name} ({agent.kind}): {agent.description}", markup=False)


MAX_AGENTS_LISTED = 12


async def _interruptible(
    go: Callable[[Callable[[Engine], None]], Awaitable[RunResult]],
) -> RunResult:
    """Run with Ctrl-C handled: the first stops the run cleanly, a second cancels at once."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    presses = 0

    def on_engine(engine: Engine) -> None:
        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                err.print(
                    "\n[yellow]interrupting: cancelling running steps "
                    "(Ctrl-C again to stop at once)[/yellow]"
                )
                engine.interrupt()
            elif main is not None:
                main.cancel()

        loop.add_signal_handler(signal.SIGINT, on_sigint)

    try:
        return await go(on_engine)
    except asyncio.CancelledError:
        err.print("stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)


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
    wf = _load(file)
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
        _print_json(data)
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
    planning_budget: Annotated[
        str,
        typer.Option(
            "--planning-budget",
            help="How long the planned rule may search before the run (250ms, 1s).",
        ),
    ] = "100ms",
    pattern: PatternOpt = None,
) -> None:
    """Run on the virtual clock (each step takes its estimate): makespan and lower bound.
    With --pattern, under that pattern's policy (its rule instead of --priority)."""
    wf = _load(file)
    workers = workers or wf.max_concurrency
    budget = _seconds(planning_budget, "--planning-budget")
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
        _print_json(data)
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
    wf = _load(file)
    rec = _query(
        _open_store(store),
        lambda s: select(
            wf,
            store=s,
            pattern=pattern.value if pattern is not None else None,
            workers=workers or wf.max_concurrency,
        ),
    )
    if json_out:
        _print_json({"workflow": wf.name, **rec.to_json()})
        return
    print_explanation(out, wf.name, rec)


@app.command()
def history(
    workflow: Annotated[
        str | None, typer.Argument(help="A workflow's name (default: every one in the store).")
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """What counterpoint learned from past runs: each agent's duration and failure rate and
    the estimate it now uses, how each pattern did on each definition of the workflow, and
    the patterns you prefer (with their confidence: applied at 0.85, suggested at 0.65,
    observed at 0.30)."""
    the_store = _open_store(store)
    found = _query(the_store, lambda s: workflow_history(s, workflow))
    if json_out:
        _print_json({h.workflow: h.to_json() for h in found})
        return
    if not found:
        out.print(f"no runs in {the_store.location}" + (f" of {workflow}" if workflow else ""))
    for h in found:
        print_history(out, h)


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


@app.command()
def resume(
    run_id: RunIdArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Go on even though the workflow file changed since."),
    ] = False,
    json_out: JsonOpt = False,
    max_concurrency: Annotated[
        int | None,
        typer.Option("--max-concurrency", "-j", min=1, help="Steps running at once."),
    ] = None,
    fail_fast: Annotated[
        bool | None,
        typer.Option("--fail-fast/--no-fail-fast", help="Default: as the run started."),
    ] = None,
    store: StoreOpt = None,
    no_cache: NoCacheOpt = False,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            help="A secret input (its name has KEY, TOKEN, SECRET or PASSWORD), which the "
            "store did not keep, as NAME=VALUE; repeatable.",
        ),
    ] = None,
) -> None:
    """Go on with a run that crashed, was killed, interrupted or failed: steps that succeeded
    are not run again; a step that was running runs again (same idempotency key, next
    attempt). Refused if the workflow changed, unless --force."""
    given: dict[str, object] = {}
    for item in inputs or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--input")
        given[name] = value
    the_store = _open_store(store)
    info, states = asyncio.run(_run_and_states(the_store, run_id))
    if info.status == "succeeded":
        asyncio.run(the_store.close())
        err.print(f"error: run {info.run_id} succeeded already: there is nothing to resume")
        raise typer.Exit(EXIT_INVALID)
    wf_box: list[Workflow] = []
    if not json_out:
        done = sum(s.status == "succeeded" for s in states.values())
        err.print(
            f"[bold]resuming run {info.run_id}[/bold] of {info.workflow}: "
            f"{done} of {len(info.agents)} steps succeeded before and are not run again"
        )
    observers = [] if json_out else [progress_for(err)]

    def go(on_engine: Callable[[Engine], None]) -> Awaitable[RunResult]:
        def keep(engine: Engine) -> None:
            wf_box.append(engine.workflow)
            on_engine(engine)

        return resume_run(
            info.run_id,
            store=the_store,
            force=force,
            max_concurrency=max_concurrency,
            fail_fast=fail_fast,
            cache=not no_cache,
            observers=observers,
            on_engine=keep,
            inputs=given,
        )

    result = _drive(go, the_store)
    _finish(wf_box[0], result, json_out)


async def _run_and_states(store: Store, run_id: str) -> tuple[RunInfo, dict[str, StepReplay]]:
    info, states, _ = await _run_states_adaptations(store, run_id)
    return info, states


async def _run_states_adaptations(
    store: Store, run_id: str
) -> tuple[RunInfo, dict[str, StepReplay], list[dict[str, object]]]:
    """A run, its steps' states, and the adaptations its journal holds."""
    try:
        info = await store.get_run(run_id)
        entries = await store.entries(info.run_id)
        adapted: list[dict[str, object]] = []
        for e in entries:
            if e.kind == "event" and e.data is not None and "pattern_adapted" in e.data:
                event = json.loads(e.data)
                if isinstance(event, dict) and event.get("name") == "pattern_adapted":
                    adapted.append(dict(event.get("data") or {}))
        return info, replay(entries), adapted
    except (StoreError, RunNotFound) as exc:
        await store.close()
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """The newest runs: id, workflow, status, pattern, start, duration."""
    the_store = _open_store(store)

    async def fetch() -> list[RunInfo]:
        try:
            return await the_store.list_runs(limit=limit, workflow=workflow)
        finally:
            await the_store.close()

    try:
        infos = asyncio.run(fetch())
    except StoreError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if json_out:
        _print_json([_run_json(i) for i in infos])
        return
    print_runs(out, infos, the_store.location)


@app.command()
def stats(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")
    ] = None,
    last: Annotated[int, typer.Option("--runs", min=1, help="How many recent runs.")] = 100,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """What past runs say of each agent: steps, failures, and the median, 90th percentile
    and mean duration of its successful steps."""
    from counterpoint.history import agent_stats

    the_store = _open_store(store)
    found = _query(the_store, lambda s: agent_stats(s, workflow=workflow, runs=last))
    if json_out:
        _print_json({name: dataclasses.asdict(a) for name, a in found.items()})
        return
    print_stats(out, list(found.values()), the_store.location)


@app.command()
def send(
    run_id: RunIdArg,
    event: Annotated[str, typer.Argument(help="The event's name (feedback_received, ...).")],
    data: Annotated[
        str | None, typer.Option("--data", help="The event's data: a JSON object.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Send an event to a run, running or paused: its waits and triggers see it (a paused
    or crashed run, when it is resumed)."""
    payload: dict[str, object] = {}
    if data is not None:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            err.print(f"error: --data is not JSON: {exc}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
        if not isinstance(parsed, dict):
            err.print('error: --data must be a JSON object ({"key": ...})', markup=False)
            raise typer.Exit(EXIT_INVALID)
        payload = parsed
    _post(store, lambda s: send_event(s, run_id, event, payload, source="cli"), event)


@app.command()
def approve(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="The approval step.", show_default=False)],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead.")] = False,
    comment: Annotated[str | None, typer.Option("--comment", help="Why, for the run.")] = None,
    store: StoreOpt = None,
) -> None:
    """Approve (or --reject) an approval step of a run, running or paused."""

    async def answer(s: Store) -> int:
        info = await s.get_run(run_id)
        if step not in info.agents:
            known = ", ".join(info.agents) or "none"
            raise RunNotFound(f"run {info.run_id} has no step {step!r} (steps: {known})")
        return await approve_step(
            s, info.run_id, step, approved=not reject, comment=comment, source="cli"
        )

    _post(store, answer, "rejection" if reject else "approval")


def _post(store: str | None, send_it: Callable[[Store], Awaitable[int]], what: str) -> None:
    """Send an event with the store open; errors are one line and exit 2."""
    the_store = _open_store(store)

    async def go() -> int:
        try:
            return await send_it(the_store)
        finally:
            await the_store.close()

    try:
        posted = asyncio.run(go())
    except (StoreError, RunNotFound, CannotResume) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    out.print(f"sent {what} (inbox {posted})", markup=False, highlight=False)


@app.command()
def show(run_id: RunIdArg, json_out: JsonOpt = False, store: StoreOpt = None) -> None:
    """One run, step by step: status, attempts, times, and a preview of each output."""
    the_store = _open_store(store)
    info, states, adapted = asyncio.run(_run_states_adaptations(the_store, run_id))
    asyncio.run(the_store.close())
    if json_out:
        data = _run_json(info)
        data["selection"] = info.options.get("selection")
        data["adaptations"] = adapted
        data["steps"] = {
            step: {
                "agent": agent,
                "status": states[step].status if step in states else "pending",
                "attempts": states[step].attempts if step in states else 0,
                "started_at": states[step].started_at if step in states else None,
                "finished_at": states[step].finished_at if step in states else None,
                "error": states[step].error if step in states else None,
                "output": states[step].output if step in states else None,
            }
            for step, agent in info.agents.items()
        }
        _print_json(data)
        return
    print_run(out, info, states)
    for a in adapted:
        out.print(adaptation_line(a), markup=False)


def _choice(wf: Workflow, graph: Graph, workers: int | None) -> dict[str, object] | None:
    """The planner's choice for ``workers`` and the workflow's pools (None without either:
    nothing to choose)."""
    pools = PoolModel.of(wf)
    if not workers and pools is None:
        return None
    return choose_priority(graph, workers, pools=pools).to_json()


def _run_json(info: RunInfo) -> dict[str, object]:
    return {
        "run_id": info.run_id,
        "workflow": info.workflow,
        "status": run_state(info),
        "pattern": info.pattern,
        "source": info.source,
        "created_at": info.created_at,
        "finished_at": info.finished_at,
        "makespan_s": info.makespan_s,
        "inputs": info.inputs,
        "error": info.error,
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def main() -> None:
    """Entry point of the ``counterpoint`` command."""
    try:
        app()
    except CounterpointError as exc:  # a bug or a broken plugin: say it, without a traceback
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INVALID)
