"""Agent OS workflow templates: phases of agents, imported as a workflow."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import counterpoint as cp
from counterpoint.agents.registry import known_kinds
from counterpoint.errors import ImportFormatError
from counterpoint.importers import FORMATS, agent_os, convert, to_yaml
from counterpoint.model.load import workflow_from_data
from counterpoint.model.locate import NoPositions
from counterpoint.model.workflow import ParallelItem, PhasesItem, SequenceItem

DATA = Path(__file__).parent / "agent_os"
FEATURE = DATA / "feature_development.yaml"
ENTERPRISE = DATA / "enterprise_integration.yaml"
DAG = DATA / "release_dag.yaml"
NOOP = {"kind": "noop"}


def imported(path: Path) -> tuple[str, cp.Workflow]:
    """The YAML of ``path`` with noop agents, and the workflow loaded from that YAML."""
    text = to_yaml(agent_os.read(path, agent_kind=NOOP))
    return text, cp.loads(text, "imported.yaml")


def from_text(tmp_path: Path, text: str) -> cp.Workflow:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text))
    data = agent_os.read(path, agent_kind=NOOP)
    return workflow_from_data(data, NoPositions(str(path)))


def first_steps(wf: cp.Workflow, phase: str) -> list[str]:
    """The steps of ``phase`` that start it (in a sequence: its first; else every stream's)."""
    part = wf.plan.parts[phase]
    if part.streams:
        return [ids[0] for ids in part.streams.values()]
    return part.members[:1] if part.pattern == "sequential" else list(part.members)


def upstream(wf: cp.Workflow, step_id: str) -> set[str]:
    graph = wf.graph
    seen: set[int] = set()
    todo = list(graph.preds[graph.index[step_id]])
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(graph.preds[i])
    return {graph.ids[i] for i in seen}


# --- the list-shaped template -----------------------------------------------------------


def test_a_list_template_becomes_one_phases_block_and_round_trips() -> None:
    text, wf = imported(FEATURE)
    assert text == to_yaml(agent_os.read(FEATURE, agent_kind=NOOP))  # the same text twice
    direct = workflow_from_data(agent_os.read(FEATURE, agent_kind=NOOP), NoPositions())
    assert wf.steps == direct.steps
    assert wf.agents == direct.agents

    assert wf.name == "feature_development"
    assert wf.description == (
        "Turn a user request into a specification, an implementation and a review."
    )
    assert {k: v.is_required for k, v in wf.inputs.items()} == {"request": True, "repo": True}
    (item,) = wf.items
    assert isinstance(item, PhasesItem)
    block = item.phases
    assert block.id == "feature_development"
    assert [(p.id, p.pattern) for p in block.phases] == [
        ("analysis", "sequential"),
        ("specification", "sequential"),
        ("build", "parallel"),
        ("review", "sequential"),
    ]
    analysis, spec, build, review = block.phases
    assert [(s.id, s.agent) for s in analysis.steps] == [  # type: ignore[union-attr]
        ("analysis-analyze-product", "analyze-product"),
        ("analysis-context-intelligence", "context-intelligence"),
    ]
    assert [s.id for s in build.steps] == [  # type: ignore[union-attr]
        "build-backend-dev",
        "build-frontend-dev",
    ]
    # inputs: workflow inputs, and earlier phases' whole outputs (their join steps)
    assert analysis.steps[0].input == {  # type: ignore[union-attr]
        "request": "${{ inputs.request }}",
        "repo": "${{ inputs.repo }}",
    }
    assert build.steps[1].input == {  # type: ignore[union-attr]
        "spec": "${{ steps.specification.output }}",
        "repo": "${{ inputs.repo }}",
    }
    assert review.steps[0].input == {  # type: ignore[union-attr]
        "spec": "${{ steps.specification.output }}",
        "code": "${{ steps.build.output }}",
    }
    # outputs cannot be expressed: they are recorded
    assert spec.description == "produces: spec"
    assert review.description is None
    # in order: each phase's first steps wait for the previous phase
    assert wf.step("specification-smart-spec-generator").needs == ("analysis",)
    assert set(wf.step("build-backend-dev").needs) == {"specification"}
    assert wf.step("review-policy-guardian").needs == ("build",)
    assert set(wf.agents) == {
        "analyze-product",
        "context-intelligence",
        "smart-spec-generator",
        "dependency-resolver",
        "backend-dev",
        "frontend-dev",
        "policy-guardian",
    }
    assert all(a.kind == "noop" for a in wf.agents.values())


def test_the_text_starts_with_where_it_came_from() -> None:
    text = to_yaml(convert("agent-os", FEATURE))
    assert text.startswith(
        "# Imported by `counterpoint import agent-os` from the Agent OS template\n"
        f"# {FEATURE}\n"
        "# Its phases form a chain of dependencies: one `phases` block runs them in order.\n"
        "name: feature_development\n"
    )
    assert "agent-os" in FORMATS


def test_agents_default_to_claude_code_subagents_of_the_same_name() -> None:
    data = agent_os.read(FEATURE)
    assert data["agents"]["analyze-product"] == {"kind": "subagent", "name": "analyze-product"}
    assert all(a == {"kind": "subagent", "name": n} for n, a in data["agents"].items())


def test_agents_the_template_defines_keep_their_definitions(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            agents:
              pause: {kind: sleep, seconds: 0}
              writer: Writes the documentation.
              reviewer: {description: Reviews it.}
              spare: {kind: noop}
            phases:
              - {name: write, agents: [writer, pause, reviewer, helper]}
            """
        )
    )
    data = agent_os.read(path)
    assert data["agents"] == {
        "writer": {
            "kind": "subagent",
            "name": "writer",
            "description": "Writes the documentation.",
        },
        "pause": {"kind": "sleep", "seconds": 0},
        "reviewer": {"kind": "subagent", "description": "Reviews it.", "name": "reviewer"},
        "helper": {"kind": "subagent", "name": "helper"},
        "spare": {"kind": "noop"},
    }
    assert data["name"] == "t"  # no name: the file's stem
    wf = workflow_from_data(agent_os.read(path, agent_kind=NOOP), NoPositions())
    assert wf.agents["pause"].kind == "sleep"
    assert wf.agents["writer"].description == "Writes the documentation."


def test_inputs_as_names_defaults_or_specs(tmp_path: Path) -> None:
    wf = from_text(
        tmp_path,
        """\
        workflow: {name: w, description: D.}
        inputs:
          request:
          repo: .
          depth: {type: integer, default: 2, description: How deep.}
          options: {verbose: true}
        phases:
          only:
            agents: a
            inputs: [request, repo, depth, options]
        """,
    )
    assert (wf.name, wf.description) == ("w", "D.")
    spec = wf.inputs
    assert spec["request"].is_required
    assert spec["repo"].default == "."
    assert (spec["depth"].type, spec["depth"].default, spec["depth"].description) == (
        "integer",
        2,
        "How deep.",
    )
    assert spec["options"].default == {"verbose": True}  # not a spec's keys: a default
    assert wf.step("only-a").input == {
        "request": "${{ inputs.request }}",
        "repo": "${{ inputs.repo }}",
        "depth": "${{ inputs.depth }}",
        "options": "${{ inputs.options }}",
    }


# --- the seed's own shape ----------------------------------------------------------------


def test_the_seeds_enterprise_integration_round_trips() -> None:
    text, wf = imported(ENTERPRISE)
    assert text == to_yaml(agent_os.read(ENTERPRISE, agent_kind=NOOP))
    assert wf.name == "enterprise_integration"
    (item,) = wf.items
    assert isinstance(item, PhasesItem)
    phases = {p.id: p for p in item.phases.phases}
    assert {k: p.pattern for k, p in phases.items()} == {
        "phase_1_analysis": "sequential",
        "phase_2_design": "parallel",
        "phase_3_implementation": "parallel",  # its streams; setup and integration are text
        "phase_4_validation": "sequential",
    }
    assert [s.agent for s in phases["phase_1_analysis"].steps] == [  # type: ignore[union-attr]
        "analyze-product",
        "context-intelligence",
        "dependency-resolver",
    ]
    streams = {
        name: [(s.id, s.agent) for s in items]  # type: ignore[union-attr]
        for name, items in phases["phase_2_design"].streams.items()
    }
    assert streams == {
        "architecture_design": [
            ("phase_2_design-architecture_design-smart-spec-generator", "smart-spec-generator"),
            ("phase_2_design-architecture_design-policy-guardian", "policy-guardian"),
        ],
        "data_flow_design": [
            ("phase_2_design-data_flow_design-dependency-resolver", "dependency-resolver"),
            ("phase_2_design-data_flow_design-context-intelligence", "context-intelligence"),
        ],
        "security_design": [
            ("phase_2_design-security_design-policy-guardian", "policy-guardian"),
            ("phase_2_design-security_design-adaptive-learner", "adaptive-learner"),
        ],
    }
    impl = phases["phase_3_implementation"]
    assert list(impl.streams) == [
        "client_side_integration",
        "server_side_integration",
        "testing_framework",
    ]
    assert [s.agent for s in impl.streams["testing_framework"]] == [  # type: ignore[union-attr]
        "policy-guardian",
        "execution-monitor",
    ]
    # each stream is a sequence; streams run side by side
    assert wf.step("phase_3_implementation-testing_framework-execution-monitor").needs == (
        "phase_3_implementation-testing_framework-policy-guardian",
    )
    assert wf.step(
        "phase_3_implementation-client_side_integration-workflow-orchestrator"
    ).needs == ("phase_2_design",)
    # purpose, coordination, duration, named sync points and other text: descriptions
    assert phases["phase_1_analysis"].description == (
        "Comprehensive system analysis and integration planning; coordination: Sequential - "
        "each analysis builds on previous; duration: 1-2 weeks"
    )
    design = phases["phase_2_design"].description or ""
    assert "sync points: Architecture review, Security approval, Integration planning" in design
    assert phases["phase_2_design"].sync_points == {}
    impl_text = impl.description or ""
    assert "setup: Environment preparation and contract finalization" in impl_text
    assert "integration: Sequential integration testing and validation" in impl_text
    assert "duration: 3-6 weeks" in impl_text
    assert len(wf.agents) == 9


def test_sync_points_that_say_after_which_agent_become_real_ones(tmp_path: Path) -> None:
    wf = from_text(
        tmp_path,
        """\
        phases:
          design:
            parallel_streams:
              api: [architect, api-dev]
              ui: [designer, ui-dev]
              docs: [writer]
            sync_points:
              contract: {after: {api: architect, ui: designer}}
        """,
    )
    assert wf.plan.parts["design"].sync_points["contract"].after == {
        "api": "design-api-architect",
        "ui": "design-ui-designer",
    }
    # the item after each milestone waits for the other stream's milestone
    assert set(wf.step("design-api-api-dev").needs) == {
        "design-api-architect",
        "design-ui-designer",
    }
    assert wf.step("design-docs-writer").needs == ()


# --- dependencies ------------------------------------------------------------------------


def test_dependencies_that_are_not_a_chain_become_constructs_with_needs() -> None:
    text, wf = imported(DAG)
    assert "# Its phases' dependencies are not a chain" in text
    assert [type(i) for i in wf.items] == [
        SequenceItem,
        SequenceItem,
        ParallelItem,
        SequenceItem,
        SequenceItem,
    ]
    assert {
        p: wf.plan.parts[p].kind for p in ("design", "security", "build", "docs", "release")
    } == {
        "design": "sequence",
        "security": "sequence",
        "build": "parallel",
        "docs": "sequence",
        "release": "sequence",
    }
    # the compiled graph's predecessors are exactly the template's dependencies (as joins)
    template = {
        "design": set(),
        "security": set(),
        "build": {"design"},
        "docs": {"design"},
        "release": {"build", "docs", "security"},
    }
    graph = wf.graph
    for phase, deps in template.items():
        for sid in first_steps(wf, phase):
            preds = {graph.ids[i] for i in graph.preds[graph.index[sid]]}
            assert preds == deps, sid
    # and no phase waits for one it does not depend on, directly or not
    phases = list(template)
    for phase in phases:
        before = upstream(wf, first_steps(wf, phase)[0])
        for other in phases:
            implied = other in template[phase] or any(other in template[d] for d in template[phase])
            assert (other in before) == implied, (phase, other)


def test_redundant_dependencies_still_make_a_chain_and_keep_reachability() -> None:
    # review depends on [analysis, build]: analysis is implied by build
    _, wf = imported(FEATURE)
    assert isinstance(wf.items[0], PhasesItem)
    assert {"analysis", "specification", "build"} <= upstream(wf, "review-policy-guardian")


def test_a_chain_written_out_of_order_runs_in_its_dependencies_order(tmp_path: Path) -> None:
    wf = from_text(
        tmp_path,
        """\
        phases:
          deploy: {agents: [ops], dependencies: [build]}
          build: {agents: [dev], dependencies: []}
        """,
    )
    (item,) = wf.items
    assert isinstance(item, PhasesItem)
    assert [p.id for p in item.phases.phases] == ["build", "deploy"]
    assert wf.step("deploy-ops").needs == ("build",)


def test_no_dependencies_on_a_later_phase_means_it_starts_at_once(tmp_path: Path) -> None:
    wf = from_text(
        tmp_path,
        """\
        phases:
          - {name: a, agents: [x]}
          - {name: b, agents: [y], dependencies: []}
          - {name: c, agents: [z]}
        """,
    )
    assert wf.step("b-y").needs == ()
    assert wf.step("c-z").needs == ("b",)  # the default: the previous phase
    assert "a" not in upstream(wf, "c-z")


# --- running -----------------------------------------------------------------------------


def test_an_imported_workflow_runs_with_noop_agents() -> None:
    _, wf = imported(FEATURE)
    result = asyncio.run(cp.run(wf, inputs={"request": "R", "repo": "."}))
    assert result.status is cp.RunStatus.SUCCEEDED
    assert all(r.status is cp.StepState.SUCCEEDED for r in result.steps.values())
    analysis = {"request": "R", "repo": "."}
    # noop returns its input: the references passed each phase's output on
    assert result.steps["analysis"].output == analysis
    assert result.steps["specification"].output == {"analysis": analysis}
    assert result.steps["build-frontend-dev"].output == {
        "spec": {"analysis": analysis},
        "repo": ".",
    }
    start = {k: r.start or 0.0 for k, r in result.steps.items()}
    end = {k: r.end or 0.0 for k, r in result.steps.items()}
    assert start["analysis-context-intelligence"] >= end["analysis-analyze-product"]
    assert start["review-policy-guardian"] >= end["build"]


def test_an_imported_dag_on_the_virtual_clock() -> None:
    _, wf = imported(DAG)
    result = asyncio.run(cp.simulate(wf))
    assert result.status is cp.RunStatus.SUCCEEDED
    start = {k: r.start for k, r in result.steps.items()}
    # every step takes the default estimate of 1 s; joins take none
    assert start["design-smart-spec-generator"] == start["security-policy-guardian"] == 0
    assert start["build-backend-dev"] == start["docs-project-manager"] == 1
    assert start["release-execution-monitor"] == 3  # after docs' two steps
    assert result.makespan_s == 4


# --- the CLI -----------------------------------------------------------------------------


def test_cli_import_agent_os_writes_the_yaml(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "import", "agent-os", str(ENTERPRISE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == to_yaml(convert("agent-os", ENTERPRISE))
    assert proc.stdout.startswith("# Imported by `counterpoint import agent-os`")
    # the subagent kind is another's work: validate the rest with noop agents in its place
    data: dict[str, Any] = yaml.safe_load(proc.stdout)
    assert data["agents"]["policy-guardian"] == {"kind": "subagent", "name": "policy-guardian"}
    data["agents"] = dict.fromkeys(data["agents"], NOOP)
    out = tmp_path / "w.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    checked = subprocess.run(
        [sys.executable, "-m", "counterpoint", "validate", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif("subagent" not in known_kinds(), reason="no subagent agent kind yet")
def test_the_default_output_validates_beside_the_subagent_files(tmp_path: Path) -> None:
    agents = tmp_path / ".claude" / "agents"
    agents.mkdir(parents=True)
    data = convert("agent-os", FEATURE)
    for name in data["agents"]:
        (agents / f"{name}.md").write_text(
            f"---\nname: {name}\ndescription: The {name} agent.\n---\nYou are {name}.\n"
        )
    out = tmp_path / "workflow.yaml"
    out.write_text(to_yaml(data))
    wf = cp.load(out)
    assert {a.kind for a in wf.agents.values()} == {"subagent"}
    assert wf.agents["policy-guardian"].options["name"] == "policy-guardian"


def test_cli_import_of_a_bad_template_exits_2_with_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("phases:\n  - name: a\n    agents: []\n")
    proc = subprocess.run(
        [sys.executable, "-m", "counterpoint", "import", "agent-os", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        f"{path}:2:5: phase 'a' has no agents: give `agents` or `parallel_streams`"
    )


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "1:1: an Agent OS template must be a mapping with `phases`"),
        ("", "1:1: the template is empty: it needs phases"),
        (
            "name: x\n",
            "1:1: no phases: give `phases` (a list or a mapping of phases) or `phase_examples`",
        ),
        ("phases: []\n", "1:9: no phases: the template lists none"),
        (
            "phases:\n  - {name: a, agents: [x]}\n  - {name: b, agents: [y], dependencies: [aa]}\n",
            "3:43: phase 'b' depends on 'aa', which is not a phase (did you mean 'a'?)",
        ),
        (
            "phases:\n"
            "  a: {agents: [x], dependencies: [c]}\n"
            "  b: {agents: [y], dependencies: [a]}\n"
            "  c: {agents: [z], dependencies: [b]}\n",
            "3:35: a dependency cycle: a -> c -> b -> a (each depends on the next)",
        ),
        (
            "phases:\n  a: {agents: [x], dependencies: a}\n",
            "2:34: a dependency cycle: a -> a (each depends on the next)",
        ),
        (
            "phases:\n  a:\n    purpose: nothing to do\n",
            "3:5: phase 'a' has no agents: give `agents` or `parallel_streams`",
        ),
        (
            "phases:\n  - {name: a, agents: [x], inputs: [request]}\n",
            "2:37: phase 'a' reads 'request', which is neither a workflow input nor an output "
            "of a phase",
        ),
        (
            "phases:\n"
            "  a: {agents: [x], outputs: [spec]}\n"
            "  b: {agents: [y], dependencies: [], inputs: [spec]}\n",
            "3:47: phase 'b' reads 'spec', which phase 'a' produces, but it does not come "
            "after 'a' (add it to its dependencies)",
        ),
        (
            "phases:\n  a: {agents: [x]}\n  a: {agents: [y]}\n",
            "3:3: duplicate key 'a' (first given on line 2)",
        ),
        (
            "phases:\n  - {name: a, agents: [x]}\n  - {name: a, agents: [y]}\n",
            "3:5: two phases are called 'a'",
        ),
        ("phase:\n  a: {agents: [x]}\n", "1:1: unknown key 'phase' (did you mean 'phases'?)"),
        (
            "phases:\n  a: {agents: [x], dependecies: []}\n",
            "2:20: phase 'a': unknown key 'dependecies' (did you mean 'dependencies'?)",
        ),
        (
            "phases:\n  a: {agents: [x], parallel: false, parallel_streams: {s: [y]}}\n",
            "2:30: phase 'a': streams run in parallel; remove `parallel: false`",
        ),
        (
            "phases:\n  a: {parallel_streams: {s: [y]}, sync_points: {m: {after: {t: y}}}}\n",
            "2:61: sync point 'm': no stream 't'",
        ),
        (
            "phases:\n  a: {agents: [x, y], sync_points: {m: {after: {s: x}}}}\n",
            "2:36: phase 'a': sync points need parallel streams",
        ),
        (
            "phases:\n"
            "  a:\n"
            "    parallel_streams: {s: [x], t: [y]}\n"
            "    sync_points: {m: {streams: [s], after: {s: x, t: y}}}\n",
            "4:51: sync point 'm': 't' is not in its streams",
        ),
        (
            "phases: [{agents: [x]\n",
            "1:10: YAML syntax error: the '{' here has no matching '}' "
            "(expected ',' or '}' at line 2, column 1)",
        ),
        (
            "phase_examples: {one: {a: [x]}, two: {b: [y]}}\n",
            "1:17: phase_examples holds 2 workflows (one, two); a template to import holds one",
        ),
    ],
)
def test_bad_templates_say_file_line_column_and_what(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ImportFormatError) as caught:
        convert("agent-os", path)
    assert str(caught.value) == f"{path}:{message}"


def test_a_missing_template() -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        convert("agent-os", DATA / "nope.yaml")
