"""Run the ``counterpoint`` command in subprocesses, on plain pipes.

Each command costs half a second of interpreter start-up, so a module's commands are started
together (``cli_batch``) and its tests then read the finished results.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "counterpoint"]

Case = tuple[Mapping[str, str], Sequence[str]]
"""Files to write (name -> text, dedented) and the command's arguments."""

Results = dict[str, subprocess.CompletedProcess[str]]
Batch = Callable[[Path, Mapping[str, Case]], Results]
Popen = Callable[..., subprocess.Popen[str]]


def cli_env() -> dict[str, str]:
    """No colours and a wide console, so the output is the same everywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


def _start(cwd: Path, args: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stop(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            proc.communicate(timeout=10)


def write_files(folder: Path, files: Mapping[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture(scope="session")
def cli_batch() -> Batch:
    """``cli_batch(root, {name: (files, args)})``: every command run at once, each in
    ``root / name`` with its files; returns the finished commands by name."""

    def run(root: Path, cases: Mapping[str, Case]) -> Results:
        started: dict[str, subprocess.Popen[str]] = {}
        try:
            for name, (files, args) in cases.items():
                folder = root / name
                write_files(folder, files)
                started[name] = _start(folder, args)
            return {name: _finish(proc, 60) for name, proc in started.items()}
        finally:
            _stop(list(started.values()))

    return run


@pytest.fixture
def cli_popen(tmp_path: Path) -> Iterator[Popen]:
    """``cli_popen("run", ...)``: the command started in tmp_path (killed at the end)."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = _start(tmp_path, args)
        started.append(proc)
        return proc

    yield start
    _stop(started)
