"""``kind: program``: argv templates without a shell, JSON in and out, failures, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
import time
from asyncio import base_subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.agents.base import idempotency_key
from counterpoint.scheduler.core import StepState

PY = sys.executable


def _script(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return str(path)


def _one_step(
    argv: list[str],
    step_input: object = None,
    *,
    timeout: str | None = None,
    retries: int | dict[str, object] | None = None,
    **options: object,
) -> cp.Workflow:
    b = cp.WorkflowBuilder("program")
    b.agent("p", kind="program", argv=argv, **options)
    b.step("p", agent="p", input=step_input, timeout=timeout, retries=retries)
    return b.build()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its parent) counts as gone."""
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


def _wait_gone(pids: list[int], deadline_s: float = 5.0) -> list[int]:
    """Poll until every pid is gone; returns the ones still alive at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        alive = [p for p in pids if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


@contextlib.contextmanager
def _reap(pid_file: Path) -> Iterator[None]:
    """Kill whatever pids ``pid_file`` lists when the test ends, whatever happened."""
    try:
        yield
    finally:
        if pid_file.exists():
            for pid in map(int, pid_file.read_text().split()):
                if _alive(pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)


# --- argv -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "two words",
        "it's \"quoted\" 'twice'",
        "a; touch PWNED_SEMI",
        "$(touch PWNED_SUBST) `touch PWNED_TICK`",
        "x && touch PWNED_AND | cat > PWNED_PIPE * ~ $HOME",
        "line one\nline two\ttab",
    ],
)
def test_each_argument_arrives_verbatim_never_through_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the program runs here: any shell side effect would land here
    echo = _script(tmp_path, "echo_argv.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    wf = _one_step([PY, echo, "${{ input.text }}", "--flag=${{ input.text }}"], {"text": text})
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["p"].error
    assert result.outputs["p"] == [text, f"--flag={text}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["echo_argv.py"]


def test_templates_render_non_strings_as_json_and_know_the_step_and_run(tmp_path: Path) -> None:
    echo = _script(tmp_path, "echo_argv.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    wf = _one_step(
        [
            PY,
            echo,
            "${{ input.n }}",
            "${{ input.obj }}",
            "n=${{ input.n }}",
            "${{ step.id }}",
            "${{ step.attempt }}",
            "${{ run.id }}",
            "${{ step.idempotency_key }}",
            "literal $${{ input.n }}",
        ],
        {"n": 3, "obj": {"k": [1, "two"]}},
    )
    result = cp.run_sync(wf, run_id="argv-run")
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["p"].error
    assert result.outputs["p"] == [
        "3",
        '{"k": [1, "two"]}',
        "n=3",
        "p",
        "1",
        "argv-run",
        idempotency_key("argv-run", "p"),
        "literal ${{ input.n }}",
    ]


def test_missing_input_key_in_a_template_fails_the_step(tmp_path: Path) -> None:
    echo = _script(tmp_path, "echo_argv.py", "import sys\nprint(sys.argv[1:])\n")
    wf = _one_step([PY, echo, "${{ input.nope }}"], {"yes": 1}, retries=3)
    result = cp.run_sync(wf)
    rec = result.steps["p"]
    assert rec.status is StepState.FAILED
    assert rec.attempts == 1  # a missing key is not worth retrying
    assert rec.error is not None
    assert "nope" in rec.error


def test_program_that_does_not_exist_fails_with_a_clear_message(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    result = cp.run_sync(_one_step([missing]))
    rec = result.steps["p"]
    assert rec.status is StepState.FAILED
    assert rec.error is not None
    assert rec.error.startswith(f"cannot start {missing!r}")


def test_env_and_cwd_options(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    code = "import json, os; print(json.dumps([os.getcwd(), os.environ['CP_WHO']]))"
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(
        textwrap.dedent(
            f"""
            name: env-cwd
            agents:
              p:
                kind: program
                argv: ["{PY}", "-c", "{code}"]
                cwd: work
                env: {{CP_WHO: "step ${{{{ step.id }}}} for ${{{{ input.who }}}}"}}
            steps:
              - {{id: s, agent: p, input: {{who: ada}}}}
            """
        ),
        encoding="utf-8",
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["s"].error
    assert result.outputs["s"] == [str((tmp_path / "work").resolve()), "step s for ada"]


# --- stdin and stdout ---------------------------------------------------------------------


def test_input_goes_to_stdin_as_json_and_json_stdout_is_parsed(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "stdin.py",
        """
        import json, sys
        data = json.load(sys.stdin)
        print(json.dumps({"got": data, "keys": sorted(data)}))
        """,
    )
    step_input = {"text": "héllo; $(x)", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    result = cp.run_sync(_one_step([PY, script], step_input))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["p"].error
    assert result.outputs["p"] == {"got": step_input, "keys": ["n", "nested", "text"]}


def test_output_of_upstream_step_reaches_the_program(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "count.py",
        "import json, sys\nprint(json.dumps(len(json.load(sys.stdin)['words'])))\n",
    )
    b = cp.WorkflowBuilder("chain")
    b.agent("split", kind="program", argv=[PY, "-c", 'print(\'["a", "b", "c"]\')'])
    b.agent("count", kind="program", argv=[PY, script])
    b.step("split", agent="split")
    b.step("count", agent="count", needs=["split"], input={"words": b.output("split")})
    result = cp.run_sync(b.build())
    assert result.outputs == {"split": ["a", "b", "c"], "count": 3}


def test_stdin_none_gives_the_program_an_empty_stdin(tmp_path: Path) -> None:
    script = _script(tmp_path, "read.py", "import sys\nprint(repr(sys.stdin.read()))\n")
    result = cp.run_sync(_one_step([PY, script], {"ignored": 1}, stdin="none"))
    assert result.outputs["p"] == "''"


@pytest.mark.parametrize(
    ("step_input", "received"),
    [
        ("Review this:\n  a 'quoted' $(line)\n", "Review this:\n  a 'quoted' $(line)\n"),
        ({"n": 1}, '{"n": 1}'),
    ],
)
def test_stdin_text_sends_text_as_it_is(tmp_path: Path, step_input: object, received: str) -> None:
    script = _script(tmp_path, "read.py", "import json, sys\nprint(json.dumps(sys.stdin.read()))\n")
    result = cp.run_sync(_one_step([PY, script], step_input, stdin="text"))
    assert result.outputs["p"] == received  # (the program prints it as JSON: parsed back)


def test_text_output(tmp_path: Path) -> None:
    script = _script(tmp_path, "text.py", "print('hello world')\nprint('second line')\n")
    auto = cp.run_sync(_one_step([PY, script]))
    assert auto.outputs["p"] == "hello world\nsecond line"  # auto: not JSON, trailing newline cut
    text = cp.run_sync(_one_step([PY, script], output="text"))
    assert text.outputs["p"] == "hello world\nsecond line\n"  # text: verbatim
    number = cp.run_sync(_one_step([PY, "-c", "print('42')"], output="text"))
    assert number.outputs["p"] == "42\n"


def test_empty_stdout_is_none_in_auto_mode() -> None:
    result = cp.run_sync(_one_step([PY, "-c", "pass"]))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert result.outputs == {"p": None}


def test_output_json_rejects_text(tmp_path: Path) -> None:
    script = _script(tmp_path, "notjson.py", "print('not json at all')\n")
    result = cp.run_sync(_one_step([PY, script], output="json", retries=2))
    rec = result.steps["p"]
    assert rec.status is StepState.FAILED
    assert rec.attempts == 1
    assert rec.error is not None
    assert "not JSON" in rec.error
    assert "not json at all" in rec.error


# --- failures -------------------------------------------------------------------------------


def test_non_zero_exit_fails_with_the_stderr_tail(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "fail.py",
        """
        import sys
        print("some output")
        sys.stderr.write("warming up\\nstill going\\nError: the disk is full\\n")
        sys.exit(3)
        """,
    )
    result = cp.run_sync(_one_step([PY, script]))
    assert result.status is cp.RunStatus.FAILED
    rec = result.steps["p"]
    assert rec.status is StepState.FAILED
    assert rec.error is not None
    first, *rest = rec.error.splitlines()
    assert first == f"{PY} exited with code 3: Error: the disk is full"
    assert rest[-3:] == ["warming up", "still going", "Error: the disk is full"]


def test_single_line_stderr_and_empty_stderr() -> None:
    one = cp.run_sync(_one_step([PY, "-c", "import sys; sys.exit('oops')"]))
    assert one.steps["p"].error == f"{PY} exited with code 1: oops"
    empty = cp.run_sync(_one_step([PY, "-c", "raise SystemExit(7)"]))
    assert empty.steps["p"].error == f"{PY} exited with code 7 (stderr was empty)"


def test_long_stderr_keeps_only_the_tail(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "noisy.py",
        """
        import sys
        sys.stderr.write("START-" + "x" * 10000 + "\\n")
        sys.stderr.write("the real error\\n")
        sys.exit(1)
        """,
    )
    rec = cp.run_sync(_one_step([PY, script])).steps["p"]
    assert rec.error is not None
    assert rec.error.splitlines()[0] == f"{PY} exited with code 1: the real error"
    assert "START-" not in rec.error
    assert len(rec.error) < 2500


def test_killed_by_a_signal_says_which() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    rec = cp.run_sync(_one_step([PY, "-c", code])).steps["p"]
    assert rec.error == f"{PY} was killed by SIGKILL (stderr was empty)"


def test_failing_program_is_retried(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "second_time.py",
        """
        import pathlib, sys
        marker = pathlib.Path(sys.argv[1])
        if not marker.exists():
            marker.write_text("x")
            sys.exit("first attempt fails")
        print(sys.argv[2])
        """,
    )
    marker = str(tmp_path / "marker")
    wf = _one_step(
        [PY, script, marker, "${{ step.attempt }}"],
        retries={"max": 2, "backoff": "10ms", "jitter": 0},
    )
    result = cp.run_sync(wf)
    rec = result.steps["p"]
    assert rec.status is StepState.SUCCEEDED
    assert rec.attempts == 2
    assert rec.output == 2
    assert rec.errors == [f"{PY} exited with code 1: first attempt fails"]


# --- timeouts and cancellation end the whole process group ------------------------------------


def _spawner(
    pid_file: Path, *, ignore_term: bool = False, grandchild_s: int = 60, read_stdin: bool = True
) -> list[str]:
    """sh that starts a grandchild, writes both pids (atomically) and waits.

    With ``read_stdin`` it first reads stdin to its end, so that the pids appear only once
    counterpoint has handed the program its input (its pipes are set up).
    """
    read = "cat > /dev/null; " if read_stdin else ""
    trap = "trap '' TERM; " if ignore_term else ""
    return [
        "sh",
        "-c",
        f'{trap}{read}sleep {grandchild_s} & echo "$$ $!" > "{pid_file}.tmp"'
        f' && mv "{pid_file}.tmp" "{pid_file}"; wait',
    ]


def test_timeout_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = _one_step(_spawner(pid_file), timeout="500ms", kill_grace="2s")
    with _reap(pid_file):
        t0 = time.monotonic()
        result = cp.run_sync(wf)
        took = time.monotonic() - t0
        rec = result.steps["p"]
        assert rec.status is StepState.FAILED
        assert rec.error == "timed out after 0.5s"
        assert pid_file.exists(), "the program never started"
        pids = [int(p) for p in pid_file.read_text().split()]
        assert len(pids) == 2
        assert _wait_gone(pids) == []
        assert took < 2.0  # SIGTERM ended both at once: no wait for the grace period


def test_timeout_uses_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = _one_step(_spawner(pid_file, ignore_term=True), timeout="300ms", kill_grace="200ms")
    with _reap(pid_file):
        t0 = time.monotonic()
        result = cp.run_sync(wf)
        took = time.monotonic() - t0
        assert result.steps["p"].error == "timed out after 0.3s"
        pids = [int(p) for p in pid_file.read_text().split()]
        assert _wait_gone(pids) == []
        assert 0.5 <= took < 5.0


def test_fail_fast_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"

    async def fail_once_started(ctx: cp.StepContext) -> object:
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        raise cp.StepFailed("giving up", retryable=False)

    b = cp.WorkflowBuilder("fail-fast")
    b.agent("spawn", kind="program", argv=_spawner(pid_file), kill_grace="2s")
    b.agent("fail", function=fail_once_started)
    b.step("spawn", agent="spawn")
    b.step("fail", agent="fail")
    with _reap(pid_file):
        result = cp.run_sync(b.build(), fail_fast=True)
        assert result.status is cp.RunStatus.FAILED
        assert result.steps["fail"].status is StepState.FAILED
        assert result.steps["spawn"].status is StepState.CANCELLED
        pids = [int(p) for p in pid_file.read_text().split()]
        assert _wait_gone(pids) == []
        assert result.makespan_s < 5


def test_cancellation_while_the_program_is_starting_still_ends_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation that lands between the fork and asyncio's pipe set-up.

    ``create_subprocess_exec`` forks first and connects the pipes afterwards; a cancellation
    in between (fail-fast, Ctrl-C or a timeout right after the start) must still end the
    program's whole group. Here the pipe set-up is held until the sibling step has failed, so
    that the race, which happens by itself now and then, happens every time.
    """
    pid_file = tmp_path / "pids"
    failed = asyncio.Event()
    original = base_subprocess.BaseSubprocessTransport._connect_pipes

    async def held_connect(self: object, waiter: object) -> None:
        await failed.wait()
        await original(self, waiter)  # type: ignore[arg-type]

    monkeypatch.setattr(base_subprocess.BaseSubprocessTransport, "_connect_pipes", held_connect)

    async def fail_once_started(ctx: cp.StepContext) -> object:
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        failed.set()
        raise cp.StepFailed("giving up", retryable=False)

    b = cp.WorkflowBuilder("fail-fast-at-start")
    b.agent(
        "spawn",
        kind="program",
        argv=_spawner(pid_file, grandchild_s=3, read_stdin=False),
        kill_grace="2s",
    )
    b.agent("fail", function=fail_once_started)
    b.step("spawn", agent="spawn")
    b.step("fail", agent="fail")
    with _reap(pid_file):
        t0 = time.monotonic()
        result = cp.run_sync(b.build(), fail_fast=True)
        took = time.monotonic() - t0
        pids = [int(p) for p in pid_file.read_text().split()]
        assert _wait_gone(pids, deadline_s=1.0) == []
        assert result.steps["spawn"].status is StepState.CANCELLED
        assert took < 2.0, f"the run waited {took:.1f}s for the program's grandchild to exit"
