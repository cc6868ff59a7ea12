"""Shared by the commands: the Typer app, consoles that keep secrets out, option types,
loading a workflow, reading inputs, opening the store."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn, TextIO, TypeVar, cast

import typer
from rich.console import Console

from counterpoint.backends.choose import BackendFactory, BackendUnavailable, make_backend
from counterpoint.durations import parse_duration
from counterpoint.errors import (
    Problem,
    RunNotFound,
    StoreError,
    WorkflowInvalid,
)
from counterpoint.model.load import load
from counterpoint.model.workflow import Workflow
from counterpoint.policy.redact import RedactingWriter, Redactor
from counterpoint.store import MemoryStore, RunInfo, StepReplay, Store, open_store, replay

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
stdout = RedactingWriter("stdout", Redactor.from_environment())


stderr = RedactingWriter("stderr", stdout.redactor)


out = Console(
    file=cast(TextIO, stdout),
    highlight=False,
    soft_wrap=True,
    width=None if sys.stdout.isatty() else 200,
)


err = Console(file=cast(TextIO, stderr), highlight=False, soft_wrap=True)


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


PlanningBudgetOpt = Annotated[
    str,
    typer.Option(
        "--planning-budget",
        help="How long the planned rule may search before the run (250ms, 1s).",
    ),
]

PatternOpt = Annotated[
    PatternChoice | None,
    typer.Option(
        "--pattern",
        help="Run this coordination pattern instead of the selected one (sequential, "
        "parallel, hybrid, event-driven, resource-aware).",
        show_default=False,
    ),
]


class BackendName(StrEnum):
    local = "local"
    ray = "ray"


BackendOpt = Annotated[
    BackendName | None,
    typer.Option(
        "--backend",
        help="Where steps run: local (tasks of this process) or ray (Python and program "
        "agents as tasks of a Ray cluster; needs counterpoint[ray]). Default: local; for "
        "resume, where the run started.",
        show_default=False,
    ),
]

RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster to join (HOST:6379, ray://HOST:10001, auto). Default: "
        "$RAY_ADDRESS, else a local Ray started for the run.",
        show_default=False,
    ),
]

RayStorageOpt = Annotated[
    Path | None,
    typer.Option(
        "--ray-storage",
        help="A folder the driver and every Ray node see at the same path: workers write "
        "large outputs there, so that resume finds them. Default with a local Ray: "
        "objects/ beside the store.",
        show_default=False,
    ),
]


def backend_or_exit(
    name: BackendName | None, address: str | None, storage: Path | None, store: Store
) -> BackendFactory | None:
    """The backend the options ask for (``None``: the default); unusable ones exit 2."""
    if name is None:
        if address is not None or storage is not None:
            err.print("error: --ray-address and --ray-storage go with --backend ray")
            raise typer.Exit(EXIT_INVALID)
        return None
    local_ray = address is None and not os.environ.get("RAY_ADDRESS")
    home = getattr(store, "path", None)
    if storage is None and local_ray and isinstance(home, Path):
        storage = home.parent / "objects"
    try:
        return make_backend(name.value, address=address, storage=storage)
    except BackendUnavailable as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


class ImportFormat(StrEnum):
    stg = "stg"
    wfcommons = "wfcommons"
    dax = "dax"
    agent_os = "agent-os"


def invalid(problems: list[Problem]) -> NoReturn:
    for p in problems:
        err.print(str(p), markup=False)
    raise typer.Exit(EXIT_INVALID)


def print_json(data: object) -> None:
    """Plain JSON on stdout, nothing else there (so it can be piped into jq)."""
    stdout.write(json.dumps(data, indent=2, default=repr) + "\n")
    stdout.flush()


def load_workflow(file: Path) -> Workflow:
    try:
        wf = load(file)
    except WorkflowInvalid as exc:
        invalid(exc.problems)
    if wf.policy.redact:  # the workflow's own secrets, in everything printed from now on
        stdout.redactor = stderr.redactor = Redactor.from_environment(wf.policy.redact)
    return wf


def parse_inputs(workflow: Workflow, items: list[str]) -> dict[str, object]:
    """``k=v`` pairs; a value is JSON unless the input is declared as a string."""
    values: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            invalid([Problem(f"--input {item!r}: write NAME=VALUE", file="<command line>")])
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


def open_store_or_exit(store: str | None) -> Store:
    if store == ":memory:":
        return MemoryStore()
    try:
        return open_store(store)
    except StoreError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


T = TypeVar("T")


def query(store: Store, ask: Callable[[Store], Awaitable[T]]) -> T:
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


def seconds(text: str, option: str) -> float:
    """A duration given on the command line; a bad one is a usage error (exit 2)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


async def run_and_states(store: Store, run_id: str) -> tuple[RunInfo, dict[str, StepReplay]]:
    info, states, _ = await run_states_adaptations(store, run_id)
    return info, states


async def run_states_adaptations(
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


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
