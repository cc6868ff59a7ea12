"""Secrets never reach the journal, the CLI's output or agents' logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import counterpoint as cp
from counterpoint.policy import REDACTED, Redactor

SECRET = "sk-live-4f9c2e7d1a"  # the value of an environment variable named like a key
CARD = "4111-1111-1111-1111"  # text a workflow pattern says is secret


def test_values_of_secret_variables_and_patterns_are_replaced() -> None:
    env = {"MY_API_KEY": SECRET, "GH_TOKEN": "ghp_abcdefgh", "HOME": "/home/someone"}
    r = Redactor.from_environment([r"\d{4}-\d{4}-\d{4}-\d{4}"], env)
    text = f"key {SECRET}, token ghp_abcdefgh, card {CARD}, home /home/someone"
    assert r.text(text) == (
        f"key {REDACTED}, token {REDACTED}, card {REDACTED}, home /home/someone"
    )
    assert r.value({"k": [SECRET, 3, {"n": f"x{SECRET}x"}]}) == {
        "k": [REDACTED, 3, {"n": f"x{REDACTED}x"}]
    }


def test_short_values_and_other_names_are_left_alone() -> None:
    r = Redactor.from_environment(env={"USE_KEYRING": "1", "PASSWORD_HINT": "cat", "PATH": "/bin"})
    assert not r  # nothing long enough to be a secret
    assert r.text("1 cat /bin") == "1 cat /bin"


def test_a_secret_is_found_inside_json_text_too() -> None:
    value = 'quote"d\\secret'
    r = Redactor([value])
    assert r.text(json.dumps({"v": value})) == json.dumps({"v": REDACTED})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("(", "is not a regular expression"), ("a*", "matches empty text")],
)
def test_a_bad_pattern_is_a_clear_error(pattern: str, message: str) -> None:
    text = f"name: x\npolicy: {{redact: ['{pattern}']}}\nagents: {{n: {{kind: noop}}}}\n"
    with pytest.raises(cp.WorkflowInvalid) as info:
        cp.loads(text + "steps: [{id: a, agent: n}]\n")
    assert message in str(info.value)


async def _leaky(ctx: cp.StepContext) -> object:
    ctx.logger.warning("calling with %s", os.environ["REDACT_TEST_API_KEY"])
    ctx.emit("progress", {"key": os.environ["REDACT_TEST_API_KEY"], "card": CARD})
    raise cp.StepFailed(f"the service refused key {os.environ['REDACT_TEST_API_KEY']}")


async def _echo(ctx: cp.StepContext) -> object:
    return {"said": ctx.input, "card": CARD}


def _workflow() -> cp.Workflow:
    b = cp.WorkflowBuilder("leaky")
    b.agent("leaky", function=_leaky)
    b.agent("echo", function=_echo)
    b.step("a", agent="echo", input=f"use {SECRET}")
    b.step("b", agent="leaky", needs=["a"])
    wf = b.build()
    return wf.model_copy(
        update={"policy": cp.model.workflow.GuardPolicy(redact=(r"\d{4}-\d{4}-\d{4}-\d{4}",))}
    )


def test_nothing_secret_in_the_store_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDACT_TEST_API_KEY", SECRET)
    store = cp.open_store(tmp_path / "s")

    async def main() -> cp.RunResult:
        try:
            return await cp.run(_workflow(), store=store)
        finally:
            await store.close()

    with caplog.at_level(logging.WARNING, logger="counterpoint.agent"):
        result = asyncio.run(main())
    assert result.status is cp.RunStatus.FAILED
    raw = b"".join(p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file())
    assert b"failed" in raw and REDACTED.encode() in raw  # the entries are there, redacted
    assert SECRET.encode() not in raw
    assert CARD.encode() not in raw
    assert SECRET not in caplog.text and REDACTED in caplog.text


SAY = f"import os; print(os.environ['REDACT_TEST_TOKEN'], '{CARD}')"
FAIL = "import os, sys; sys.exit('bad ' + os.environ['REDACT_TEST_TOKEN'])"


def test_nothing_secret_in_the_cli_output(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        f"""\
name: leaky-cli
policy:
  redact: ['\\d{{4}}-\\d{{4}}-\\d{{4}}-\\d{{4}}']
agents:
  say:
    kind: program
    argv: [{sys.executable}, -c, "{SAY}"]
    output: text
  fail: {{kind: program, argv: [{sys.executable}, -c, "{FAIL}"]}}
steps:
  - {{id: a, agent: say}}
  - {{id: b, agent: fail, needs: a}}
"""
    )
    env = {**os.environ, "REDACT_TEST_TOKEN": SECRET, "COUNTERPOINT_HOME": str(tmp_path / "h")}
    for args in (["--json"], []):
        proc = subprocess.run(
            [sys.executable, "-m", "counterpoint", "run", "wf.yaml", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        both = proc.stdout + proc.stderr
        assert REDACTED in both
        assert SECRET not in both and CARD not in both
    raw = b"".join(p.read_bytes() for p in (tmp_path / "h").iterdir() if p.is_file())
    assert SECRET.encode() not in raw and CARD.encode() not in raw


def test_a_secret_input_is_not_kept_and_a_resume_is_given_it_again(tmp_path: Path) -> None:
    seen: list[object] = []
    failing = [True]

    async def use(ctx: cp.StepContext) -> object:
        seen.append(ctx.input)
        if failing[0]:
            raise cp.StepFailed(f"refused {ctx.input}", retryable=False)
        return "ok"

    b = cp.WorkflowBuilder("secret-input")
    token = b.input("api_token", type="string")
    b.agent("use", function=use)
    b.step("a", agent="use", input=token)
    wf = b.build()
    store = cp.open_store(tmp_path / "s")
    value = "tok-0123456789abcdef"

    async def main() -> tuple[cp.RunResult, str, cp.RunResult]:
        try:
            first = await cp.run(wf, store=store, inputs={"api_token": value})
            with pytest.raises(cp.CannotResume) as info:
                await cp.resume(first.run_id, store=store, workflow=wf)
            failing[0] = False
            again = await cp.resume(
                first.run_id, store=store, workflow=wf, inputs={"api_token": value}
            )
            return first, str(info.value), again
        finally:
            await store.close()

    first, refused, again = asyncio.run(main())
    assert first.status is cp.RunStatus.FAILED
    assert "the secret input(s) api_token were not kept" in refused
    assert again.status is cp.RunStatus.SUCCEEDED
    assert seen == [value, value]  # the agent got the real value both times
    raw = b"".join(p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file())
    assert value.encode() not in raw
