"""Ctrl-C during ``counterpoint run``: the running program's group ends, a summary, exit 130."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

Popen = Callable[..., subprocess.Popen[str]]

HOLD = """
name: interrupt
agents:
  hold:
    kind: program
    # The pids are written once stdin is closed, i.e. once counterpoint is talking to the
    # program (not still setting up its pipes).
    argv: [sh, -c, 'cat > /dev/null; sleep 60 & echo "$$ $!" > pids.tmp && mv pids.tmp pids; wait']
  nop: {kind: noop}
steps:
  - {id: hold, agent: hold}
  - {id: after, agent: nop, needs: [hold]}
  - {id: quick, agent: nop, input: 1}
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_for(condition: Callable[[], bool], deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextlib.contextmanager
def _started(
    tmp_path: Path, cli_popen: Popen, *args: str
) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """Start ``run``; yield it once the program has written its pids; clean up whatever ran."""
    pid_file = tmp_path / "pids"
    proc = cli_popen("run", "wf.yaml", *args)
    pids: list[int] = []
    try:
        started = _wait_for(lambda: pid_file.exists() or proc.poll() is not None, 30)
        assert started, "the program did not start in time"
        assert proc.poll() is None, f"run ended early: {proc.communicate()}"
        pids = [int(p) for p in pid_file.read_text().split()]
        assert len(pids) == 2
        yield proc, pids
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def test_ctrl_c_cancels_the_run_and_its_programs(tmp_path: Path, cli_popen: Popen) -> None:
    (tmp_path / "wf.yaml").write_text(HOLD, encoding="utf-8")
    with _started(tmp_path, cli_popen) as (proc, pids):
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert "interrupted: running steps were cancelled" in stderr
        rows = {line.split()[0]: line.split()[1:3] for line in stdout.splitlines()[1:4]}
        assert rows == {
            "hold": ["hold", "cancelled"],
            "after": ["nop", "cancelled"],
            "quick": ["nop", "succeeded"],
        }
        assert "run " in stdout
        assert " interrupted in " in stdout
        assert _wait_for(lambda: not any(_alive(p) for p in pids), 5), "the program survived"


def test_ctrl_c_with_json_reports_an_interrupted_run(tmp_path: Path, cli_popen: Popen) -> None:
    (tmp_path / "wf.yaml").write_text(HOLD, encoding="utf-8")
    with _started(tmp_path, cli_popen, "--json") as (proc, pids):
        proc.send_signal(signal.SIGINT)
        stdout, _stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130
        data = json.loads(stdout)
        assert data["status"] == "interrupted"
        steps = data["steps"]
        assert steps["hold"]["status"] == "cancelled"
        assert steps["after"]["status"] == "cancelled"
        assert steps["after"]["error"] == "not run: interrupted"
        assert steps["quick"]["status"] == "succeeded"
        assert _wait_for(lambda: not any(_alive(p) for p in pids), 5), "the program survived"
