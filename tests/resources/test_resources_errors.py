"""Resources that could never work are load errors, each as FILE:LINE:COL: message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import counterpoint as cp

HEAD = """\
name: bad
resources:
  pools:
    db: 2
    machine: {cpu: 8, memory: 32GiB}
  rate_limits:
    api: 10/s
    llm: {requests: 500/min, tokens: 90k/min, burst: {tokens: 20k}}
    search: {requests: 100/min, burst: 20}
agents:
  w: {kind: noop}
steps:
"""
# the steps below start on line 13


def problems(text: str, file: str = "wf.yaml") -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text, file)
    return [str(p) for p in info.value.problems]


def step_problems(*steps: str) -> list[str]:
    return problems(HEAD + "".join(f"  {s}\n" for s in steps))


def test_the_head_alone_is_valid() -> None:
    wf = cp.loads(HEAD + "  - {id: ok, agent: w, uses: {db: 2, api: 10, search: 20}}\n")
    assert wf.step("ok").uses == {"db": 2.0, "api": 10.0, "search": 20.0}


def test_unknown_resource_with_a_suggestion() -> None:
    assert step_problems("- {id: a, agent: w, uses: {dbb: 1}}") == [
        "wf.yaml:13:30: step 'a' uses unknown resource 'dbb' (did you mean 'db'?)",
    ]
    assert step_problems("- {id: a, agent: w, uses: {machin: {cpu: 1}}}") == [
        "wf.yaml:13:30: step 'a' uses unknown resource 'machin' (did you mean 'machine'?)",
    ]


def test_unknown_resource_without_a_close_one_lists_them() -> None:
    assert step_problems("- {id: a, agent: w, uses: {zzzzzz: 1}}") == [
        "wf.yaml:13:30: step 'a' uses unknown resource 'zzzzzz'; resources: db, machine, "
        "api, llm, search",
    ]


def test_uses_without_any_resources() -> None:
    text = "name: x\nagents:\n  w: {kind: noop}\nsteps:\n  - {id: a, agent: w, uses: {db: 1}}\n"
    assert problems(text) == ["wf.yaml:5:30: step 'a' uses unknown resource 'db'"]


def test_demand_over_a_count() -> None:
    assert step_problems("- {id: b, agent: w, uses: {db: 3}}") == [
        "wf.yaml:13:34: step 'b' needs 3 slots of pool 'db', which has 2: it could never start",
    ]


def test_demand_over_a_weighted_capacity_points_at_the_dimension() -> None:
    assert step_problems("- {id: b, agent: w, uses: {machine: {cpu: 9, memory: 1GiB}}}") == [
        "wf.yaml:13:45: step 'b' needs 9 cpu of pool 'machine', which has 8: it could never start",
    ]
    assert step_problems(
        "- id: b",
        "  agent: w",
        "  uses:",
        "    machine:",
        "      cpu: 8",
        "      memory: 1GiB",
        "    db: 4",
    ) == [
        "wf.yaml:19:11: step 'b' needs 4 slots of pool 'db', which has 2: it could never start",
    ]


def test_over_capacity_message_is_readable() -> None:
    # The amounts as the user wrote them (or at least not as 3.54335e+10 and 3.43597e+10,
    # which also round the numbers being compared).
    (message,) = step_problems("- {id: b, agent: w, uses: {machine: {memory: 33GiB}}}")
    assert message.startswith("wf.yaml:13:48: step 'b' needs ")
    assert "e+" not in message


def test_unknown_dimension() -> None:
    assert step_problems("- {id: c, agent: w, uses: {machine: {gpu: 1}}}") == [
        "wf.yaml:13:40: step 'c': 'machine' has no 'gpu' (it has cpu, memory)",
    ]
    assert step_problems("- {id: c, agent: w, uses: {llm: {cost: 1}}}") == [
        "wf.yaml:13:36: step 'c': 'llm' has no 'cost' (it has requests, tokens)",
    ]


def test_a_plain_number_for_a_weighted_pool_is_ambiguous() -> None:
    assert step_problems("- {id: c, agent: w, uses: {machine: 2}}") == [
        "wf.yaml:13:39: step 'c': say how much of each of cpu, memory it uses",
    ]


def test_a_plain_number_for_a_rate_limit_means_requests() -> None:
    wf = cp.loads(HEAD + "  - {id: c, agent: w, uses: {llm: 3}}\n")
    assert wf.step("c").uses == {"llm": 3.0}
    assert step_problems("- {id: c, agent: w, uses: {llm: 501}}") == [
        "wf.yaml:13:35: step 'c' asks 501 requests of rate limit 'llm', more than it ever "
        "allows at once (500): it could never start",
    ]


def test_rate_demand_over_what_the_limit_ever_allows() -> None:
    assert step_problems("- {id: d, agent: w, uses: {api: 11}}") == [
        "wf.yaml:13:35: step 'd' asks 11 requests of rate limit 'api', more than it ever "
        "allows at once (10): it could never start",
    ]
    # with a burst, the bucket's size is the most at once (20k, though 90k per minute)
    assert step_problems("- {id: d, agent: w, uses: {llm: {tokens: 20001}}}") == [
        "wf.yaml:13:44: step 'd' asks 20001 tokens of rate limit 'llm', more than it ever "
        "allows at once (20000): it could never start",
    ]
    assert step_problems("- {id: d, agent: w, uses: {search: 21}}") == [
        "wf.yaml:13:38: step 'd' asks 21 requests of rate limit 'search', more than it ever "
        "allows at once (20): it could never start",
    ]


def test_demands_at_the_limit_are_fine() -> None:
    wf = cp.loads(
        HEAD
        + "  - {id: e, agent: w, uses: {db: 2, machine: {cpu: 8, memory: 32GiB}}}\n"
        + "  - {id: f, agent: w, uses: {api: 10, llm: {requests: 500, tokens: 20k}}}\n"
        + "  - {id: g, agent: w, uses: {search: 20, db: 0}}\n"
    )
    assert len(wf.steps) == 3


def test_bad_amount_in_uses() -> None:
    assert step_problems("- {id: e, agent: w, uses: {db: lots}}") == [
        "wf.yaml:13:34: step 'e': uses.db: bad amount 'lots': write a number, or one with a "
        "unit (k, M, KB, MB, GB, KiB, MiB, GiB)",
    ]
    assert step_problems("- {id: e, agent: w, uses: {db: -1}}") == [
        "wf.yaml:13:34: step 'e': uses.db: bad amount -1: it cannot be negative",
    ]


def test_bad_amount_in_a_pool() -> None:
    text = HEAD.replace("db: 2", "db: lots") + "  - {id: a, agent: w}\n"
    (message,) = problems(text)
    assert message.startswith("wf.yaml:4:9: resources.pools.db")
    assert message.endswith(
        ": bad amount 'lots': write a number, or one with a unit (k, M, KB, MB, GB, KiB, MiB, GiB)"
    )
    text = HEAD.replace("memory: 32GiB", "memory: 32 gigs") + "  - {id: a, agent: w}\n"
    (message,) = problems(text)
    assert message.startswith("wf.yaml:5:31: resources.pools.machine")
    assert message.endswith(
        ": bad amount '32 gigs': write a number, or one with a unit (k, "
        "M, KB, MB, GB, KiB, MiB, GiB)"
    )


def test_bad_rate() -> None:
    text = HEAD.replace("api: 10/s", "api: 10 per s") + "  - {id: a, agent: w}\n"
    assert problems(text) == [
        "wf.yaml:7:10: resources.rate_limits.api: bad rate '10 per s': write an amount per "
        "interval (500/min, 10/s, 90k/h)",
    ]
    text = HEAD.replace("tokens: 90k/min,", "tokens: 90k a minute,") + "  - {id: a, agent: w}\n"
    (message,) = problems(text)
    assert message.startswith("wf.yaml:8:")
    assert message.endswith(
        "bad rate '90k a minute': write an amount per interval (500/min, 10/s, 90k/h)"
    )


def test_burst_as_one_number_with_several_dimensions() -> None:
    text = HEAD.replace("burst: {tokens: 20k}", "burst: 20") + "  - {id: a, agent: w}\n"
    assert problems(text) == [
        "wf.yaml:8:10: resources.rate_limits.llm: burst: give it per dimension ({requests: "
        "50, tokens: 20k}) when the limit has several",
    ]


def test_every_problem_at_once() -> None:
    assert step_problems(
        "- {id: a, agent: w, uses: {dbb: 1}}",
        "- {id: b, agent: w, uses: {db: 3}}",
        "- {id: c, agent: w, uses: {machine: {gpu: 1}}}",
        "- {id: d, agent: w, uses: {api: 11}}",
        "- {id: e, agent: w, uses: {db: 1, api: 1, machine: {cpu: 1}}}",
    ) == [
        "wf.yaml:13:30: step 'a' uses unknown resource 'dbb' (did you mean 'db'?)",
        "wf.yaml:14:34: step 'b' needs 3 slots of pool 'db', which has 2: it could never start",
        "wf.yaml:15:40: step 'c': 'machine' has no 'gpu' (it has cpu, memory)",
        "wf.yaml:16:35: step 'd' asks 11 requests of rate limit 'api', more than it ever "
        "allows at once (10): it could never start",
    ]


def test_in_a_construct_the_position_is_the_step_inside() -> None:
    text = HEAD + (
        "  - sequence:\n"
        "      id: seq\n"
        "      steps:\n"
        "        - {id: a, agent: w, uses: {db: 1}}\n"
        "        - {id: b, agent: w, uses: {dbb: 1}}\n"
    )
    assert problems(text) == [
        "wf.yaml:17:36: step 'b' uses unknown resource 'dbb' (did you mean 'db'?)",
    ]


def test_python_builder_paths(tmp_path: Path) -> None:
    b = cp.WorkflowBuilder("x")
    b.agent("w", kind="noop")
    b.add({"id": "a", "agent": "w", "uses": {"db": 1}})
    with pytest.raises(cp.WorkflowInvalid) as info:
        b.build()
    assert [str(p) for p in info.value.problems] == [
        "<python>: steps[0].uses.db: step 'a' uses unknown resource 'db'"
    ]


def test_cli_validate_prints_them(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        HEAD
        + "  - {id: a, agent: w, uses: {dbb: 1}}\n"
        + "  - {id: d, agent: w, uses: {api: 11}}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = (proc.stdout + proc.stderr).splitlines()
    assert f"{path}:13:30: step 'a' uses unknown resource 'dbb' (did you mean 'db'?)" in out
    assert (
        f"{path}:14:35: step 'd' asks 11 requests of rate limit 'api', more than it ever "
        "allows at once (10): it could never start"
    ) in out
