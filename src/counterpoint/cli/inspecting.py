"""What the store holds: `runs`, `show`, `stats`, `history`."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

import typer

from counterpoint.cli.common import (
    EXIT_INVALID,
    JsonOpt,
    RunIdArg,
    StoreOpt,
    app,
    err,
    open_store_or_exit,
    out,
    print_json,
    query,
    run_states_adaptations,
)
from counterpoint.errors import (
    StoreError,
)
from counterpoint.history import run_state
from counterpoint.observe.explain import print_history
from counterpoint.observe.progress import adaptation_line
from counterpoint.observe.report import (
    print_run,
    print_runs,
    print_stats,
)
from counterpoint.selection.learning import workflow_history
from counterpoint.store import RunInfo


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
    the_store = open_store_or_exit(store)
    found = query(the_store, lambda s: workflow_history(s, workflow))
    if json_out:
        print_json({h.workflow: h.to_json() for h in found})
        return
    if not found:
        out.print(f"no runs in {the_store.location}" + (f" of {workflow}" if workflow else ""))
    for h in found:
        print_history(out, h)


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
    the_store = open_store_or_exit(store)

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
        print_json([_run_json(i) for i in infos])
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

    the_store = open_store_or_exit(store)
    found = query(the_store, lambda s: agent_stats(s, workflow=workflow, runs=last))
    if json_out:
        print_json({name: dataclasses.asdict(a) for name, a in found.items()})
        return
    print_stats(out, list(found.values()), the_store.location)


@app.command()
def show(run_id: RunIdArg, json_out: JsonOpt = False, store: StoreOpt = None) -> None:
    """One run, step by step: status, attempts, times, and a preview of each output."""
    the_store = open_store_or_exit(store)
    info, states, adapted = asyncio.run(run_states_adaptations(the_store, run_id))
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
        print_json(data)
        return
    print_run(out, info, states)
    for a in adapted:
        out.print(adaptation_line(a), markup=False)


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
