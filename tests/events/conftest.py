"""Fixtures of the event tests (the helpers are in ``evkit``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from evkit import CLI, Popen, cli_env, stop_all


@pytest.fixture
def cli_popen(tmp_path: Path) -> Iterator[Popen]:
    """``cli_popen("run", ...)``: the command started in tmp_path, killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*CLI, *args],
            cwd=tmp_path,
            env=cli_env(),
            stdin=subprocess.DEVNULL,  # never a terminal: nothing asks there
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    stop_all(started)
