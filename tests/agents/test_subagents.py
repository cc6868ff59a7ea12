"""Claude Code subagent files (parsing, positioned mistakes, discovery) and ``kind: subagent``
(via a command end to end, via the llm kind as built; no network)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.agents.base import StepContext
from counterpoint.agents.llm import LlmOptions
from counterpoint.agents.registry import build_agent, known_kinds
from counterpoint.agents.subagents import (
    Subagent,
    SubagentAgent,
    SubagentInvalid,
    choose_model,
    find_subagent,
    find_subagents,
    load_subagent,
    parse_subagent,
    render_prompt,
    subagent_folders,
)
from counterpoint.errors import AgentConfigError
from counterpoint.model.workflow import AgentSpec
from counterpoint.scheduler.core import StepState

FILES = Path(__file__).parent / "subagent_files"
INVALID = sorted((FILES / "invalid").glob("*.md"))
PY = sys.executable

BODY = "You are a careful reviewer.\nName the worst problem first."


@pytest.fixture(autouse=True)
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own (never the developer's ~/.claude), no model chosen
    from the environment, no OpenAI endpoint."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(folder))
    for name in list(os.environ):
        if name == "COUNTERPOINT_MODEL" or name.upper().startswith("OPENAI_"):
            monkeypatch.delenv(name)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp_path as a project: it has a .git folder, and workflows are written in it."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def _md(
    name: str = "reviewer", description: str = "Reviews code.", body: str = BODY, **more: str
) -> str:
    front = [
        f"name: {name}",
        f"description: {description}",
        *(f"{k}: {v}" for k, v in more.items()),
    ]
    return "---\n" + "\n".join(front) + "\n---\n" + body + "\n"


def _put(folder: Path, file: str, text: str) -> Path:
    agents = folder / ".claude" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    path = agents / file
    path.write_text(text, encoding="utf-8")
    return path


def _workflow(folder: Path, text: str) -> Path:
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.load(path)
    return [str(p).replace(f"{path}:", "", 1) for p in info.value.problems]


# --- parsing -----------------------------------------------------------------------------


def test_a_full_file_gives_every_field() -> None:
    path = FILES / "valid" / "code-reviewer.md"
    sub = load_subagent(path)
    assert sub.name == "code-reviewer"
    assert sub.description.startswith("Reviews a change for bugs")
    assert sub.tools == ["Read", "Grep", "Glob", "Bash"]
    assert sub.model == "sonnet"
    assert sub.extra == {"color": "purple"}
    assert sub.path == path
    assert sub.system_prompt.startswith("You are a senior code reviewer.\n\nReview the change")
    assert "- then style.\n\n---\n\nAnswer with" in sub.system_prompt  # a '---' in the body
    assert sub.system_prompt.endswith("the most important first.")


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ("tools: Read, Grep ,  Bash", ["Read", "Grep", "Bash"]),
        ("tools: Read", ["Read"]),
        ("tools: Read, Grep,", ["Read", "Grep"]),
        ("tools: '  '", []),
        (
            "tools: [Read, ' Grep ', mcp__github__create_issue]",
            ["Read", "Grep", "mcp__github__create_issue"],
        ),
        ("tools:\n  - Read\n  - Edit", ["Read", "Edit"]),
        ("tools: []", []),
        ("tools:", None),
        ("color: red", None),
    ],
)
def test_tools_as_text_or_a_list(tools: str, expected: list[str] | None) -> None:
    text = f"---\nname: a\ndescription: b\n{tools}\n---\nbody\n"
    assert parse_subagent(text).tools == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        ("model: sonnet", "sonnet"),
        ("model: inherit", "inherit"),
        ("model: claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
        ("model: qwen2.5:7b", "qwen2.5:7b"),
        ("model: ' gpt-4o-mini '", "gpt-4o-mini"),
        ("model:", None),
        ("model: ''", None),
    ],
)
def test_model_missing_an_alias_or_a_full_id(line: str, expected: str | None) -> None:
    text = f"---\nname: a\ndescription: b\n{line}\n---\nbody\n"
    assert parse_subagent(text).model == expected


def test_unknown_keys_are_kept_read_as_yaml_1_2() -> None:
    text = (
        "---\nname: a\ndescription: b\ncolor: blue\npermissionMode: acceptEdits\n"
        "on: yes\nlimits: {turns: 3, ratio: 0.5}\ntags: [x, 1]\nwhen: 1:30\n---\nbody\n"
    )
    assert parse_subagent(text).extra == {
        "color": "blue",
        "permissionMode": "acceptEdits",
        "on": "yes",
        "limits": {"turns": 3, "ratio": 0.5},
        "tags": ["x", 1],
        "when": "1:30",
    }


def test_name_and_description_are_stripped_and_quoted_text_may_hold_colons() -> None:
    sub = parse_subagent('---\nname: " a "\ndescription: "Use when: the code changed"\n---\nb\n')
    assert (sub.name, sub.description) == ("a", "Use when: the code changed")


def test_a_folded_multi_line_description() -> None:
    text = "---\nname: a\ndescription: >\n  Reviews code.\n  Use it often.\n---\nbody\n"
    assert parse_subagent(text).description == "Reviews code. Use it often."


def test_crlf_line_endings_and_a_byte_order_mark() -> None:
    text = (
        "\ufeff---\r\nname: a\r\ndescription: b\r\ntools: Read, Bash\r\n---\r\n"
        "\r\nline 1\r\n\r\nline 2\r\n"
    )
    sub = parse_subagent(text)
    assert (sub.name, sub.description, sub.tools) == ("a", "b", ["Read", "Bash"])
    assert sub.system_prompt == "line 1\n\nline 2"


def test_crlf_file_reports_the_same_positions(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes(b"---\r\nname: a\r\ntools: {x: 1}\r\n---\r\nbody\r\n")
    with pytest.raises(SubagentInvalid) as info:
        load_subagent(path)
    assert str(info.value).splitlines() == [
        f"{path}:2:1: missing required key 'description'",
        f"{path}:3:8: tools: expected tool names separated by commas (Read, Grep, Bash) or a "
        "list of them, got a mapping",
    ]


def test_the_first_closing_line_ends_the_front_matter_the_rest_is_the_body() -> None:
    text = "---\nname: a\ndescription: b\n---\n---\nstill body\n---  \n\nend\n"
    assert parse_subagent(text).system_prompt == "---\nstill body\n---  \n\nend"


def test_the_front_matter_delimiters_may_have_trailing_spaces() -> None:
    assert parse_subagent("---  \nname: a\ndescription: b\n--- \nbody").system_prompt == "body"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_a_broken_file_says_exactly_what_and_where(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text(encoding="utf-8")
    with pytest.raises(SubagentInvalid) as info:
        load_subagent(path)
    assert str(info.value) + "\n" == expected.replace("{file}", str(path))
    assert all(p.line is not None for p in info.value.problems)  # FILE:LINE:COL each time


def test_a_broken_file_is_a_workflow_invalid_for_the_cli() -> None:
    with pytest.raises(cp.WorkflowInvalid):
        parse_subagent("no front matter", "x.md")


def test_a_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(SubagentInvalid) as info:
        load_subagent(tmp_path / "nope.md")
    assert str(info.value) == f"{tmp_path / 'nope.md'}: no such file"


def test_parse_names_the_file_it_is_given() -> None:
    with pytest.raises(SubagentInvalid) as info:
        parse_subagent("---\nname: a\n", "here.md")
    assert str(info.value).startswith("here.md:1:1: unterminated front matter")
    assert parse_subagent(_md(), "there.md").path == Path("there.md")


# --- discovery ---------------------------------------------------------------------------


def test_project_agents_hide_the_same_name_in_home(project: Path, home: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", "project reviewer"))
    _put(project, "only-project.md", _md("only-project"))
    _put(home, "reviewer.md", _md("reviewer", "home reviewer"))
    _put(home, "writer.md", _md("writer", "home writer"))
    workflow_dir = project / "flows" / "nightly"
    workflow_dir.mkdir(parents=True)
    found = find_subagents(workflow_dir, home)
    assert sorted(found) == ["only-project", "reviewer", "writer"]
    assert found["reviewer"].description == "project reviewer"
    assert found["reviewer"].path == project / ".claude" / "agents" / "reviewer.md"
    assert found["writer"].path == home / ".claude" / "agents" / "writer.md"
    assert find_subagent("reviewer", workflow_dir, home).description == "project reviewer"
    assert find_subagent("writer", workflow_dir, home).description == "home writer"


def test_home_defaults_to_the_home_folder(project: Path, home: Path) -> None:
    _put(home, "writer.md", _md("writer"))
    assert list(find_subagents(project)) == ["writer"]
    assert subagent_folders(project) == [
        project / ".claude" / "agents",
        home.resolve() / ".claude" / "agents",
    ]


def test_the_search_up_the_parents_stops_at_the_first_git_folder(
    tmp_path: Path, home: Path
) -> None:
    _put(tmp_path, "outer.md", _md("outer"))  # above the repository: not part of the project
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    nested = repo / "a" / "b"
    nested.mkdir(parents=True)
    assert find_subagents(nested, home) == {}
    assert subagent_folders(nested, home)[0] == repo / ".claude" / "agents"
    _put(repo, "inner.md", _md("inner"))
    assert list(find_subagents(nested, home)) == ["inner"]
    with pytest.raises(AgentConfigError, match=r"no subagent 'outer'; found: inner \(looked in "):
        find_subagent("outer", nested, home)


def test_the_search_stops_at_the_first_claude_folder(tmp_path: Path, home: Path) -> None:
    (tmp_path / ".git").mkdir()
    _put(tmp_path, "top.md", _md("top"))
    sub = tmp_path / "sub"
    _put(sub, "low.md", _md("low"))  # sub/.claude makes sub the project
    assert list(find_subagents(sub / ".", home)) == ["low"]
    assert list(find_subagents(tmp_path, home)) == ["top"]


def test_a_git_file_marks_a_project_too(tmp_path: Path, home: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: ../main/.git/worktrees/x\n")  # a worktree
    _put(tmp_path, "a.md", _md("a"))
    assert list(find_subagents(tmp_path / "", home)) == ["a"]


def test_without_a_project_only_home_is_searched(tmp_path: Path, home: Path) -> None:
    if any((p / ".git").exists() or (p / ".claude").is_dir() for p in tmp_path.parents):
        pytest.skip("a folder above the test's temporary folder is a project")
    _put(home, "writer.md", _md("writer"))
    assert subagent_folders(tmp_path, home) == [home.resolve() / ".claude" / "agents"]
    assert list(find_subagents(tmp_path, home)) == ["writer"]


def test_a_project_that_is_the_home_folder_is_searched_once(home: Path) -> None:
    _put(home, "writer.md", _md("writer"))
    work = home / "notes"
    work.mkdir()
    assert subagent_folders(work, home) == [home.resolve() / ".claude" / "agents"]
    assert list(find_subagents(work, home)) == ["writer"]


def test_only_md_files_directly_in_the_folder_count(project: Path, home: Path) -> None:
    _put(project, "a.md", _md("a"))
    _put(project, "notes.txt", _md("txt"))
    _put(project, "old/b.md".replace("/", "_"), _md("b"))
    (project / ".claude" / "agents" / "archive").mkdir()
    (project / ".claude" / "agents" / "archive" / "c.md").write_text(_md("c"))
    (project / ".claude" / "agents" / "folder.md").mkdir()
    assert sorted(find_subagents(project, home)) == ["a", "b"]


def test_two_files_with_one_name_in_a_folder_are_an_error_naming_both(
    project: Path, home: Path
) -> None:
    first = _put(project, "reviewer.md", _md("reviewer"))
    second = _put(project, "reviewer-v2.md", _md("reviewer", "newer"))
    _put(project, "writer.md", _md("writer"))
    message = (
        f"two subagents are called 'reviewer': {second} and {first} (names must differ "
        "within a folder)"
    )
    with pytest.raises(SubagentInvalid) as info:
        find_subagents(project, home)
    assert [str(p) for p in info.value.problems] == [f"{first}: {message}"]
    with pytest.raises(AgentConfigError) as one:
        find_subagent("reviewer", project, home)
    assert str(one.value) == f"{first}: {message}"
    assert find_subagent("writer", project, home).name == "writer"  # the others still work


def test_the_same_name_in_project_and_home_is_no_duplicate(project: Path, home: Path) -> None:
    _put(project, "r.md", _md("reviewer", "mine"))
    _put(home, "r.md", _md("reviewer", "theirs"))
    assert find_subagents(project, home)["reviewer"].description == "mine"


def test_a_broken_file_fails_the_whole_search_but_not_another_name(
    project: Path, home: Path
) -> None:
    broken = _put(home, "critic.md", "---\nname: critic\ndescription: x: y\n---\nbody\n")
    _put(home, "writer.md", _md("writer"))
    problem = (
        f"{broken}:3:15: YAML syntax error: unexpected ':' (indent this key like the keys above "
        "it, or put text that contains ': ' in quotes)"
    )
    with pytest.raises(SubagentInvalid) as info:
        find_subagents(project, home)
    assert str(info.value) == problem
    assert find_subagent("writer", project, home).name == "writer"
    # The file cannot be read, so its file name claims the name.
    with pytest.raises(AgentConfigError) as one:
        find_subagent("critic", project, home)
    assert str(one.value) == f"subagent 'critic' cannot be read:\n{problem}"
    with pytest.raises(AgentConfigError) as other:
        find_subagent("nobody", project, home)
    assert str(other.value).endswith(f"; these files could not be read:\n{problem}")


def test_a_broken_project_file_never_falls_back_to_home(project: Path, home: Path) -> None:
    broken = _put(project, "rev.md", "---\nname: reviewer\ndescription: mine\n---\n\n")
    _put(home, "reviewer.md", _md("reviewer", "theirs"))
    with pytest.raises(AgentConfigError) as info:
        find_subagent("reviewer", project, home)
    assert str(info.value) == (
        "subagent 'reviewer' cannot be read:\n"
        f"{broken}:5:1: the system prompt is empty: write it after the closing '---'"
    )


def test_a_name_not_found_lists_what_was_found(project: Path, home: Path) -> None:
    _put(project, "reviewer.md", _md("code-reviewer"))
    _put(home, "writer.md", _md("writer"))
    with pytest.raises(AgentConfigError) as info:
        find_subagent("code-reviwer", project, home)
    assert str(info.value) == (
        "no subagent 'code-reviwer' (did you mean 'code-reviewer'?); found: code-reviewer, "
        f"writer (looked in {project / '.claude' / 'agents'} and "
        f"{home.resolve() / '.claude' / 'agents'})"
    )


def test_a_name_not_found_when_there_are_none(project: Path, home: Path) -> None:
    with pytest.raises(AgentConfigError) as info:
        find_subagent("reviewer", project, home)
    assert str(info.value) == (
        f"no subagent 'reviewer'; none found (looked in {project / '.claude' / 'agents'} and "
        f"{home.resolve() / '.claude' / 'agents'})"
    )


# --- an agent's own folder of subagent files ---------------------------------------------


def _put_in(folder: Path, file: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(text, encoding="utf-8")
    return path


def test_the_own_folder_is_searched_first(project: Path, home: Path) -> None:
    own = _put_in(project / "agents", "r.md", _md("reviewer", "own reviewer")).parent
    _put_in(project / "agents", "w.md", _md("writer", "own writer"))
    _put(project, "r.md", _md("reviewer", "project reviewer"))
    _put(project, "c.md", _md("critic", "project critic"))
    _put(home, "r.md", _md("reviewer", "home reviewer"))
    _put(home, "p.md", _md("planner", "home planner"))
    flows = project / "flows"
    flows.mkdir()
    assert subagent_folders(flows, home, "../agents") == [
        own,
        project / ".claude" / "agents",
        home.resolve() / ".claude" / "agents",
    ]
    found = find_subagents(flows, home, "../agents")
    assert {name: s.description for name, s in found.items()} == {
        "reviewer": "own reviewer",
        "writer": "own writer",
        "critic": "project critic",
        "planner": "home planner",
    }
    assert find_subagent("reviewer", flows, home, "../agents").path == own / "r.md"
    assert find_subagent("critic", flows, home, "../agents").description == "project critic"
    assert find_subagent("planner", flows, home, "../agents").description == "home planner"
    # without it, nothing changes
    assert find_subagent("reviewer", flows, home).description == "project reviewer"
    with pytest.raises(AgentConfigError, match="no subagent 'writer'"):
        find_subagent("writer", flows, home)


def test_an_absolute_own_folder_and_one_outside_any_project(tmp_path: Path, home: Path) -> None:
    own = _put_in(tmp_path / "shared" / "agents", "r.md", _md("reviewer", "shared")).parent
    work = tmp_path / "work"
    work.mkdir()
    assert find_subagent("reviewer", work, home, str(own)).description == "shared"
    assert find_subagent("reviewer", work, home, own).path == own / "r.md"
    assert subagent_folders(work, home, own)[0] == own


def test_an_own_folder_that_is_a_searched_folder_is_listed_once(project: Path, home: Path) -> None:
    _put(project, "r.md", _md("reviewer"))
    assert subagent_folders(project, home, ".claude/agents") == [
        project / ".claude" / "agents",
        home.resolve() / ".claude" / "agents",
    ]
    assert subagent_folders(project, home, home / ".claude" / "agents") == [
        home.resolve() / ".claude" / "agents",
        project / ".claude" / "agents",
    ]
    assert list(find_subagents(project, home, ".claude/agents")) == ["reviewer"]


@pytest.mark.parametrize("make", ["nothing", "file"])
def test_an_own_folder_that_is_not_a_folder_is_an_error_naming_it(
    project: Path, home: Path, make: str
) -> None:
    _put(project, "r.md", _md("reviewer"))  # found elsewhere: still an error
    if make == "file":
        (project / "agents").write_text("not a folder")
    what = "does not exist" if make == "nothing" else "is not a folder"
    relative = f"the subagent folder {project / 'agents'} {what} ('agents', read from {project})"
    for call in (
        lambda: find_subagent("reviewer", project, home, "agents"),
        lambda: find_subagents(project, home, "agents"),
    ):
        with pytest.raises(AgentConfigError) as info:
            call()
        assert str(info.value) == relative
    absolute = project / "agents"
    with pytest.raises(AgentConfigError) as info:
        find_subagent("reviewer", project, home, str(absolute))
    assert str(info.value) == f"the subagent folder {absolute} {what}"


def test_a_name_not_found_names_the_own_folder_too(project: Path, home: Path) -> None:
    _put_in(project / "agents", "w.md", _md("writer"))
    with pytest.raises(AgentConfigError) as info:
        find_subagent("writr", project, home, "agents")
    assert str(info.value) == (
        "no subagent 'writr' (did you mean 'writer'?); found: writer (looked in "
        f"{project / 'agents'}, {project / '.claude' / 'agents'} and "
        f"{home.resolve() / '.claude' / 'agents'})"
    )


def test_the_own_folder_s_rules_are_a_folder_s_rules(project: Path, home: Path) -> None:
    own = project / "agents"
    first = _put_in(own, "a.md", _md("reviewer"))
    second = _put_in(own, "b.md", _md("reviewer", "newer"))
    _put(project, "r.md", _md("reviewer", "project"))
    with pytest.raises(AgentConfigError, match=r"two subagents are called 'reviewer'") as info:
        find_subagent("reviewer", project, home, "agents")
    assert str(first) in str(info.value) and str(second) in str(info.value)
    second.unlink()
    first.write_text("---\nname: reviewer\ndescription: mine\n---\n\n", encoding="utf-8")
    with pytest.raises(AgentConfigError, match=r"subagent 'reviewer' cannot be read"):
        find_subagent("reviewer", project, home, "agents")  # never the project's instead
    _put_in(own, "notes.txt", "not a subagent")
    (own / "archive").mkdir()
    _put_in(own / "archive", "old.md", _md("old"))
    first.unlink()
    assert sorted(find_subagents(project, home, "agents")) == ["reviewer"]  # the project's


def test_a_workflow_runs_a_subagent_from_its_own_folder(project: Path) -> None:
    own = _put_in(project / "agents", "reviewer.md", _md("reviewer", "own", model="gpt-own"))
    _put(project, "reviewer.md", _md("reviewer", "project", body="Not this one."))
    flows = project / "flows"
    flows.mkdir()
    echo = _echo(project)
    wf_file = _workflow(
        flows,
        f"""
        name: review
        agents:
          rev: {{kind: subagent, name: reviewer, folder: ../agents, via: command,
                 command: ["{PY}", "{echo}"]}}
        steps:
          - {{id: review, agent: rev, input: the diff}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {"stdin": f"{BODY}\n\nthe diff", "argv": []}
    # through the llm kind: the file's body is the system prompt, its model the model
    spec = AgentSpec.model_validate(
        {"kind": "subagent", "name": "reviewer", "folder": str(own.parent)}
    )
    agent = build_agent("rev", spec, flows)
    assert isinstance(agent, SubagentAgent)
    assert agent.subagent.path == own
    assert agent.description == "own"
    options = _llm_options(agent)
    assert (options.system, options.model) == (BODY, "gpt-own")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "{kind: subagent, name: reviewer, folder: nope}",
            "4:41: agent 'rev' (subagent): folder: the subagent folder {project}/nope does not "
            "exist ('nope', read from {project})",
        ),
        (
            "{kind: subagent, name: reviwer, folder: nope}",  # the name is not checked too
            "4:40: agent 'rev' (subagent): folder: the subagent folder {project}/nope does not "
            "exist ('nope', read from {project})",
        ),
        (
            "{kind: subagent, name: reviewer, folder: ''}",
            "4:41: agent 'rev' (subagent): folder: string should have at least 1 character, got ''",
        ),
        (
            "{kind: subagent, name: writr, folder: agents}",
            "4:25: agent 'rev' (subagent): name: no subagent 'writr' (did you mean 'writer'?); "
            "found: reviewer, writer (looked in {project}/agents, {project}/.claude/agents and "
            "{home}/.claude/agents)",
        ),
    ],
)
def test_mistakes_with_the_own_folder_are_placed_in_the_workflow(
    project: Path, home: Path, agent: str, expected: str
) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    _put_in(project / "agents", "writer.md", _md("writer"))
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        f"name: review\nagents:\n  pass: {{kind: noop}}\n  rev: {agent}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    assert _problems(wf_file) == [expected.format(project=project, home=home.resolve())]


def test_the_own_folder_is_checked_again_when_the_agent_is_built(project: Path) -> None:
    own = _put_in(project / "agents", "reviewer.md", _md("reviewer", model="gpt-x")).parent
    wf_file = _workflow(
        project,
        """
        name: review
        agents:
          rev: {kind: subagent, name: reviewer, folder: agents, stand_in: "os:getcwd"}
        steps:
          - {id: review, agent: rev}
        """,
    )
    wf = cp.load(wf_file)  # valid now
    (own / "reviewer.md").unlink()
    own.rmdir()
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.run_sync(wf)
    message = str(info.value)
    assert message.startswith(f"{wf_file}: agent 'rev': ")
    assert f"the subagent folder {own} does not exist ('agents', read from {project})" in message


# --- kind: subagent via a command --------------------------------------------------------

ECHO = """\
import json, sys
print(json.dumps({"stdin": sys.stdin.read(), "argv": sys.argv[1:]}))
"""


def _echo(folder: Path) -> str:
    path = folder / "echo.py"
    path.write_text(ECHO, encoding="utf-8")
    return str(path)


def test_kind_subagent_is_known() -> None:
    assert "subagent" in known_kinds()


def test_via_command_the_prompt_goes_to_stdin_and_stdout_comes_back(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", tools="Read, Grep"))
    echo = _echo(project)
    wf_file = _workflow(
        project,
        f"""
        name: review
        agents:
          pass: {{kind: noop}}
          rev:
            kind: subagent
            name: reviewer
            via: command
            command: ["{PY}", "{echo}", --print]
        steps:
          - {{id: diff, agent: pass, input: "+ x = 1"}}
          - id: review
            agent: rev
            needs: diff
            input: "Review this diff:\\n${{{{ steps.diff.output }}}}"
        """,
    )
    wf = cp.load(wf_file)  # validates, the subagent found
    result = cp.run_sync(wf)
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {
        "stdin": f"{BODY}\n\nReview this diff:\n+ x = 1",
        "argv": ["--print"],
    }


def test_via_command_the_prompt_can_be_an_argument(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    echo = _echo(project)
    wf_file = _workflow(
        project,
        f"""
        name: review
        agents:
          rev:
            {{kind: subagent, name: reviewer, via: command,
             command: ["{PY}", "{echo}", -p, "{{prompt}}"]}}
        steps:
          - {{id: review, agent: rev, input: {{file: a.py, lines: [1, 2]}}}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == {
        "stdin": "",
        "argv": ["-p", f'{BODY}\n\n{{"file": "a.py", "lines": [1, 2]}}'],
    }


def _command_agent(project: Path, command: list[str], **options: object) -> SubagentAgent:
    spec = AgentSpec.model_validate(
        {"kind": "subagent", "name": "reviewer", "via": "command", "command": command, **options}
    )
    agent = build_agent("rev", spec, project)
    assert isinstance(agent, SubagentAgent)
    return agent


def _run_agent(agent: SubagentAgent, **ctx: object) -> object:
    import asyncio

    return asyncio.run(agent(StepContext(run_id="r", step_id="s", **ctx)))  # type: ignore[arg-type]


def test_via_command_instructions_json_input_and_no_input(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    agent = _command_agent(project, [PY, _echo(project)])
    out = _run_agent(agent, input={"n": 1}, upstream={"diff": "+x"}, instructions=["Be brief."])
    assert out == {"stdin": f'{BODY}\n\nBe brief.\n\n{{"n": 1}}', "argv": []}
    assert _run_agent(agent) == {"stdin": BODY, "argv": []}


def test_via_command_elements_are_used_as_written(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    agent = _command_agent(
        project, [PY, _echo(project), "${{ input }}", "$${{ x }}", "{prompt} ", "x{prompt}"]
    )
    assert _run_agent(agent, input="hi") == {
        "stdin": f"{BODY}\n\nhi",
        "argv": ["${{ input }}", "$${{ x }}", "{prompt} ", "x{prompt}"],
    }


def test_via_command_output_text_and_the_file_s_data(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", tools="Read, Grep", model="opus"))
    agent = _command_agent(project, [PY, "-c", "print(42)"], output="text")
    assert _run_agent(agent) == "42\n"
    assert agent.tools == ["Read", "Grep"]
    assert agent.description == "Reviews code."
    assert agent.subagent.model == "opus"
    assert agent.via == "command"


def test_via_command_a_failure_names_the_command(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    tool = project / "review-tool"
    tool.write_text(f"#!{PY}\nimport sys\nsys.stdin.read()\nsys.exit('no diff given')\n")
    tool.chmod(0o755)
    wf_file = _workflow(
        project,
        f"""
        name: review
        agents:
          rev: {{kind: subagent, name: reviewer, via: command, command: ["{tool}"]}}
        steps:
          - {{id: review, agent: rev, retries: {{max: 1, backoff: 0}}}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    rec = result.steps["review"]
    assert rec.status is StepState.FAILED
    assert rec.attempts == 2  # an ordinary failure is retried
    assert rec.error == f"{tool} exited with code 1: no diff given"


def test_via_command_a_command_that_does_not_exist(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    for command in (["no-such-command-cp7"], ["no-such-command-cp7", "{prompt}"]):
        wf_file = _workflow(
            project,
            f"""
            name: review
            agents:
              rev: {{kind: subagent, name: reviewer, via: command, command: {json.dumps(command)}}}
            steps:
              - {{id: review, agent: rev, retries: 2}}
            """,
        )
        rec = cp.run_sync(cp.load(wf_file)).steps["review"]
        assert rec.status is StepState.FAILED
        assert rec.attempts == 1  # not worth retrying
        assert rec.error is not None
        assert rec.error.startswith("cannot start 'no-such-command-cp7': "), rec.error


def test_via_command_a_long_prompt_on_stdin(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    count = [PY, "-c", "import sys; print(len(sys.stdin.read()))"]
    agent = _command_agent(project, count)
    text = "é" * 300_000  # more than a pipe holds
    assert _run_agent(agent, input=text) == len(BODY) + 2 + len(text)


# --- kind: subagent via the llm kind -----------------------------------------------------


def _llm_agent(project: Path, **options: object) -> SubagentAgent:
    spec = AgentSpec.model_validate({"kind": "subagent", "name": "reviewer", **options})
    agent = build_agent("rev", spec, project)
    assert isinstance(agent, SubagentAgent)
    return agent


def _llm_options(agent: SubagentAgent) -> LlmOptions:
    options = getattr(agent.inner, "options", None)
    assert isinstance(options, LlmOptions)
    return options


def test_via_llm_the_body_is_the_system_prompt(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", model="gpt-4o-mini", tools="Read"))
    agent = _llm_agent(project)
    options = _llm_options(agent)
    assert agent.via == "llm"
    assert (options.model, options.system, options.prompt) == ("gpt-4o-mini", BODY, None)
    assert agent.tools == ["Read"]
    ctx = StepContext(run_id="r", step_id="s", input="diff", instructions=["Be brief."])
    request = agent.inner.request(ctx)  # type: ignore[attr-defined]
    assert request["messages"] == [
        {"role": "system", "content": f"{BODY}\n\nBe brief."},
        {"role": "user", "content": "diff"},
    ]


@pytest.mark.parametrize(
    ("file_model", "option", "env", "expected"),
    [
        ("gpt-4o-mini", None, None, "gpt-4o-mini"),
        ("claude-sonnet-4-5", None, None, "claude-sonnet-4-5"),
        ("gpt-4o-mini", None, "llama3.1", "llama3.1"),
        ("gpt-4o-mini", "qwen2.5", "llama3.1", "llama3.1"),  # the environment wins
        ("gpt-4o-mini", "qwen2.5", None, "qwen2.5"),
        ("sonnet", None, "llama3.1", "llama3.1"),
        ("Opus", "qwen2.5", None, "qwen2.5"),
        (None, None, "llama3.1", "llama3.1"),
        ("haiku", None, "  ", None),
        ("inherit", None, None, None),
        (None, None, None, None),
    ],
)
def test_via_llm_the_environment_then_the_model_option_then_the_file(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_model: str | None,
    option: str | None,
    env: str | None,
    expected: str | None,
) -> None:
    more = {"model": file_model} if file_model else {}
    _put(project, "reviewer.md", _md("reviewer", **more))
    if env is not None:
        monkeypatch.setenv("COUNTERPOINT_MODEL", env)
    options = {"model": option} if option else {}
    if expected is not None:
        assert _llm_options(_llm_agent(project, **options)).model == expected
        return
    why = (
        f"its file says model {file_model!r}, a Claude Code alias an OpenAI-compatible "
        "endpoint does not know"
        if file_model
        else "its file names none"
    )
    with pytest.raises(AgentConfigError) as info:
        _llm_agent(project, **options)
    assert str(info.value) == (
        f"agent 'rev': no model for subagent 'reviewer' ({why}): set the agent's model option "
        "or $COUNTERPOINT_MODEL"
    )


def test_choose_model_reads_the_environment_it_is_given() -> None:
    sub = Subagent("a", "b", "c", Path("a.md"), model="sonnet")
    assert choose_model(None, sub, {"COUNTERPOINT_MODEL": "m"}) == "m"
    with pytest.raises(AgentConfigError):
        choose_model(None, sub, {})


def test_via_llm_options_are_passed_on_and_the_rest_keep_the_llm_defaults(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", model="gpt-x"))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    options = _llm_options(
        _llm_agent(
            project,
            base_url="http://127.0.0.1:9/v1",
            api_key_env="TEAM_KEY",
            temperature=0.2,
            max_tokens=300,
            timeout="90s",
            retries=0,
            charge=["llm"],
            output_schema=schema,
        )
    )
    assert options.base_url == "http://127.0.0.1:9/v1"
    assert (options.api_key_env, options.temperature, options.max_tokens) == ("TEAM_KEY", 0.2, 300)
    assert (options.timeout, options.retries, options.charge) == (90.0, 0, ["llm"])
    assert options.output_schema == schema
    defaults = LlmOptions(model="x")
    plain = _llm_options(_llm_agent(project))
    for key in (
        "base_url",
        "base_url_env",
        "api_key_env",
        "temperature",
        "max_tokens",
        "timeout",
        "retries",
        "charge",
        "stand_in",
        "output_schema",
    ):
        assert getattr(plain, key) == getattr(defaults, key), key


def test_description_comes_from_the_file_unless_the_workflow_gives_one(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", model="gpt-x"))
    assert _llm_agent(project).description == "Reviews code."
    assert _llm_agent(project, description="Our reviewer.").description == "Our reviewer."


def test_via_llm_runs_offline_with_a_stand_in(
    project: Path, pymodule: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = pymodule(
        """
        def offline(ctx):
            return f"offline answer to {ctx.input}"
        """
    )
    _put(project, "reviewer.md", _md("reviewer", model="sonnet"))
    monkeypatch.setenv("COUNTERPOINT_MODEL", "llama3.1")
    wf_file = _workflow(
        project,
        f"""
        name: review
        description: a subagent through the llm kind
        agents:
          rev: {{kind: subagent, name: reviewer, stand_in: "{module}:offline"}}
        steps:
          - {{id: review, agent: rev, input: the diff}}
        """,
    )
    result = cp.run_sync(cp.load(wf_file))
    assert result.status is cp.RunStatus.SUCCEEDED, result.steps["review"].error
    assert result.outputs["review"] == "offline answer to the diff"
    stand_ins = [e.data for e in result.events if e.name == "stand_in"]
    assert stand_ins == [{"model": "llama3.1", "reason": "no endpoint configured"}]


def test_a_run_without_a_model_is_refused_before_it_starts(project: Path) -> None:
    _put(project, "reviewer.md", _md("reviewer", model="sonnet"))
    wf_file = _workflow(
        project,
        """
        name: review
        agents:
          rev: {kind: subagent, name: reviewer}
        steps:
          - {id: review, agent: rev}
        """,
    )
    wf = cp.load(wf_file)  # valid: the model is chosen when the agent is built
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.run_sync(wf)
    assert str(info.value) == (
        f"{wf_file}: agent 'rev': no model for subagent 'reviewer' (its file says model "
        "'sonnet', a Claude Code alias an OpenAI-compatible endpoint does not know): set the "
        "agent's model option or $COUNTERPOINT_MODEL"
    )


# --- validation of kind: subagent --------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "{kind: subagent, name: reviwer}",
            "4:25: agent 'rev' (subagent): name: no subagent 'reviwer' (did you mean "
            "'reviewer'?); found: reviewer (looked in {agents} and {home})",
        ),
        ("{kind: subagent}", "4:8: agent 'rev' (subagent): missing required key 'name'"),
        (
            "{kind: subagent, name: reviewer, via: shell}",
            "4:41: agent 'rev' (subagent): via: expected 'llm' or 'command', got 'shell'",
        ),
        (
            "{kind: subagent, name: reviewer, via: command}",
            "4:8: agent 'rev' (subagent): via: command needs command, the program and its "
            "arguments (e.g. [claude, -p])",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: []}",
            "4:55: agent 'rev' (subagent): command: list should have at least 1 item after "
            "validation, not 0, got a list",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: [claude], temperature: 0}",
            "4:8: agent 'rev' (subagent): temperature: for via: llm only",
        ),
        (
            "{kind: subagent, name: reviewer, via: command, command: [claude], model: opus}",
            "4:8: agent 'rev' (subagent): model is for via: llm; with via: command, give the "
            "model in the command (e.g. [claude, -p, --model, opus])",
        ),
        (
            "{kind: subagent, name: reviewer, command: [claude], cwd: x}",
            "4:8: agent 'rev' (subagent): command, cwd: for via: command only",
        ),
        (
            "{kind: subagent, name: reviewer, api_key: sk-123}",
            "4:8: agent 'rev' (subagent): api_key: a key is not written in the workflow (it "
            "would be kept in the journal): put it in an environment variable and name it with "
            "api_key_env (default OPENAI_API_KEY)",
        ),
        (
            "{kind: subagent, name: reviewer, output_schema: {type: 12}}",
            "4:41: agent 'rev' (subagent): output_schema: output_schema is not a JSON Schema: "
            "12 is not valid under any of the given schemas",
        ),
        (
            "{kind: subagent, name: reviewer, temprature: 0.5}",
            "4:41: agent 'rev' (subagent): unknown key 'temprature' (did you mean 'temperature'?)",
        ),
    ],
)
def test_mistakes_in_the_agent_are_placed_in_the_workflow(
    project: Path, home: Path, agent: str, expected: str
) -> None:
    _put(project, "reviewer.md", _md("reviewer"))
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        f"name: review\nagents:\n  pass: {{kind: noop}}\n  rev: {agent}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    expected = expected.format(
        agents=project / ".claude" / "agents", home=home.resolve() / ".claude" / "agents"
    )
    assert _problems(wf_file) == [expected]


def test_a_broken_subagent_file_is_reported_from_the_workflow(project: Path) -> None:
    broken = _put(project, "reviewer.md", "---\nname: reviewer\ndescription: [a\n---\nbody\n")
    wf_file = project / "wf.yaml"
    wf_file.write_text(
        "name: review\nagents:\n  rev: {kind: subagent, name: reviewer}\n"
        "steps:\n  - {id: s, agent: rev}\n",
        encoding="utf-8",
    )
    assert _problems(wf_file) == [
        "3:25: agent 'rev' (subagent): name: subagent 'reviewer' cannot be read:\n"
        f"{broken}:3:14: YAML syntax error: the '[' here has no matching ']' (expected ',' or "
        "']' at line 4, column 1)"
    ]


def test_render_prompt_without_input_is_the_system_prompt() -> None:
    ctx = StepContext(run_id="r", step_id="s", input=None)
    assert render_prompt("sys", ctx) == "sys"
    assert render_prompt("sys", StepContext(run_id="r", step_id="s", input=0)) == "sys\n\n0"


def test_render_prompt_says_why_earlier_answers_were_not_accepted() -> None:
    from counterpoint.patterns.runtime import Handoff

    handoff = Handoff("seq", 1, "a", "out", {"a": "out"}, {}, {}, ("too short", "no title"))
    ctx = StepContext(run_id="r", step_id="s", input="write it", handoff=handoff)
    assert render_prompt("sys", ctx) == (
        "sys\n\nwrite it\n\nEarlier answers were not accepted:\n- too short\n- no title\n"
        "Answer again, fixing this."
    )
