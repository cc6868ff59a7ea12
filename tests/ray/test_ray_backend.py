"""The Ray backend: where agents run, killed workers, resource demands, large outputs,
resume, timeouts, and what agents report from a worker."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import raykit

import counterpoint as cp
from counterpoint.backends.choose import BackendUnavailable, make_backend
from counterpoint.backends.ray import RayBackend, ray_options
from counterpoint.outputs import LargeOutput
from counterpoint.scheduler.core import StepState
from counterpoint.store import SqliteStore

HERE = Path(__file__).parent


def _run(text: str, **kwargs: Any) -> cp.RunResult:
    wf = cp.loads(text)
    kwargs.setdefault("backend", RayBackend.factory())
    return cp.run_sync(wf, **kwargs)


def test_python_and_program_agents_run_as_ray_tasks(local_ray: str) -> None:
    result = _run(
        """
name: where
agents:
  py: {kind: python, function: "raykit:pid"}
  sh: {kind: program, argv: [sh, -c, "echo $PPID"]}
  same: {kind: noop}
steps:
  - {id: a, agent: py, input: 7}
  - {id: b, agent: sh, needs: a}
  - {id: c, agent: same, needs: a, input: "${{ steps.a.output.input }}"}
"""
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    out = result.outputs
    assert out["a"]["input"] == 7  # type: ignore[index]
    assert out["a"]["pid"] != os.getpid()  # type: ignore[index]
    assert isinstance(out["b"], int) and out["b"] != os.getpid()  # a worker started it
    assert out["c"] == 7  # the noop ran here, on the output the worker sent back


def test_a_killed_worker_fails_only_its_attempt_and_the_step_is_retried(local_ray: str) -> None:
    result = _run(
        """
name: killed
agents:
  dies: {kind: python, function: "raykit:die_once"}
  fine: {kind: python, function: "raykit:pid"}
steps:
  - {id: victim, agent: dies, retries: {max: 2, backoff: 0}}
  - {id: bystander, agent: fine, input: 1}
  - {id: after, agent: fine, needs: victim, input: 2}
"""
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    victim = result.steps["victim"]
    assert victim.attempts == 2
    assert victim.output["attempt"] == 2  # type: ignore[index]
    assert len(victim.errors) == 1
    assert "Ray worker running it died" in victim.errors[0]
    assert result.steps["bystander"].attempts == 1
    assert result.steps["after"].status is StepState.SUCCEEDED


def test_a_killed_worker_without_retries_fails_the_step_not_the_run(local_ray: str) -> None:
    result = _run(
        """
name: killed-once
agents:
  dies: {kind: python, function: "raykit:die_once"}
  fine: {kind: python, function: "raykit:pid"}
steps:
  - {id: victim, agent: dies, retries: 0}
  - {id: bystander, agent: fine, input: 1}
"""
    )
    assert result.status is cp.RunStatus.FAILED
    assert result.steps["victim"].status is StepState.FAILED
    assert "Ray worker running it died" in (result.steps["victim"].error or "")
    assert result.steps["bystander"].status is StepState.SUCCEEDED


_TWO_AT_ONCE = """
name: demands
resources:
  pools:
    {pool}
agents:
  work: {{kind: python, function: "raykit:meet"}}
steps:
  - {{id: one, agent: work, uses: {uses}, input: {{folder: "{folder}", wait_s: {wait}}}}}
  - {{id: two, agent: work, uses: {uses}, input: {{folder: "{folder}", wait_s: {wait}}}}}
"""
# Each step waits up to wait_s for the other to be running too: a pair Ray lets run at once
# meets (within seconds, once Ray has a second worker); a pair it keeps apart never does.
APART_S = 2.0
TOGETHER_S = 60.0


def _pair(tmp_path: Path, pool: str, uses: str, wait: float) -> tuple[Any, Any]:
    text = _TWO_AT_ONCE.format(pool=pool, uses=uses, folder=tmp_path, wait=wait)
    result = _run(text)
    assert result.status is cp.RunStatus.SUCCEEDED
    return result.outputs["one"], result.outputs["two"]


def test_gpu_demands_become_ray_gpu_requests(local_ray: str, tmp_path: Path) -> None:
    # the workflow's pool lets both run at once; the cluster has one GPU
    one, two = _pair(tmp_path, "gpu: 2", "{gpu: 1}", APART_S)
    assert not one["met"] and not two["met"]
    for out in (one, two):
        assert out["gpus"] == ["0"] and out["cuda"] == "0"


def test_custom_resource_demands_become_ray_resource_requests(
    local_ray: str, tmp_path: Path
) -> None:
    one, two = _pair(tmp_path, "special: 4", "{special: 1}", APART_S)
    assert not one["met"] and not two["met"]


def test_a_pool_ray_does_not_know_limits_only_the_driver(local_ray: str, tmp_path: Path) -> None:
    # the control for the tests around it: the same pair on a pool of the workflow's own
    # (not a Ray resource) runs at once on the cluster's 2 CPUs
    one, two = _pair(tmp_path, "db: 4", "{db: 1}", TOGETHER_S)
    assert one["met"] and two["met"]
    assert one["gpus"] == [] and two["gpus"] == []


def test_cpu_demands_become_ray_cpu_requests(local_ray: str, tmp_path: Path) -> None:
    # the cluster has 2 CPUs: one at a time, though the workflow's pool has 8
    pool = "machine: {cpu: 8, memory: 64GiB}"
    one, two = _pair(tmp_path, pool, "{machine: {cpu: 2, memory: 1MiB}}", APART_S)
    assert not one["met"] and not two["met"]


def test_a_demand_no_node_can_meet_is_refused_before_anything_runs(local_ray: str) -> None:
    text = """
name: too-big
resources:
  pools:
    machine: {cpu: 64, memory: 1TiB}
agents:
  work: {kind: python, function: "raykit:pid"}
steps:
  - {id: small, agent: work}
  - {id: huge, agent: work, uses: {machine: {cpu: 1, memory: 512GiB}}}
"""
    with pytest.raises(BackendUnavailable) as caught:
        _run(text)
    message = str(caught.value)
    assert "step 'huge' asks Ray for CPU 1, memory 512.0 GiB" in message
    assert "more than any node of the cluster has" in message


def test_ray_options_from_the_steps_demands() -> None:
    wf = cp.loads(
        """
name: mapping
resources:
  pools:
    machine: {cpu: 8, memory: 32GiB}
    gpu: 4
    special: 3
    db: 2
agents:
  a: {kind: noop}
steps:
  - {id: s, agent: a, uses: {machine: {cpu: 0.5, memory: 2GiB}, gpu: 1, special: 2, db: 1}}
  - {id: plain, agent: a}
  - {id: only-db, agent: a, uses: {db: 1}}
"""
    )
    steps = {s.id: s for s in wf.steps}
    assert ray_options(steps["s"], wf, {"special"}) == {
        "num_cpus": 0.5,
        "num_gpus": 1.0,
        "memory": 2 * 2**30,
        "resources": {"special": 2.0},
    }
    assert ray_options(steps["s"], wf, set()) == {
        "num_cpus": 0.5,
        "num_gpus": 1.0,
        "memory": 2 * 2**30,
    }
    assert ray_options(steps["plain"], wf, {"special"}) == {}  # Ray's default: 1 CPU
    assert ray_options(steps["only-db"], wf, {"special"}) == {}


_BIG = """
name: big
agents:
  big: {{kind: python, function: "raykit:big"}}
  sizes: {{kind: python, function: "raykit:sizes"}}
  fail_if_flag: {{kind: python, function: "raykit:fail_if_flag"}}
  here: {{kind: noop}}
steps:
  - {{id: a, agent: big, input: {{size: 3000000, folder: "{folder}"}}}}
  - {{id: small, agent: big, input: {{size: 10, folder: "{folder}"}}}}
  - {{id: b, agent: sizes, needs: [a, small], input: {{folder: "{folder}"}}}}
  - {{id: c, agent: fail_if_flag, needs: [a, b], input: {{folder: "{folder}", flag: "{flag}"}}}}
{extra}
"""


def _runs(folder: Path, step: str) -> list[int]:
    path = folder / f"{step}.runs"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_large_output_stays_in_the_object_store_and_the_journal_keeps_a_file(
    local_ray: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[int] = []
    value = LargeOutput.value

    def counting(self: LargeOutput) -> object:
        fetched.append(self.nbytes)
        return value(self)

    monkeypatch.setattr(LargeOutput, "value", counting)
    store_path = tmp_path / "store.db"
    text = _BIG.format(folder=tmp_path, flag=tmp_path / "no-flag", extra="")
    result = _run(
        text,
        store=SqliteStore(store_path),
        backend=RayBackend.factory(storage=tmp_path / "objects"),
    )
    assert result.status is cp.RunStatus.SUCCEEDED
    a = result.steps["a"].output
    assert isinstance(a, LargeOutput) and a.nbytes == 3000002  # JSON: quotes included
    assert result.outputs["small"] == "x" * 10  # small outputs come back as values
    assert result.outputs["b"]["sizes"] == {"a": 3000000, "small": 10}  # type: ignore[index]
    assert result.outputs["c"] == {"sizes": {"a": 3000000, "b": 2}}
    assert fetched == []  # the driver never fetched it
    # the journal holds where, not what
    assert a.path is not None and Path(a.path).stat().st_size == 3000002
    assert Path(a.path).is_relative_to(tmp_path / "objects" / result.run_id)
    assert store_path.stat().st_size < 1_000_000
    assert a.value() == "x" * 3000000


def test_a_driver_side_agent_and_a_checkpoint_get_the_value(local_ray: str, tmp_path: Path) -> None:
    extra = """
  - {id: d, agent: here, needs: a, input: "${{ steps.a.output }}"}
  - id: checked
    agent: big
    input: {size: 1100000, folder: "FOLDER"}
    validate: {schema: {type: string, maxLength: 1000}}
""".replace("FOLDER", str(tmp_path))
    text = _BIG.format(folder=tmp_path, flag=tmp_path / "no-flag", extra=extra)
    result = _run(text, backend=RayBackend.factory(storage=tmp_path / "objects"))
    assert result.outputs["d"] == "x" * 3000000  # a noop in the driver got the value
    checked = result.steps["checked"]
    assert checked.status is StepState.FAILED
    assert "is too long" in (checked.error or "")


def _failed_once(
    tmp_path: Path, storage: Path | None
) -> tuple[SqliteStore, cp.Workflow, cp.RunResult]:
    """A run of _BIG on Ray whose last step failed for good (the flag was up); the flag is
    down afterwards, for resume."""
    flag = tmp_path / "flag"
    flag.touch()
    store = SqliteStore(tmp_path / "store.db")
    wf = cp.loads(_BIG.format(folder=tmp_path, flag=flag, extra=""))
    first = cp.run_sync(wf, store=store, backend=RayBackend.factory(storage=storage))
    assert first.status is cp.RunStatus.FAILED
    assert first.steps["c"].error == "the flag is up"
    flag.unlink()
    return store, wf, first


def test_resume_on_ray_runs_only_what_did_not_finish(local_ray: str, tmp_path: Path) -> None:
    store, wf, first = _failed_once(tmp_path, tmp_path / "objects")
    placed: list[object] = []
    # resumed without naming a backend: where the run started (Ray, with its storage)
    second = asyncio.run(
        cp.resume(
            first.run_id,
            store=store,
            workflow=wf,
            on_engine=lambda engine: placed.append(engine.backend),
        )
    )
    assert second.status is cp.RunStatus.SUCCEEDED
    assert isinstance(placed[0], RayBackend)
    assert str(placed[0].storage) == str(tmp_path / "objects")
    assert _runs(tmp_path, "a") == [1]  # not run again: its output came from its file
    assert _runs(tmp_path, "b") == [1]
    assert _runs(tmp_path, "c") == [1, 2]
    assert second.outputs["c"] == {"sizes": {"a": 3000000, "b": 2}}
    a = second.steps["a"].output
    assert isinstance(a, LargeOutput) and a.ref is None and a.value() == "x" * 3000000


def test_resume_runs_a_step_again_when_its_large_output_is_gone(
    local_ray: str, tmp_path: Path
) -> None:
    store, wf, first = _failed_once(tmp_path, tmp_path / "objects")
    path = first.steps["a"].output.path  # type: ignore[union-attr]
    Path(path).unlink()  # the storage lost it
    second = asyncio.run(cp.resume(first.run_id, store=store, workflow=wf))
    assert second.status is cp.RunStatus.SUCCEEDED
    assert _runs(tmp_path, "a") == [1, 2]  # made again
    assert _runs(tmp_path, "b") == [1]
    assert second.outputs["c"] == {"sizes": {"a": 3000000, "b": 2}}


def test_without_storage_a_large_output_is_not_kept_and_resume_makes_it_again(
    local_ray: str, tmp_path: Path
) -> None:
    store, wf, first = _failed_once(tmp_path, None)
    assert first.steps["a"].output.path is None  # type: ignore[union-attr]
    second = asyncio.run(cp.resume(first.run_id, store=store, workflow=wf))
    assert second.status is cp.RunStatus.SUCCEEDED
    assert _runs(tmp_path, "a") == [1, 2]


def test_a_timeout_on_ray_ends_the_program_and_its_children(local_ray: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    result = _run(
        f"""
name: slow
agents:
  slow: {{kind: program, argv: [sh, -c, "sleep 60 & echo $! > {pidfile}; wait"]}}
steps:
  - {{id: s, agent: slow, timeout: 1s, retries: 0}}
"""
    )
    step = result.steps["s"]
    assert step.status is StepState.FAILED
    assert "timed out after 1s" in (step.error or "")
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the process to be gone, not waiting a set time
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_events_charges_and_errors_come_back_from_the_worker(local_ray: str) -> None:
    result = _run(
        """
name: talk
resources:
  budgets:
    cost: 10
agents:
  talks: {kind: python, function: "raykit:talks"}
  waits: {kind: python, function: "raykit:waits"}
  fails: {kind: python, function: "raykit:fails"}
steps:
  - {id: t, agent: talks, uses: {cost: 1}}
  - {id: w, agent: waits, retries: 0}
  - {id: f, agent: fails, retries: 0}
"""
    )
    assert result.outputs["t"] == "said"
    names = [(e.step_id, e.name, e.data) for e in result.events]
    assert ("t", "progress", {"done": 0.5}) in names
    assert ("t", "charged", {"resource": "cost", "amounts": {"": 2.5}}) in names
    assert "runs on a Ray worker" in (result.steps["w"].error or "")
    line = inspect.getsourcelines(raykit.fails)[1] + 1
    assert result.steps["f"].error == f"ValueError: bad thing (at raykit.py:{line} in fails)"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "counterpoint", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})},
        check=False,
    )


def test_cli_runs_on_an_existing_cluster_by_address(local_ray: str, tmp_path: Path) -> None:
    (tmp_path / "cliagents_ray.py").write_text(
        "import os\n\ndef where(ctx):\n    return {'pid': os.getpid(), 'cwd': os.getcwd()}\n"
    )
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        """
name: on-a-cluster
agents:
  where: {kind: python, function: "cliagents_ray:where"}
steps:
  - {id: w, agent: where}
"""
    )
    done = _cli(
        "run", str(wf), "--backend", "ray", "--ray-address", local_ray, "--json",
        "--store", str(tmp_path / "store.db"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "succeeded"
    assert data["steps"]["w"]["output"]["cwd"] != str(tmp_path)  # the shipped working_dir


def test_cli_ray_options_need_the_ray_backend(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: x\nagents: {a: {kind: noop}}\nsteps: [{id: s, agent: a}]\n")
    done = _cli("run", str(wf), "--ray-address", "auto", "--store", ":memory:")
    assert done.returncode == 2
    assert "--ray-address and --ray-storage go with --backend ray" in done.stderr


def test_without_ray_installed_the_backend_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "counterpoint.backends.ray", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'counterpoint\[ray\]'"):
        make_backend("ray")
    with pytest.raises(BackendUnavailable, match="unknown backend 'spark'"):
        make_backend("spark")
    assert make_backend("local") is None


def test_the_journal_keeps_the_backend_for_resume(local_ray: str, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    result = _run(
        "name: j\nagents: {a: {kind: python, function: 'raykit:pid'}}\nsteps: [{id: s, agent: a}]",
        store=store,
        backend=RayBackend.factory(address=None, storage=tmp_path / "o"),
    )
    info = asyncio.run(store.get_run(result.run_id))
    assert info.options["backend"] == {
        "kind": "ray",
        "address": None,
        "storage": str(tmp_path / "o"),
    }


def test_cli_on_a_local_ray_keeps_large_outputs_beside_the_store_and_resumes_there(
    tmp_path: Path,
) -> None:
    # a local Ray started by the command itself (and stopped when it exits), twice
    (tmp_path / "cli_big_ray.py").write_text(
        "from pathlib import Path\n\n\n"
        "def big(ctx):\n"
        "    with open(Path(ctx.input['folder']) / 'big.runs', 'a') as f:\n"
        "        f.write('run\\n')\n"
        "    return 'y' * 2_000_000\n\n\n"
        "def size(ctx):\n"
        "    if Path(ctx.input['flag']).exists():\n"
        "        raise RuntimeError('the flag is up')\n"
        "    return len(ctx.upstream['big'])\n"
    )
    flag = tmp_path / "flag"
    flag.touch()
    (tmp_path / "wf.yaml").write_text(
        f"""
name: cli-local-ray
agents:
  big: {{kind: python, function: "cli_big_ray:big"}}
  size: {{kind: python, function: "cli_big_ray:size"}}
steps:
  - {{id: big, agent: big, input: {{folder: "{tmp_path}"}}}}
  - {{id: size, agent: size, needs: big, input: {{flag: "{flag}"}}, retries: 0}}
"""
    )
    ray_tmp = Path(tempfile.mkdtemp(prefix="cpr", dir="/tmp"))  # Ray's sessions, removed below
    home = tmp_path / "home"
    env = {"RAY_TMPDIR": str(ray_tmp)}
    try:
        first = _cli(
            "run", str(tmp_path / "wf.yaml"), "--backend", "ray", "--store", str(home), "--json",
            env=env,
        )  # fmt: skip
        assert first.returncode == 1, first.stderr
        run_id = json.loads(first.stdout)["run_id"]
        kept = list((home / "objects" / run_id).iterdir())
        assert [p.name for p in kept] == ["big.1.json"]
        assert kept[0].stat().st_size == 2_000_002
        flag.unlink()
        second = _cli("resume", run_id, "--store", str(home), "--json", env=env)
        assert second.returncode == 0, second.stderr
        data = json.loads(second.stdout)
        assert data["steps"]["size"]["output"] == 2_000_000
        assert (tmp_path / "big.runs").read_text() == "run\n"  # made once, read from its file
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_on_another_machine_a_program_runs_in_the_shipped_workflow_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from counterpoint.agents.program import PROGRAM, ProgramOptions
    from counterpoint.backends.ray_worker import _rebased

    driver_folder = Path("/nonexistent/driver/workflows")  # the driver's, not this node's
    top = PROGRAM.build(None, ProgramOptions(argv=["true"]), driver_folder)  # type: ignore[arg-type]
    sub = PROGRAM.build(None, ProgramOptions(argv=["true"], cwd="tools"), driver_folder)  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)  # Ray runs the task in the shipped working_dir
    (tmp_path / "tools").mkdir()
    assert _rebased(top, driver_folder) == tmp_path
    assert top.cwd == tmp_path  # type: ignore[attr-defined]
    _rebased(sub, driver_folder)
    assert sub.cwd == tmp_path / "tools"  # type: ignore[attr-defined]


def test_a_timeout_on_a_runner_replaces_it_and_the_run_goes_on(local_ray: str) -> None:
    # Python steps without resource demands run on the runners' pool (actors)
    result = _run(
        """
name: stuck-runner
agents:
  stuck: {kind: python, function: "raykit:stuck"}
  fine: {kind: python, function: "raykit:pid"}
steps:
  - {id: s, agent: stuck, timeout: 1s, retries: 0}
  - {id: after, agent: fine, needs: s}
  - {id: other, agent: fine, input: 3}
  - {id: later, agent: fine, needs: other, input: 4}
"""
    )
    assert result.steps["s"].status is StepState.FAILED
    assert "timed out after 1s" in (result.steps["s"].error or "")
    assert result.steps["after"].status is StepState.SKIPPED
    assert result.outputs["later"]["input"] == 4  # type: ignore[index]


def test_a_step_queued_behind_a_stuck_one_moves_to_another_runner(local_ray: str) -> None:
    # the pool has one runner per CPU (2), each given more calls while it runs one: the
    # third step to start waits behind the stuck one, on its runner, until that is killed
    result = _run(
        """
name: queued-behind
agents:
  stuck: {kind: python, function: "raykit:stuck"}
  fine: {kind: python, function: "raykit:pid"}
steps:
  - {id: s, agent: stuck, timeout: 1s, retries: 0, priority: 10}
  - {id: a, agent: fine, input: 1, retries: 0, priority: 5}
  - {id: b, agent: fine, input: 2, retries: 0}
"""
    )
    assert "timed out after 1s" in (result.steps["s"].error or "")
    for sid in ("a", "b"):  # never ran where it waited: not a failed attempt
        assert result.steps[sid].status is StepState.SUCCEEDED, result.steps[sid].error
        assert result.steps[sid].attempts == 1


def test_steps_queued_on_a_runner_that_dies_are_not_failed_with_it(local_ray: str) -> None:
    # two runners (2 CPUs), up to three calls each: the third step to start waits on the
    # victim's runner, which dies running the victim
    result = _run(
        """
name: queued-on-the-dead
agents:
  dies: {kind: python, function: "raykit:die_once"}
  fine: {kind: python, function: "raykit:pid"}
steps:
  - {id: victim, agent: dies, retries: {max: 1, backoff: 0}, priority: 10}
  - {id: x, agent: fine, input: 1, retries: 0, priority: 5}
  - {id: y, agent: fine, input: 2, retries: 0}
"""
    )
    assert result.status is cp.RunStatus.SUCCEEDED, {k: s.error for k, s in result.steps.items()}
    assert result.steps["victim"].attempts == 2
    assert result.steps["x"].attempts == 1 and result.steps["y"].attempts == 1
