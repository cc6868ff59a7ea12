"""Claude Code subagent files, and ``kind: subagent`` to run one as a step's agent.

A subagent file is Markdown with YAML front matter between two lines ``---``::

    ---
    name: code-reviewer                 # required
    description: Reviews a diff.         # required
    tools: Read, Grep, Bash             # optional: comma-separated, or a YAML list
    model: sonnet                       # optional: sonnet, opus, haiku, inherit or a model id
    ---
    You are a careful code reviewer...  # the system prompt (required)

Other keys are kept in ``Subagent.extra``. Every mistake is reported as
``FILE:LINE:COL: message`` (``SubagentInvalid``, a ``WorkflowInvalid``), all of a file's at
once; a YAML error is placed where it is in the file.

Where they are found (:func:`find_subagents`): the project's ``.claude/agents/*.md`` — the
project being the workflow's folder or the nearest parent that has a ``.git`` or ``.claude``
folder — then the user's ``~/.claude/agents/*.md``. A name in the project hides the same name
in the home folder; two files of one folder with the same name are an error.

``kind: subagent`` runs one (options: :class:`SubagentOptions`):

- ``via: llm`` (default): the ``llm`` kind, with the file's body as the system prompt. The
  model is the agent's ``model``, else ``$COUNTERPOINT_MODEL``, else the file's model unless
  it is a Claude alias (``sonnet``, ``opus``, ``haiku``, ``inherit``: an OpenAI-compatible
  endpoint does not know them). The llm options ``base_url``, ``base_url_env``,
  ``api_key_env``, ``temperature``, ``max_tokens``, ``timeout``, ``retries``, ``charge``,
  ``stand_in`` and ``output_schema`` are passed on.
- ``via: command``: a program (``command: [claude, -p]``) run by the ``program`` kind. It is
  given the prompt — the system prompt, instructions from feedback, then the step's input
  (JSON unless it is text), separated by blank lines — on stdin, or in place of an argument
  written exactly ``{prompt}``. Its stdout is the
  output (``output: auto | json | text`` as for programs). The command's elements are used
  as written (no templates).

The file's ``tools`` are kept as information only: counterpoint gives an LLM no tools. The
file's ``description`` is the agent's description when the workflow gives none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.llm import LLM, LlmOptions
from counterpoint.agents.program import PROGRAM, ProgramOptions
from counterpoint.errors import AgentConfigError, Problem, StepFailed, WorkflowInvalid

# The workflow loader's YAML reading (YAML 1.2 core scalars, libyaml's errors in plain words,
# duplicate keys refused), reused so that front matter reads exactly as workflows do.
from counterpoint.model.load import _Loader, _structure_problems, _syntax_problem
from counterpoint.model.locate import YamlPositions
from counterpoint.model.messages import did_you_mean
from counterpoint.model.workflow import AgentSpec, Duration

__all__ = [
    "CLAUDE_MODEL_ALIASES",
    "SUBAGENT",
    "Subagent",
    "SubagentAgent",
    "SubagentInvalid",
    "SubagentOptions",
    "choose_model",
    "find_subagent",
    "find_subagents",
    "load_subagent",
    "parse_subagent",
    "render_prompt",
    "subagent_folders",
]

CLAUDE_MODEL_ALIASES = frozenset({"sonnet", "opus", "haiku", "inherit"})
"""Model names in subagent files that only Claude Code understands."""

MODEL_ENV = "COUNTERPOINT_MODEL"
PROMPT_ARG = "{prompt}"

_FORMAT = (
    "a subagent file starts with a line '---', then YAML with at least name and description, "
    "a line '---', and the system prompt"
)


class SubagentInvalid(WorkflowInvalid):
    """A subagent file (or a folder of them) cannot be used; ``problems`` lists every mistake,
    each with its ``FILE:LINE:COL``."""


@dataclass(slots=True)
class Subagent:
    """One Claude Code subagent, as its file defines it.

    ``tools`` is ``None`` when the file names none (in Claude Code: every tool); it is kept
    as information, counterpoint gives an LLM no tools. ``extra`` holds the front matter's
    other keys.
    """

    name: str
    description: str
    system_prompt: str
    path: Path
    tools: list[str] | None = None
    model: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


# --- parsing ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Read:
    """What could be read of one file: its name when the front matter gives one, the
    subagent when nothing is wrong, else the problems."""

    path: Path
    name: str | None
    subagent: Subagent | None
    problems: list[Problem]


def load_subagent(path: str | Path) -> Subagent:
    """The subagent in ``path``; raises ``SubagentInvalid`` listing every mistake."""
    read = _read(Path(path))
    if read.subagent is None:
        raise SubagentInvalid(read.problems)
    return read.subagent


def parse_subagent(text: str, file: str | Path = "<string>") -> Subagent:
    """The subagent in ``text``; ``file`` is the name used in problems and in ``path``."""
    read = _parse(text, Path(file), str(file))
    if read.subagent is None:
        raise SubagentInvalid(read.problems)
    return read.subagent


def _read(path: Path) -> _Read:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _Read(path, None, None, [Problem("no such file", file=file)])
    except (OSError, UnicodeDecodeError) as exc:
        return _Read(path, None, None, [Problem(f"cannot read the file: {exc}", file=file)])
    return _parse(text, path, file)


def _parse(text: str, path: Path, file: str) -> _Read:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return _Read(path, None, None, [Problem(f"no front matter: {_FORMAT}", file, 1, 1)])
    closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if closing is None:
        message = (
            "unterminated front matter: the '---' of line 1 has no closing line '---' "
            "(put one after the YAML, before the system prompt)"
        )
        return _Read(path, None, None, [Problem(message, file, 1, 1)])
    # One blank line for the opening '---', so YAML's positions are the file's.
    front = "\n" + "\n".join(lines[1:closing]) + "\n"
    body = "\n".join(lines[closing + 1 :]).strip()
    problems: list[Problem] = []
    data, where = _front_matter(front, file, problems)
    name: str | None = None
    subagent: Subagent | None = None
    if data is not None and where is not None:
        name, subagent = _fields(data, where, body, path, problems)
    if not body:
        problems.append(
            Problem(
                "the system prompt is empty: write it after the closing '---'",
                file,
                closing + 2,
                1,
            )
        )
    if problems:
        return _Read(path, name, None, sorted(problems, key=Problem.sort_key))
    return _Read(path, name, subagent, [])


def _front_matter(
    text: str, file: str, problems: list[Problem]
) -> tuple[dict[str, object] | None, YamlPositions | None]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            problems.append(
                Problem("the front matter is empty: it needs name and description", file, 2, 1)
            )
            return None, None
        found = _structure_problems(root, file)
        if found:
            problems.extend(found)
            return None, None
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_problem(exc, file))
        return None, None
    except yaml.YAMLError as exc:
        problems.append(Problem(f"YAML error: {exc}", file, 2, 1))
        return None, None
    finally:
        loader.dispose()
    where = YamlPositions(file, root)
    if not isinstance(data, dict):
        problems.append(
            where.problem(
                (),
                "the front matter must be a mapping with keys such as name and description, "
                f"got {_describe(data)}",
            )
        )
        return None, None
    return data, where


def _fields(
    data: dict[str, object],
    where: YamlPositions,
    body: str,
    path: Path,
    problems: list[Problem],
) -> tuple[str | None, Subagent | None]:
    before = len(problems)
    text: dict[str, str] = {}
    for key in ("name", "description"):
        if key not in data:
            problems.append(where.problem((), f"missing required key {key!r}"))
            continue
        value = data[key]
        if not isinstance(value, str):
            problems.append(where.problem((key,), f"{key}: expected text, got {_describe(value)}"))
        elif not value.strip():
            problems.append(where.problem((key,), f"{key}: must not be empty"))
        else:
            text[key] = value.strip()
    tools = _tools(data.get("tools"), where, problems)
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        problems.append(
            where.problem(
                ("model",),
                "model: expected text (sonnet, opus, haiku, inherit or a model id), "
                f"got {_describe(model)}",
            )
        )
    name = text.get("name")
    if len(problems) > before or not body:
        return name, None
    assert name is not None
    extra = {k: v for k, v in data.items() if k not in ("name", "description", "tools", "model")}
    return name, Subagent(
        name=name,
        description=text["description"],
        system_prompt=body,
        path=path,
        tools=tools,
        model=(model.strip() or None) if isinstance(model, str) else None,
        extra=extra,
    )


def _tools(value: object, where: YamlPositions, problems: list[Problem]) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                problems.append(
                    where.problem(
                        ("tools", i),
                        f"tools[{i}]: expected a tool name (text), got {_describe(item)}",
                    )
                )
            elif item.strip():
                out.append(item.strip())
        return out
    problems.append(
        where.problem(
            ("tools",),
            "tools: expected tool names separated by commas (Read, Grep, Bash) or a list of "
            f"them, got {_describe(value)}",
        )
    )
    return None


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


# --- discovery -------------------------------------------------------------------------


def subagent_folders(base_dir: str | Path, home: str | Path | None = None) -> list[Path]:
    """The folders searched, first the project's then the user's (whether they exist or not).

    The project is ``base_dir`` or the nearest parent that has a ``.git`` or ``.claude``
    folder; without one up to the filesystem root, only the user's folder is searched.
    """
    folders: list[Path] = []
    start = Path(base_dir).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists() or (folder / ".claude").is_dir():
            folders.append(folder / ".claude" / "agents")
            break
    user = _home(home)
    if user is not None:
        mine = user / ".claude" / "agents"
        if not folders or folders[0] != mine:  # the project is the home folder itself
            folders.append(mine)
    return folders


def _home(home: str | Path | None) -> Path | None:
    if home is not None:
        return Path(home).resolve()
    try:
        return Path.home().resolve()
    except RuntimeError:  # no HOME and no password entry
        return None


def _scan(folder: Path) -> list[_Read]:
    if not folder.is_dir():
        return []
    return [_read(p) for p in sorted(folder.glob("*.md")) if p.is_file()]


def _duplicate(name: str, reads: list[_Read]) -> Problem:
    first, second = reads[0].path, reads[1].path
    return Problem(
        f"two subagents are called {name!r}: {first} and {second} (names must differ within "
        "a folder)",
        file=str(second),
    )


def find_subagents(base_dir: str | Path, home: str | Path | None = None) -> dict[str, Subagent]:
    """Every subagent of the project and of the user, by name (the project's first).

    ``home`` is the user's home folder (default: ``~``). Raises ``SubagentInvalid`` when a
    file cannot be read or two files of one folder have the same name.
    """
    found: dict[str, Subagent] = {}
    problems: list[Problem] = []
    for folder in subagent_folders(base_dir, home):
        here: dict[str, list[_Read]] = {}
        for read in _scan(folder):
            problems.extend(read.problems)
            if read.subagent is not None:
                here.setdefault(read.subagent.name, []).append(read)
                found.setdefault(read.subagent.name, read.subagent)
        problems.extend(_duplicate(name, reads) for name, reads in here.items() if len(reads) > 1)
    if problems:
        raise SubagentInvalid(problems)
    return found


def find_subagent(name: str, base_dir: str | Path, home: str | Path | None = None) -> Subagent:
    """The subagent called ``name`` (the project's before the user's); raises
    ``AgentConfigError`` saying what was found instead.

    Unlike :func:`find_subagents` a broken file elsewhere does not matter: only files that
    claim the name (by their front matter, or by their file name when it cannot be read)
    and, when the name is not found, the list of files that could not be read.
    """
    folders = subagent_folders(base_dir, home)
    scanned = [(folder, _scan(folder)) for folder in folders]
    for _folder, reads in scanned:
        claims = [r for r in reads if (r.name or r.path.stem) == name]
        broken = [p for r in claims for p in r.problems]
        if broken:
            raise AgentConfigError(
                f"subagent {name!r} cannot be read:\n" + "\n".join(map(str, broken))
            )
        if len(claims) > 1:
            raise AgentConfigError(str(_duplicate(name, claims)))
        if claims:
            assert claims[0].subagent is not None
            return claims[0].subagent
    names = sorted({r.subagent.name for _f, reads in scanned for r in reads if r.subagent})
    where = " and ".join(str(f) for f in folders) or "no folder (no home folder either)"
    message = f"no subagent {name!r}{did_you_mean(name, names)}"
    message += f"; found: {', '.join(names)}" if names else "; none found"
    message += f" (looked in {where})"
    unreadable = [p for _f, reads in scanned for r in reads for p in r.problems]
    if unreadable:
        message += "; these files could not be read:\n" + "\n".join(map(str, unreadable))
    raise AgentConfigError(message)


# --- the agent kind --------------------------------------------------------------------

_LLM_ONLY = (
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
)
_COMMAND_ONLY = ("command", "output", "cwd", "kill_grace")


class SubagentOptions(BaseModel):
    """The options of ``kind: subagent``; the llm options are those of ``kind: llm``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="the subagent's name (its file's `name`)")
    via: Literal["llm", "command"] = Field(
        "llm", description="llm: the llm kind; command: a program such as [claude, -p]"
    )
    model: str | None = Field(
        None, description="for via: llm; default: $COUNTERPOINT_MODEL, else the file's"
    )
    command: list[str] | None = Field(
        None,
        min_length=1,
        description="for via: command: the program and its arguments; the prompt goes on "
        "stdin, or in place of an element written exactly {prompt}",
    )
    output: Literal["auto", "json", "text"] = Field("auto", description="for via: command")
    cwd: str | None = Field(None, description="for via: command, relative to the workflow's")
    kill_grace: Duration = Field(2.0, description="for via: command")
    # Passed on to the llm kind (only those given, so its defaults apply).
    base_url: str | None = None
    base_url_env: str = "OPENAI_BASE_URL"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    timeout: Duration = Field(60.0, description="per call")
    retries: int = Field(2, ge=0)
    charge: list[str] = Field(default_factory=list)
    stand_in: str | None = None
    output_schema: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, value: object) -> object:
        if isinstance(value, dict) and "api_key" in value:
            raise ValueError(
                "api_key: a key is not written in the workflow (it would be kept in the "
                "journal): put it in an environment variable and name it with api_key_env "
                "(default OPENAI_API_KEY)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is not None:
            try:
                find_subagent(value, base_dir)
            except AgentConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                LlmOptions.model_validate({"model": "-", "output_schema": value})
            except pydantic.ValidationError as exc:
                err = exc.errors()[0]
                raise ValueError(str(err.get("ctx", {}).get("error", err["msg"]))) from None
        return value

    @model_validator(mode="after")
    def _via(self) -> SubagentOptions:
        given = self.model_fields_set
        if self.via == "command":
            if self.command is None:
                raise ValueError(
                    "via: command needs command, the program and its arguments (e.g. [claude, -p])"
                )
            if "model" in given:
                raise ValueError(
                    "model is for via: llm; with via: command, give the model in the command "
                    "(e.g. [claude, -p, --model, opus])"
                )
            wrong = [k for k in _LLM_ONLY if k in given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: for via: llm only")
        else:
            wrong = [k for k in _COMMAND_ONLY if k in given]
            if wrong:
                raise ValueError(f"{', '.join(wrong)}: for via: command only")
        return self


def choose_model(
    option: str | None, subagent: Subagent, env: Mapping[str, str] | None = None
) -> str:
    """The model for ``via: llm``: the option, else ``$COUNTERPOINT_MODEL``, else the file's
    unless it is a Claude alias; raises ``AgentConfigError`` saying what to set."""
    env = os.environ if env is None else env
    if option:
        return option
    if env.get(MODEL_ENV, "").strip():
        return env[MODEL_ENV].strip()
    if subagent.model and subagent.model.lower() not in CLAUDE_MODEL_ALIASES:
        return subagent.model
    why = (
        f"its file says model {subagent.model!r}, a Claude Code alias an OpenAI-compatible "
        "endpoint does not know"
        if subagent.model
        else "its file names none"
    )
    raise AgentConfigError(
        f"no model for subagent {subagent.name!r} ({why}): set the agent's model option "
        f"or ${MODEL_ENV}"
    )


def render_prompt(system_prompt: str, ctx: StepContext) -> str:
    """What ``via: command`` gives the program: the system prompt, instructions from
    feedback, then the step's input (text as it is, else JSON; nothing when it has none),
    separated by blank lines. The outputs of the steps it needs reach it through its input
    (``${{ steps.ID.output }}``)."""
    parts = [system_prompt, *ctx.instructions]
    if isinstance(ctx.input, str):
        parts.append(ctx.input)
    elif ctx.input is not None:
        parts.append(json.dumps(ctx.input, default=str))
    return "\n\n".join(p for p in parts if p)


# Runs the command with the prompt on stdin as text: the program kind sends JSON, so this
# reads it, puts the text in an unlinked temporary file as stdin and execs the command (same
# process, so the program kind's process group, timeout and kill handling all apply).
_STDIN_SHIM = """\
import json, os, sys, tempfile
text = json.loads(sys.stdin.buffer.read())
f = tempfile.TemporaryFile()
f.write(text.encode("utf-8"))
f.seek(0)
os.dup2(f.fileno(), 0)
argv = sys.argv[1:]
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write(f"cannot start {argv[0]!r}: {exc.strerror or exc}\\n")
    sys.exit(127)
"""


def _literal(arg: str) -> str:
    """A command element as a program argv template that renders to itself."""
    return arg.replace("${{", "$${{")


class SubagentAgent:
    """A subagent as a step's agent: the llm or program agent that runs it, with the
    subagent's data (``subagent.tools`` is information only)."""

    def __init__(
        self,
        subagent: Subagent,
        via: str,
        inner: Agent,
        description: str,
        command: list[str] | None = None,
    ) -> None:
        self.subagent = subagent
        self.via = via
        self.inner = inner
        self.description = description
        self.command = command

    @property
    def tools(self) -> list[str] | None:
        return self.subagent.tools

    def __repr__(self) -> str:
        return f"<subagent {self.subagent.name!r} via {self.via}: {self.inner!r}>"

    async def __call__(self, ctx: StepContext) -> object:
        if self.command is None:
            return await self.inner(ctx)
        prompt = render_prompt(self.subagent.system_prompt, ctx)
        try:
            return await self.inner(dataclasses.replace(ctx, input=prompt))
        except StepFailed as exc:
            raise self._plain(exc) from None

    def _plain(self, exc: StepFailed) -> StepFailed:
        """The shim's failures in the words of the command itself."""
        assert self.command is not None
        message = str(exc)
        shim = f"{sys.executable} "
        if PROMPT_ARG in self.command or not message.startswith(shim):
            return exc
        rest = message[len(shim) :]
        if rest.startswith("exited with code 127: cannot start "):
            return StepFailed(rest.split(": ", 1)[1].split("\n", 1)[0], retryable=False)
        return StepFailed(f"{self.command[0]} {rest}", retryable=exc.retryable)


class SubagentKind:
    """A Claude Code subagent, through an OpenAI-compatible endpoint or a command."""

    options = SubagentOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, SubagentOptions)
        subagent = find_subagent(options.name, base_dir)
        description = spec.description or subagent.description
        if options.via == "command":
            assert options.command is not None
            command = options.command
            if PROMPT_ARG in command:
                argv = ["${{ input }}" if a == PROMPT_ARG else _literal(a) for a in command]
                stdin: Literal["json", "none"] = "none"
            else:
                argv = [sys.executable, "-I", "-c", _STDIN_SHIM, *map(_literal, command)]
                stdin = "json"
            program = ProgramOptions(
                argv=argv,
                stdin=stdin,
                output=options.output,
                cwd=options.cwd,
                kill_grace=options.kill_grace,
            )
            inner = PROGRAM.build(spec, program, base_dir)
            return SubagentAgent(subagent, "command", inner, description, command)
        given = options.model_fields_set
        llm = LlmOptions.model_validate(
            {
                "model": choose_model(options.model, subagent),
                "system": subagent.system_prompt,
                **{k: getattr(options, k) for k in _LLM_ONLY if k in given},
            }
        )
        return SubagentAgent(subagent, "llm", LLM.build(spec, llm, base_dir), description)


SUBAGENT = SubagentKind()
