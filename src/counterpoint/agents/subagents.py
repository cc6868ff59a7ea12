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

Where they are found (:func:`find_subagents`): first the agent's own ``folder`` when it gives
one (relative to the workflow's folder, or absolute: a folder of subagent files with any name,
such as a repository's ``agents/``), then the project's ``.claude/agents/*.md`` — the project
being the workflow's folder or the nearest parent that has a ``.git`` or ``.claude`` folder —
then the user's ``~/.claude/agents/*.md``. A name found in an earlier folder hides the same
name in later ones; two files of one folder with the same name are an error; a ``folder`` that
does not exist is an error naming it.

``kind: subagent`` runs one (options: :class:`SubagentOptions`):

- ``via: llm`` (default): the ``llm`` kind, with the file's body as the system prompt. The
  model is ``$COUNTERPOINT_MODEL`` when set (the environment that picks the endpoint picks
  its model), else the agent's ``model``, else the file's model unless it is a Claude alias
  (``sonnet``, ``opus``, ``haiku``, ``inherit``: an OpenAI-compatible endpoint does not know
  them). The llm options ``base_url``, ``base_url_env``,
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.llm import LLM, LlmOptions, refuse_api_key, rejection
from counterpoint.agents.program import PROGRAM, ProgramOptions
from counterpoint.errors import AgentConfigError, Problem, WorkflowInvalid

# The workflow loader's YAML reading (YAML 1.2 core scalars, libyaml's errors in plain words,
# duplicate keys refused), reused so that front matter reads exactly as workflows do.
from counterpoint.model.load import parse_yaml
from counterpoint.model.locate import YamlPositions
from counterpoint.model.messages import describe, did_you_mean
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
    try:
        root, data = parse_yaml(text, file, line=2)
    except WorkflowInvalid as exc:
        problems.extend(exc.problems)
        return None, None
    if root is None:
        problems.append(
            Problem("the front matter is empty: it needs name and description", file, 2, 1)
        )
        return None, None
    where = YamlPositions(file, root)
    if not isinstance(data, dict):
        problems.append(
            where.problem(
                (),
                "the front matter must be a mapping with keys such as name and description, "
                f"got {describe(data)}",
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
            problems.append(where.problem((key,), f"{key}: expected text, got {describe(value)}"))
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
                f"got {describe(model)}",
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
                        f"tools[{i}]: expected a tool name (text), got {describe(item)}",
                    )
                )
            elif item.strip():
                out.append(item.strip())
        return out
    problems.append(
        where.problem(
            ("tools",),
            "tools: expected tool names separated by commas (Read, Grep, Bash) or a list of "
            f"them, got {describe(value)}",
        )
    )
    return None


# --- discovery -------------------------------------------------------------------------


def subagent_folders(
    base_dir: str | Path, home: str | Path | None = None, folder: str | Path | None = None
) -> list[Path]:
    """The folders searched, in order, whether they exist or not: ``folder`` (relative to
    ``base_dir``, or absolute) when given, the project's, then the user's.

    The project is ``base_dir`` or the nearest parent that has a ``.git`` or ``.claude``
    folder; without one up to the filesystem root, only the user's folder is searched. A
    folder is listed once, at its first place.
    """
    folders: list[Path] = []
    if folder is not None:
        folders.append(_own_folder(folder, base_dir))
    start = Path(base_dir).resolve()
    for parent in (start, *start.parents):
        if (parent / ".git").exists() or (parent / ".claude").is_dir():
            folders.append(parent / ".claude" / "agents")
            break
    user = _home(home)
    if user is not None:
        folders.append(user / ".claude" / "agents")  # the project may be the home folder
    return list(dict.fromkeys(folders))


def _own_folder(folder: str | Path, base_dir: str | Path) -> Path:
    """An agent's ``folder`` of subagent files as an absolute path (a relative one is read
    from ``base_dir``, the workflow's folder)."""
    return (Path(base_dir) / folder).resolve()


def _missing(folder: str | Path, base_dir: str | Path) -> str | None:
    """Why an agent's ``folder`` cannot be searched, or ``None`` when it can."""
    path = _own_folder(folder, base_dir)
    if path.is_dir():
        return None
    what = "is not a folder" if path.exists() else "does not exist"
    if Path(folder).is_absolute():
        return f"the subagent folder {path} {what}"
    return f"the subagent folder {path} {what} ({str(folder)!r}, read from {Path(base_dir)})"


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


def find_subagents(
    base_dir: str | Path, home: str | Path | None = None, folder: str | Path | None = None
) -> dict[str, Subagent]:
    """Every subagent of ``folder`` (when given), the project and the user, by name (from the
    first folder that has it).

    ``home`` is the user's home folder (default: ``~``). Raises ``SubagentInvalid`` when a
    file cannot be read or two files of one folder have the same name, and
    ``AgentConfigError`` when ``folder`` is not a folder.
    """
    if folder is not None and (why := _missing(folder, base_dir)) is not None:
        raise AgentConfigError(why)
    found: dict[str, Subagent] = {}
    problems: list[Problem] = []
    for searched in subagent_folders(base_dir, home, folder):
        here: dict[str, list[_Read]] = {}
        for read in _scan(searched):
            problems.extend(read.problems)
            if read.subagent is not None:
                here.setdefault(read.subagent.name, []).append(read)
                found.setdefault(read.subagent.name, read.subagent)
        problems.extend(_duplicate(name, reads) for name, reads in here.items() if len(reads) > 1)
    if problems:
        raise SubagentInvalid(problems)
    return found


def find_subagent(
    name: str,
    base_dir: str | Path,
    home: str | Path | None = None,
    folder: str | Path | None = None,
) -> Subagent:
    """The subagent called ``name`` (``folder``'s before the project's before the user's);
    raises ``AgentConfigError`` saying what was found instead, or that ``folder`` is not a
    folder.

    Unlike :func:`find_subagents` a broken file elsewhere does not matter: only files that
    claim the name (by their front matter, or by their file name when it cannot be read)
    and, when the name is not found, the list of files that could not be read.
    """
    if folder is not None and (why := _missing(folder, base_dir)) is not None:
        raise AgentConfigError(why)
    folders = subagent_folders(base_dir, home, folder)
    scanned = [(searched, _scan(searched)) for searched in folders]
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
    where = _and([str(f) for f in folders]) or "no folder (no home folder either)"
    message = f"no subagent {name!r}{did_you_mean(name, names)}"
    message += f"; found: {', '.join(names)}" if names else "; none found"
    message += f" (looked in {where})"
    unreadable = [p for _f, reads in scanned for r in reads for p in r.problems]
    if unreadable:
        message += "; these files could not be read:\n" + "\n".join(map(str, unreadable))
    raise AgentConfigError(message)


def _and(items: list[str]) -> str:
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


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

    # Before name: name's check searches it (a validator sees only the fields before it).
    folder: str | None = Field(
        None,
        min_length=1,
        description="a folder of subagent files searched first, before .claude/agents of the "
        "project and of the home folder; relative to the workflow's folder, or absolute",
    )
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
        return refuse_api_key(value)

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        base_dir = (info.context or {}).get("base_dir")
        if value is not None and base_dir is not None:
            why = _missing(value, base_dir)
            if why is not None:
                raise ValueError(why)
        return value

    @field_validator("name")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is not None and "folder" in info.data:  # else the folder is wrong
            try:
                find_subagent(value, base_dir, folder=info.data["folder"])
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
    """The model for ``via: llm``: ``$COUNTERPOINT_MODEL`` (the environment chooses the
    endpoint, so it chooses the model too), else the agent's option, else the file's unless
    it is a Claude alias; raises ``AgentConfigError`` saying what to set."""
    env = os.environ if env is None else env
    if env.get(MODEL_ENV, "").strip():
        return env[MODEL_ENV].strip()
    if option:
        return option
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
    if ctx.handoff is not None and ctx.handoff.errors:
        parts.append(rejection(ctx.handoff.errors))
    return "\n\n".join(p for p in parts if p)


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
    def portable(self) -> bool:
        """Run as a command, it may run in another process (the Ray backend)."""
        return self.command is not None

    @property
    def tools(self) -> list[str] | None:
        return self.subagent.tools

    def __repr__(self) -> str:
        return f"<subagent {self.subagent.name!r} via {self.via}: {self.inner!r}>"

    async def __call__(self, ctx: StepContext) -> object:
        if self.command is None:
            return await self.inner(ctx)
        prompt = render_prompt(self.subagent.system_prompt, ctx)
        return await self.inner(dataclasses.replace(ctx, input=prompt))


class SubagentKind:
    """A Claude Code subagent, through an OpenAI-compatible endpoint or a command."""

    options = SubagentOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, SubagentOptions)
        subagent = find_subagent(options.name, base_dir, folder=options.folder)
        description = spec.description or subagent.description
        if options.via == "command":
            assert options.command is not None
            command = options.command
            argv = ["${{ input }}" if a == PROMPT_ARG else _literal(a) for a in command]
            stdin: Literal["text", "none"] = "none" if PROMPT_ARG in command else "text"
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
