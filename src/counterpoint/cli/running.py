"""Running workflows: `run` and `resume`, with progress, Ctrl-C and the results."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn

import typer

from counterpoint.backends.choose import BackendUnavailable
from counterpoint.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    BackendOpt,
    FileArg,
    JsonOpt,
    NoCacheOpt,
    PatternOpt,
    PlanningBudgetOpt,
    PriorityRule,
    RayAddressOpt,
    RayStorageOpt,
    RunIdArg,
    StoreOpt,
    app,
    backend_or_exit,
    count,
    err,
    invalid,
    load_workflow,
    open_store_or_exit,
    out,
    parse_inputs,
    print_json,
    run_and_states,
    seconds,
)
from counterpoint.cli.prompt import TerminalApprovals
from counterpoint.errors import (
    CannotResume,
    RunNotFound,
    StoreError,
    WorkflowInvalid,
)
from counterpoint.model.workflow import Workflow
from counterpoint.observe.explain import selection_line
from counterpoint.observe.progress import progress_for
from counterpoint.observe.report import (
    print_summary,
)
from counterpoint.runner import resolve_inputs
from counterpoint.runner import resume as resume_run
from counterpoint.runner import run as run_workflow
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.engine import Engine
from counterpoint.scheduler.result import RunResult, RunStatus
from counterpoint.selection.select import select
from counterpoint.store import Store


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
    planning_budget: PlanningBudgetOpt = "100ms",
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
    ray_storage: RayStorageOpt = None,
) -> None:
    """Run a workflow, journaled in the store. Exit 0 succeeded, 1 failed, 2 invalid input,
    130 interrupted."""
    wf = load_workflow(file)
    budget = seconds(planning_budget, "--planning-budget")
    values = parse_inputs(wf, inputs or [])
    try:
        resolve_inputs(wf, values)  # report bad inputs before anything is printed or run
    except WorkflowInvalid as exc:
        invalid(exc.problems)
    observers = [] if json_out else [progress_for(err)]
    the_store = open_store_or_exit(store)
    where = backend_or_exit(backend, ray_address, ray_storage, the_store)
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
            backend=where,
        )

    _finish(wf, _drive(go, the_store), json_out)


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
        print_json(result.to_json())
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
        invalid(exc.problems)
    except (StoreError, RunNotFound, CannotResume, BackendUnavailable) as exc:
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
    constructs = f" in {count(parts, 'construct')}" if parts else ""
    err.print(f"[bold]{wf.name}[/bold]: {count(len(wf.steps) - parts, 'step')}{constructs}")
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
    backend: BackendOpt = None,
    ray_address: RayAddressOpt = None,
    ray_storage: RayStorageOpt = None,
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
    the_store = open_store_or_exit(store)
    where = backend_or_exit(backend, ray_address, ray_storage, the_store)
    info, states = asyncio.run(run_and_states(the_store, run_id))
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
            backend=where,
        )

    result = _drive(go, the_store)
    _finish(wf_box[0], result, json_out)
