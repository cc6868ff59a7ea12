"""A parallel block's join: its streams' outputs merged, conflicts resolved as declared."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import counterpoint as cp

if TYPE_CHECKING:
    from conftest import Workspace

CODE = """\
MERGED = []

async def api(ctx):
    return {"version": "1.2", "api": "rest", "same": [1, 2]}

async def ui(ctx):
    return {"version": "2.0", "ui": "web", "same": [1, 2]}

async def docs(ctx):
    return {"version": "0.9", "docs": "guide"}

async def text(ctx):
    return ctx.input

def merge(key, values):
    MERGED.append((key, dict(values)))
    return "+".join(sorted(values.values()))
"""


def block(conflicts: str, backend_s: int = 1, frontend_s: int = 1, docs: bool = False) -> str:
    extra = "        docs: [{id: d, agent: docs, estimate: 1s}]\n" if docs else ""
    return f"""\
name: t
agents:
  api: {{kind: python, function: MOD:api}}
  ui: {{kind: python, function: MOD:ui}}
  docs: {{kind: python, function: MOD:docs}}
steps:
  - parallel:
      id: build
      streams:
        backend: [{{id: b, agent: api, estimate: {backend_s}s}}]
        frontend: [{{id: f, agent: ui, estimate: {frontend_s}s}}]
{extra}      {conflicts}
  - {{id: next, agent: api, needs: build}}
"""


def resolved(result: cp.RunResult) -> list[dict[str, object]]:
    return [e.data for e in result.events if e.name == "conflict-resolved"]


def test_priority_follows_the_declared_order(ws: Workspace) -> None:
    wf = ws.load(block("conflicts: {default: priority, priority: [frontend, backend]}"), CODE)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["build"] == {
        "version": "2.0",
        "api": "rest",
        "same": [1, 2],
        "ui": "web",
    }
    assert resolved(result) == [{"key": "version", "strategy": "priority", "winner": "frontend"}]
    assert all(e.step_id == "build" for e in result.events if e.name == "conflict-resolved")


def test_priority_defaults_to_the_order_of_the_streams(ws: Workspace) -> None:
    result = ws.run(ws.load(block("conflicts: {default: priority}", docs=True), CODE))
    assert result.status is cp.RunStatus.SUCCEEDED
    output = result.outputs["build"]
    assert isinstance(output, dict)
    assert output["version"] == "1.2"  # backend is written first
    assert output["docs"] == "guide"


def test_priority_streams_not_listed_come_after_the_listed_ones(ws: Workspace) -> None:
    result = ws.run(
        ws.load(block("conflicts: {default: priority, priority: [docs]}", docs=True), CODE)
    )
    output = result.outputs["build"]
    assert isinstance(output, dict)
    assert output["version"] == "0.9"


def test_merge_calls_the_function_with_every_value(ws: Workspace) -> None:
    wf = ws.load(
        block("conflicts: {default: escalate, keys: {version: merge}, merge: MOD:merge}"), CODE
    )
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    output = result.outputs["build"]
    assert isinstance(output, dict)
    assert output["version"] == "1.2+2.0"
    assert ws.mod().MERGED == [("version", {"backend": "1.2", "frontend": "2.0"})]  # type: ignore[attr-defined]
    assert resolved(result) == [{"key": "version", "strategy": "merge", "winner": "merge"}]


def test_merge_without_a_function_fails_the_join(ws: Workspace) -> None:
    result = ws.run(ws.load(block("conflicts: {default: merge}"), CODE))
    assert result.status is cp.RunStatus.FAILED
    error = result.steps["build"].error
    assert error is not None and "no merge function" in error
    assert result.steps["next"].status is cp.StepState.SKIPPED


@pytest.mark.parametrize(
    ("backend_s", "frontend_s", "version", "winner"),
    [(3, 1, "1.2", "backend"), (1, 3, "2.0", "frontend")],
)
def test_last_takes_the_stream_that_finished_last(
    ws: Workspace, backend_s: int, frontend_s: int, version: str, winner: str
) -> None:
    result = ws.run(ws.load(block("conflicts: {default: last}", backend_s, frontend_s), CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.steps["b"].end == float(backend_s)
    assert result.steps["f"].end == float(frontend_s)
    output = result.outputs["build"]
    assert isinstance(output, dict)
    assert output["version"] == version
    assert resolved(result) == [{"key": "version", "strategy": "last", "winner": winner}]


def test_escalate_fails_the_join_showing_both_values(ws: Workspace) -> None:
    result = ws.run(ws.load(block("conflicts: {default: escalate}"), CODE))
    assert result.status is cp.RunStatus.FAILED
    build = result.steps["build"]
    assert build.status is cp.StepState.FAILED
    assert build.attempts == 1
    assert build.error is not None
    assert "'version'" in build.error
    assert 'backend: "1.2"' in build.error
    assert 'frontend: "2.0"' in build.error
    assert "'same'" not in build.error  # equal values are no conflict
    assert result.steps["next"].status is cp.StepState.SKIPPED


def test_escalate_is_the_default(ws: Workspace) -> None:
    result = ws.run(ws.load(block(""), CODE))
    assert result.steps["build"].status is cp.StepState.FAILED
    assert 'backend: "1.2"; frontend: "2.0"' in (result.steps["build"].error or "")


def test_a_key_strategy_overrides_the_default(ws: Workspace) -> None:
    wf = ws.load(block("conflicts: {default: escalate, keys: {version: last}}", 1, 2), CODE)
    result = ws.run(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    output = result.outputs["build"]
    assert isinstance(output, dict)
    assert output["version"] == "2.0"


def test_equal_values_are_not_conflicts(ws: Workspace) -> None:
    code = CODE.replace('"version": "2.0"', '"version": "1.2"')
    result = ws.run(ws.load(block("conflicts: {default: escalate}"), code))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["build"] == {
        "version": "1.2",
        "api": "rest",
        "same": [1, 2],
        "ui": "web",
    }
    assert resolved(result) == []


def test_non_mapping_outputs_are_given_by_stream(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      text: {kind: python, function: MOD:text}
    steps:
      - parallel:
          id: build
          streams:
            backend: [{id: b, agent: text, input: "api ready"}]
            frontend: [{id: f, agent: text, input: [1, 2]}]
            docs: [{id: d, agent: text, input: {kind: mapping}}]
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["build"] == {
        "backend": "api ready",
        "frontend": [1, 2],
        "docs": {"kind": "mapping"},
    }


def test_the_last_step_of_each_stream_is_what_it_gives(ws: Workspace) -> None:
    text = """\
    name: t
    agents:
      text: {kind: python, function: MOD:text}
    steps:
      - parallel:
          id: build
          streams:
            backend:
              - {id: b1, agent: text, input: {version: "0.1", early: true}}
              - {id: b2, agent: text, input: {version: "1.0"}}
            frontend: [{id: f, agent: text, input: {version: "1.0", ui: true}}]
    """
    result = ws.run(ws.load(text, CODE))
    assert result.status is cp.RunStatus.SUCCEEDED, ws.statuses(result)
    assert result.outputs["build"] == {"version": "1.0", "ui": True}
