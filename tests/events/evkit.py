"""Helpers for the event tests: runs on the virtual clock that act on the engine at given
times, and the ``counterpoint`` command in subprocesses (each one ended before the test is)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import pytest

import counterpoint as cp
from counterpoint.backends import Job, LocalBackend, VirtualBackend
from counterpoint.backends.base import Report
from counterpoint.scheduler.clock import Clock
from counterpoint.scheduler.engine import Engine

CLI = [sys.executable, "-m", "counterpoint"]

Acts = Mapping[float, Callable[[Engine], None]]
Popen = Callable[..., subprocess.Popen[str]]


def vrun(
    wf: cp.Workflow,
    *,
    at: Acts | None = None,
    fail: Callable[[Job], str | None] | None = None,
    agents: bool | set[str] = False,
    engines: list[Engine] | None = None,
    **kw: object,
) -> cp.RunResult:
    """Run ``wf`` on a virtual clock; ``at`` acts on the engine at those virtual times.

    ``agents=False``: the virtual backend (each step takes its estimate, no agent is called,
    ``fail`` may fail attempts); ``agents=True``: the local backend (the agents run as tasks,
    on virtual time); a set of step ids: those steps' agents run as tasks, the others take
    their estimates (``mixed``). ``engines`` gets the engine before the run starts."""
    clock = cp.VirtualClock()

    def on_engine(engine: Engine) -> None:
        if engines is not None:
            engines.append(engine)
        for t, act in (at or {}).items():
            clock.call_later(t, lambda act=act: act(engine))

    backend = None
    if isinstance(agents, set | frozenset):
        backend = mixed(agents, fail=fail)
    elif not agents:

        def backend(c: Clock) -> VirtualBackend:
            return VirtualBackend(c, fail=fail)  # type: ignore[arg-type]

    return asyncio.run(
        cp.run(wf, clock=clock, backend=backend, on_engine=on_engine, **kw)  # type: ignore[arg-type]
    )


class Mixed:
    """The steps in ``local`` run their agents as tasks (waits, approvals); every other step
    takes its estimate on the virtual clock without calling its agent."""

    def __init__(
        self,
        clock: cp.VirtualClock,
        local: set[str],
        fail: Callable[[Job], str | None] | None = None,
    ) -> None:
        self.local = local
        self.tasks = LocalBackend(clock)
        self.timed = VirtualBackend(clock, fail=fail)
        self._where: dict[int, LocalBackend | VirtualBackend] = {}

    def start(self, job: Job, report: Report) -> None:
        backend = self.tasks if job.step_id in self.local else self.timed
        self._where[job.index] = backend
        backend.start(job, report)

    def cancel(self, index: int) -> None:
        backend = self._where.get(index)
        if backend is not None:
            backend.cancel(index)

    async def aclose(self) -> None:
        await self.timed.aclose()
        await self.tasks.aclose()


def mixed(
    local: set[str], fail: Callable[[Job], str | None] | None = None
) -> Callable[[Clock], Mixed]:
    def make(clock: Clock) -> Mixed:
        assert isinstance(clock, cp.VirtualClock)
        return Mixed(clock, local, fail)

    return make


def send(
    name: str, data: dict[str, object] | None = None, source: str = "api"
) -> Callable[[Engine], None]:
    """Act on the engine: send it an event (``Engine.send``)."""

    def act(engine: Engine) -> None:
        engine.send(name, data, source)

    return act


def statuses(result: cp.RunResult) -> dict[str, str]:
    return {sid: r.status.value for sid, r in result.steps.items()}


def times(result: cp.RunResult) -> dict[str, tuple[float | None, float | None]]:
    return {sid: (r.start, r.end) for sid, r in result.steps.items()}


def names(result: cp.RunResult) -> list[str]:
    return [e.name for e in result.events]


# --- the command in subprocesses -----------------------------------------------------------


def cli_env() -> dict[str, str]:
    """No colours and a wide console, so the output is the same everywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


def cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``counterpoint ARGS`` to its end."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_all(
    cwd: Path, commands: Mapping[str, Sequence[str]]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Several commands at once (each costs an interpreter's start-up); returns them ended."""
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, args in commands.items():
            started[name] = subprocess.Popen(
                [*CLI, *args],
                cwd=cwd,
                env=cli_env(),
                stdin=subprocess.DEVNULL,  # never a terminal: nothing asks there
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        done: dict[str, subprocess.CompletedProcess[str]] = {}
        for name, proc in started.items():
            out, err = proc.communicate(timeout=60)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return done
    finally:
        stop_all(list(started.values()))


def stop_all(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            proc.communicate(timeout=10)


def wait_until_paused(
    cwd: Path, store: str, proc: subprocess.Popen[str], deadline_s: float = 30.0
) -> str:
    """Read ``counterpoint runs --store S --json`` until the newest run shows ``paused``;
    returns its id. Fails at once if the run's process ended meanwhile."""
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before it paused ({proc.returncode}): {out}\n{err}")
        shown = cli(cwd, "runs", "--store", store, "--json")
        if shown.returncode == 0:
            runs = json.loads(shown.stdout)
            if runs and runs[0]["status"] == "paused":
                return str(runs[0]["run_id"])
        if time.monotonic() > deadline:
            pytest.fail(f"the run never showed paused: {shown.stdout}{shown.stderr}")


_modules = itertools.count()


def load_with(folder: Path, yaml_text: str, code: str = "") -> cp.Workflow:
    """Write ``code`` as a module of its own (``MOD`` in the YAML names it) and the workflow
    beside it, and load it."""
    return load_module_with(folder, yaml_text, code)[0]


def load_module_with(
    folder: Path, yaml_text: str, code: str = ""
) -> tuple[cp.Workflow, ModuleType]:
    """``load_with``, and the agents' module (its globals are shared with the test)."""
    module = f"evmod_{os.getpid()}_{next(_modules)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(code), encoding="utf-8")
    importlib.invalidate_caches()
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(yaml_text).replace("MOD", module), encoding="utf-8")
    wf = cp.load(path)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # as the python agents will (from the workflow's folder)
    return wf, importlib.import_module(module)
