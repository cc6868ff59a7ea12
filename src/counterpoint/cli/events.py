"""Reaching a running or paused run: `send` and `approve`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from counterpoint.cli.common import (
    EXIT_INVALID,
    RunIdArg,
    StoreOpt,
    app,
    err,
    open_store_or_exit,
    out,
)
from counterpoint.errors import (
    CannotResume,
    RunNotFound,
    StoreError,
)
from counterpoint.runner import approve as approve_step
from counterpoint.runner import send_event
from counterpoint.store import Store


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
    the_store = open_store_or_exit(store)

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
