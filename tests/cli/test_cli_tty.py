"""On a terminal, a run asks for its approvals there too."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")

WORKFLOW = """\
name: tty
agents:
  ok: {kind: approval, prompt: "Ship the release?"}
  done: {kind: noop}
steps:
  - {id: sign, agent: ok}
  - {id: after, agent: done, needs: sign}
"""


def _run_on_a_terminal(tmp_path: Path, answer: bytes) -> tuple[int, str]:
    wf = tmp_path / "tty.yaml"
    wf.write_text(WORKFLOW)
    master, slave = pty.openpty()
    env = {**os.environ, "COUNTERPOINT_HOME": str(tmp_path / "home"), "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "counterpoint", "run", str(wf)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = b""
    sent = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            if not sent and b"Ship the release?" in seen:
                os.write(master, answer)
                sent = True
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert sent, seen.decode(errors="replace")
    return proc.returncode, seen.decode(errors="replace")


def test_yes_on_the_terminal_approves(tmp_path: Path) -> None:
    code, text = _run_on_a_terminal(tmp_path, b"y looks fine\n")
    assert code == 0, text
    assert "succeeded" in text


def test_no_on_the_terminal_rejects_with_the_comment(tmp_path: Path) -> None:
    code, text = _run_on_a_terminal(tmp_path, b"n not today\n")
    assert code == 1, text
    assert "rejected by terminal: not today" in text
