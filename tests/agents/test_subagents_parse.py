"""Claude Code subagent files parsed: the front matter's variants, and broken files whose
messages say FILE:LINE:COL."""

from __future__ import annotations

from pathlib import Path

import pytest
from subagentkit import md

import counterpoint as cp
from counterpoint.agents.subagents import SubagentInvalid, load_subagent, parse_subagent

FILES = Path(__file__).parent / "subagent_files"
INVALID = sorted((FILES / "invalid").glob("*.md"))

pytestmark = pytest.mark.usefixtures("home")


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
    assert parse_subagent(md(), "there.md").path == Path("there.md")
