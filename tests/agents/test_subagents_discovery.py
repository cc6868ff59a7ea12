"""Finding subagent files: the project's and the home folder's .claude/agents, which hides
which, where the search up the parents stops, duplicate names, broken files, and an agent's
own folder searched first (the ``folder`` option)."""

from __future__ import annotations

from pathlib import Path

import pytest
from subagentkit import md, put, put_in

from counterpoint.agents.subagents import (
    SubagentInvalid,
    find_subagent,
    find_subagents,
    subagent_folders,
)
from counterpoint.errors import AgentConfigError

pytestmark = pytest.mark.usefixtures("home")


def test_project_agents_hide_the_same_name_in_home(project: Path, home: Path) -> None:
    put(project, "reviewer.md", md("reviewer", "project reviewer"))
    put(project, "only-project.md", md("only-project"))
    put(home, "reviewer.md", md("reviewer", "home reviewer"))
    put(home, "writer.md", md("writer", "home writer"))
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
    put(home, "writer.md", md("writer"))
    assert list(find_subagents(project)) == ["writer"]
    assert subagent_folders(project) == [
        project / ".claude" / "agents",
        home.resolve() / ".claude" / "agents",
    ]


def test_the_search_up_the_parents_stops_at_the_first_git_folder(
    tmp_path: Path, home: Path
) -> None:
    put(tmp_path, "outer.md", md("outer"))  # above the repository: not part of the project
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    nested = repo / "a" / "b"
    nested.mkdir(parents=True)
    assert find_subagents(nested, home) == {}
    assert subagent_folders(nested, home)[0] == repo / ".claude" / "agents"
    put(repo, "inner.md", md("inner"))
    assert list(find_subagents(nested, home)) == ["inner"]
    with pytest.raises(AgentConfigError, match=r"no subagent 'outer'; found: inner \(looked in "):
        find_subagent("outer", nested, home)


def test_the_search_stops_at_the_first_claude_folder(tmp_path: Path, home: Path) -> None:
    (tmp_path / ".git").mkdir()
    put(tmp_path, "top.md", md("top"))
    sub = tmp_path / "sub"
    put(sub, "low.md", md("low"))  # sub/.claude makes sub the project
    assert list(find_subagents(sub / ".", home)) == ["low"]
    assert list(find_subagents(tmp_path, home)) == ["top"]


def test_a_git_file_marks_a_project_too(tmp_path: Path, home: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: ../main/.git/worktrees/x\n")  # a worktree
    put(tmp_path, "a.md", md("a"))
    assert list(find_subagents(tmp_path / "", home)) == ["a"]


def test_without_a_project_only_home_is_searched(tmp_path: Path, home: Path) -> None:
    if any((p / ".git").exists() or (p / ".claude").is_dir() for p in tmp_path.parents):
        pytest.skip("a folder above the test's temporary folder is a project")
    put(home, "writer.md", md("writer"))
    assert subagent_folders(tmp_path, home) == [home.resolve() / ".claude" / "agents"]
    assert list(find_subagents(tmp_path, home)) == ["writer"]


def test_a_project_that_is_the_home_folder_is_searched_once(home: Path) -> None:
    put(home, "writer.md", md("writer"))
    work = home / "notes"
    work.mkdir()
    assert subagent_folders(work, home) == [home.resolve() / ".claude" / "agents"]
    assert list(find_subagents(work, home)) == ["writer"]


def test_only_md_files_directly_in_the_folder_count(project: Path, home: Path) -> None:
    put(project, "a.md", md("a"))
    put(project, "notes.txt", md("txt"))
    put(project, "old/b.md".replace("/", "_"), md("b"))
    (project / ".claude" / "agents" / "archive").mkdir()
    (project / ".claude" / "agents" / "archive" / "c.md").write_text(md("c"))
    (project / ".claude" / "agents" / "folder.md").mkdir()
    assert sorted(find_subagents(project, home)) == ["a", "b"]


def test_two_files_with_one_name_in_a_folder_are_an_error_naming_both(
    project: Path, home: Path
) -> None:
    first = put(project, "reviewer.md", md("reviewer"))
    second = put(project, "reviewer-v2.md", md("reviewer", "newer"))
    put(project, "writer.md", md("writer"))
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
    put(project, "r.md", md("reviewer", "mine"))
    put(home, "r.md", md("reviewer", "theirs"))
    assert find_subagents(project, home)["reviewer"].description == "mine"


def test_a_broken_file_fails_the_whole_search_but_not_another_name(
    project: Path, home: Path
) -> None:
    broken = put(home, "critic.md", "---\nname: critic\ndescription: x: y\n---\nbody\n")
    put(home, "writer.md", md("writer"))
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
    broken = put(project, "rev.md", "---\nname: reviewer\ndescription: mine\n---\n\n")
    put(home, "reviewer.md", md("reviewer", "theirs"))
    with pytest.raises(AgentConfigError) as info:
        find_subagent("reviewer", project, home)
    assert str(info.value) == (
        "subagent 'reviewer' cannot be read:\n"
        f"{broken}:5:1: the system prompt is empty: write it after the closing '---'"
    )


def test_a_name_not_found_lists_what_was_found(project: Path, home: Path) -> None:
    put(project, "reviewer.md", md("code-reviewer"))
    put(home, "writer.md", md("writer"))
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


def test_the_own_folder_is_searched_first(project: Path, home: Path) -> None:
    own = put_in(project / "agents", "r.md", md("reviewer", "own reviewer")).parent
    put_in(project / "agents", "w.md", md("writer", "own writer"))
    put(project, "r.md", md("reviewer", "project reviewer"))
    put(project, "c.md", md("critic", "project critic"))
    put(home, "r.md", md("reviewer", "home reviewer"))
    put(home, "p.md", md("planner", "home planner"))
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
    own = put_in(tmp_path / "shared" / "agents", "r.md", md("reviewer", "shared")).parent
    work = tmp_path / "work"
    work.mkdir()
    assert find_subagent("reviewer", work, home, str(own)).description == "shared"
    assert find_subagent("reviewer", work, home, own).path == own / "r.md"
    assert subagent_folders(work, home, own)[0] == own


def test_an_own_folder_that_is_a_searched_folder_is_listed_once(project: Path, home: Path) -> None:
    put(project, "r.md", md("reviewer"))
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
    put(project, "r.md", md("reviewer"))  # found elsewhere: still an error
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
    put_in(project / "agents", "w.md", md("writer"))
    with pytest.raises(AgentConfigError) as info:
        find_subagent("writr", project, home, "agents")
    assert str(info.value) == (
        "no subagent 'writr' (did you mean 'writer'?); found: writer (looked in "
        f"{project / 'agents'}, {project / '.claude' / 'agents'} and "
        f"{home.resolve() / '.claude' / 'agents'})"
    )


def test_the_own_folder_s_rules_are_a_folder_s_rules(project: Path, home: Path) -> None:
    own = project / "agents"
    first = put_in(own, "a.md", md("reviewer"))
    second = put_in(own, "b.md", md("reviewer", "newer"))
    put(project, "r.md", md("reviewer", "project"))
    with pytest.raises(AgentConfigError, match=r"two subagents are called 'reviewer'") as info:
        find_subagent("reviewer", project, home, "agents")
    assert str(first) in str(info.value) and str(second) in str(info.value)
    second.unlink()
    first.write_text("---\nname: reviewer\ndescription: mine\n---\n\n", encoding="utf-8")
    with pytest.raises(AgentConfigError, match=r"subagent 'reviewer' cannot be read"):
        find_subagent("reviewer", project, home, "agents")  # never the project's instead
    put_in(own, "notes.txt", "not a subagent")
    (own / "archive").mkdir()
    put_in(own / "archive", "old.md", md("old"))
    first.unlink()
    assert sorted(find_subagents(project, home, "agents")) == ["reviewer"]  # the project's
