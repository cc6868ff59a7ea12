"""The corpus of workflow files: every broken one gives exactly its expected messages, every
valid one validates and runs.

``invalid/NN-name.yaml`` holds a small workflow with one mistake (a few hold several, to check
that all of them are reported at once); ``invalid/NN-name.expected`` holds the lines
``counterpoint validate`` must print on stderr, with the file's path written as ``{file}``.
The files listed in ``KNOWN_BUGS`` hold the message the validator *should* give and does not
yet; they are strict xfails, so fixing one makes its test pass and asks for its removal here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import counterpoint
from counterpoint.cli import app

HERE = Path(__file__).resolve().parent
INVALID = sorted((HERE / "invalid").glob("*.yaml"))
VALID = sorted((HERE / "valid").glob("*.yaml"))

# File stem -> what is wrong with the message printed today.
KNOWN_BUGS: dict[str, str] = {}

# Outputs a few valid workflows must produce (step id -> output).
EXPECTED_OUTPUTS: dict[str, dict[str, object]] = {
    "chain-with-references": {"write": {"title": "Notes on scheduling", "first": "a", "depth": 2}},
    "fan-out-fan-in": {"join": {"parts": [1, 2, 3, 4]}},
    "typed-inputs": {
        "configure": {
            "repo": ".",
            "retries": 3,
            "ratio": 0.5,
            "dry_run": False,
            "level": 2,
            "first_path": "src",
            "note": None,
            "summary": '3 tries on ["src", "tests"]',
            "literal": "${{ not a reference }}",
        }
    },
    "yaml-core-schema": {
        "trigger": {"on": "push", "answer": "yes", "clock": "1:30", "no": "no"},
        "done": "1:30",
    },
    "diamond-transitive": {"sink": {"items": [3, 1, 2], "owner": "team", "left": None}},
}


def _cases(paths: list[Path], known_bugs: dict[str, str]) -> list[object]:
    return [
        pytest.param(
            p,
            id=p.stem,
            marks=[pytest.mark.xfail(reason=known_bugs[p.stem], strict=True)]
            if p.stem in known_bugs
            else [],
        )
        for p in paths
    ]


def expected_lines(path: Path, shown_as: str) -> list[str]:
    text = path.with_suffix(".expected").read_text(encoding="utf-8")
    return [line.replace("{file}", shown_as) for line in text.splitlines() if line.strip()]


def test_the_corpus_is_complete() -> None:
    assert len(INVALID) >= 30
    assert 5 <= len(VALID) <= 8
    for path in INVALID:
        assert path.with_suffix(".expected").is_file(), f"{path.name} has no .expected"
        assert expected_lines(path, "x"), f"{path.stem}.expected is empty"
    orphans = {p.stem for p in (HERE / "invalid").glob("*.expected")} - {p.stem for p in INVALID}
    assert not orphans, f".expected files without a .yaml: {sorted(orphans)}"
    assert set(KNOWN_BUGS) <= {p.stem for p in INVALID}
    assert set(EXPECTED_OUTPUTS) <= {p.stem for p in VALID}


@pytest.mark.parametrize("path", _cases(INVALID, KNOWN_BUGS))
def test_load_raises_the_expected_problems(path: Path) -> None:
    with pytest.raises(counterpoint.WorkflowInvalid) as info:
        counterpoint.load(path)
    assert [str(p) for p in info.value.problems] == expected_lines(path, str(path))


@pytest.mark.parametrize("path", _cases(INVALID, KNOWN_BUGS))
def test_validate_prints_the_expected_messages(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert "Traceback" not in result.stdout + result.stderr
    assert isinstance(result.exception, SystemExit | None)
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected_lines(path, str(path))
    assert result.exit_code == 2


@pytest.mark.parametrize("path", _cases(VALID, {}))
def test_valid_workflow_validates(path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{path}: ok (")


@pytest.mark.parametrize("path", _cases(VALID, {}))
def test_valid_workflow_runs(path: Path) -> None:
    result = counterpoint.run_sync(path)
    failed = {k: s.error for k, s in result.steps.items() if s.error}
    assert result.status is counterpoint.RunStatus.SUCCEEDED, failed
    assert all(s.status is counterpoint.StepState.SUCCEEDED for s in result.steps.values())
    for step_id, output in EXPECTED_OUTPUTS.get(path.stem, {}).items():
        assert result.outputs[step_id] == output


def test_the_real_command_prints_messages_and_exit_codes() -> None:
    """One real process, with a path relative to the working directory as users type it."""
    broken = HERE / "invalid" / "17-unknown-dependency.yaml"
    good = HERE / "valid" / "chain-with-references.yaml"
    for path, code in [(broken, 2), (good, 0)]:
        shown = str(path.relative_to(HERE))
        proc = subprocess.run(
            [sys.executable, "-m", "counterpoint", "validate", shown],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in proc.stderr
        assert proc.returncode == code, proc.stderr
        if code:
            assert proc.stderr.splitlines() == expected_lines(path, shown)
            assert proc.stdout == ""
        else:
            assert proc.stdout.startswith(f"{shown}: ok (")
