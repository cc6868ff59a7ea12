"""``kind: program``: run a program, never through a shell.

Each argv element is a template rendered on its own (``${{ input.path }}``,
``${{ step.id }}``, ``${{ step.attempt }}``, ``${{ step.idempotency_key }}``, ``${{ run.id }}``),
so a value with spaces or quotes stays one argument. The step input goes to stdin as JSON
(``stdin: text``: a text input as it is, anything else as JSON; ``none``: nothing); stdout
is the output (JSON when it parses, else text). A non-zero exit fails the step with the
tail of stderr. The program runs in a process group of its own, and a timeout or a
cancellation ends the whole group: SIGTERM, then SIGKILL after ``kill_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from counterpoint.agents.base import Agent, StepContext
from counterpoint.errors import StepFailed
from counterpoint.model.refs import Template, compile_template, find_references
from counterpoint.model.workflow import AgentSpec, Duration

__all__ = ["PROGRAM", "ProgramOptions"]

_ROOTS = {"input", "step", "run"}
STDERR_TAIL = 2000


def _check_roots(value: object) -> None:
    for _where, ref in find_references(value):
        if isinstance(ref, str):
            raise ValueError(ref)
        if ref.root not in _ROOTS:
            raise ValueError(
                f"{ref}: a program template can use input.KEY, step.id, step.attempt, "
                "step.idempotency_key and run.id"
            )


class ProgramOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1, description="the program and its arguments")
    stdin: Literal["json", "text", "none"] = Field(
        "json", description="the step input on stdin: as JSON, as text (JSON unless text), none"
    )
    output: Literal["auto", "json", "text"] = "auto"
    cwd: str | None = Field(None, description="working folder, relative to the workflow's")
    env: dict[str, str] = Field(default_factory=dict, description="added to the environment")
    kill_grace: Duration = 2.0

    @field_validator("argv", "env")
    @classmethod
    def _templates(cls, value: object) -> object:
        _check_roots(value)
        return value


def _render(template: Template | None, raw: str, scope: Mapping[str, object]) -> str:
    if template is None:
        return raw
    value = template(scope)
    return value if isinstance(value, str) else json.dumps(value)


class _Program:
    portable = True  # may run in another process (the Ray backend)

    def __init__(self, options: ProgramOptions, base_dir: Path) -> None:
        self.options = options
        self.argv = [(compile_template(a), a) for a in options.argv]
        self.env = {k: (compile_template(v), v) for k, v in options.env.items()}
        cwd = Path(options.cwd) if options.cwd else Path()
        self.cwd = cwd if cwd.is_absolute() else base_dir / cwd

    async def __call__(self, ctx: StepContext) -> object:
        scope: dict[str, object] = {
            "input": ctx.input,
            "step": {
                "id": ctx.step_id,
                "attempt": ctx.attempt,
                "idempotency_key": ctx.idempotency_key,
            },
            "run": {"id": ctx.run_id},
        }
        argv = [_render(t, raw, scope) for t, raw in self.argv]
        env = None
        if self.env:
            env = dict(os.environ)
            env.update({k: _render(t, raw, scope) for k, (t, raw) in self.env.items()})
        data = None
        if self.options.stdin == "json":
            data = json.dumps(ctx.input).encode()
        elif self.options.stdin == "text":
            text = ctx.input if isinstance(ctx.input, str) else json.dumps(ctx.input)
            data = text.encode()
        # Started in its own task: a cancellation (timeout, fail-fast, Ctrl-C) that lands while
        # the process is being set up must still find its process group and end it.
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        )
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                await _kill_group(await starting, self.options.kill_grace)
            raise
        except OSError as exc:
            raise StepFailed(
                f"cannot start {argv[0]!r}: {exc.strerror or exc}", retryable=False
            ) from None
        try:
            out, err = await proc.communicate(data)
        except BaseException:
            await _kill_group(proc, self.options.kill_grace)
            raise
        if proc.returncode != 0:
            raise StepFailed(_failure(argv[0], proc.returncode or 0, err))
        return _parse_output(out, self.options.output, argv[0])


def _failure(program: str, code: int, stderr: bytes) -> str:
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    tail = stderr.decode("utf-8", "replace").strip()
    if not tail:
        return f"{program} {how} (stderr was empty)"
    if len(tail) > STDERR_TAIL:
        tail = "..." + tail[-STDERR_TAIL:]
    lines = tail.splitlines()
    if len(lines) == 1:
        return f"{program} {how}: {lines[0]}"
    # The last line is usually the error itself; the tail follows for context.
    return f"{program} {how}: {lines[-1]}\nstderr (last {len(lines)} lines):\n{tail}"


def _parse_output(out: bytes, mode: str, program: str) -> object:
    text = out.decode("utf-8", "replace")
    if mode == "text":
        return text
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        if mode == "json":
            raise StepFailed(
                f"{program} printed output that is not JSON: {text[:200]!r}", retryable=False
            ) from None
        return text.rstrip("\n")


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """End the program and everything it started: SIGTERM, a grace period, then SIGKILL."""
    if proc.returncode is not None:
        _signal_group(proc.pid, signal.SIGKILL)  # children may outlive the leader
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await asyncio.shield(proc.wait())
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(proc.wait())


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ProgramKind:
    """Runs an external program with an argv template."""

    options = ProgramOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, ProgramOptions)
        return _Program(options, base_dir)


PROGRAM = ProgramKind()
