"""Every error counterpoint raises, under one base class.

Who raises what:

- ``WorkflowInvalid``: the loader and the validator, when a workflow cannot be run as written.
  It carries one ``Problem`` per mistake (file, line, column, path, message); the CLI prints
  them as ``FILE:LINE:COL: message`` and exits with code 2.
- ``AgentConfigError``: an agent kind, when an agent definition cannot be turned into an agent
  (a function that does not import, a program template that names no program).
- ``UnknownAgentKind``: the agent registry, for a ``kind`` no built-in or plugin provides.
- ``StepFailed``: raised by agents (or wrapped around what they raise) to fail a step with a
  message; ``retryable=False`` skips the remaining retries.
- ``StepTimeout``: a step ran past its ``timeout``.
- ``ImportFormatError``: an importer, for a benchmark file it cannot read.
- ``StoreError``: a run store that cannot be opened, read or written (damaged, locked, from a
  newer version, full). What was journaled before it is never lost.
- ``RunNotFound``, ``CannotResume``: ``resume`` and ``show`` for a run that does not exist or
  cannot go on (it succeeded, it is still running, its workflow changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AgentConfigError",
    "CannotResume",
    "CounterpointError",
    "ImportFormatError",
    "Problem",
    "RunNotFound",
    "StepFailed",
    "StepTimeout",
    "StoreError",
    "UnknownAgentKind",
    "WorkflowInvalid",
]


class CounterpointError(Exception):
    """Base class of every error counterpoint raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a workflow, with where it is.

    ``line`` and ``column`` are 1-based and ``None`` for workflows built in Python, where
    ``path`` (for example ``steps[3].agent``) says where the mistake is instead.
    """

    message: str
    file: str = "<python>"
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}:{self.column or 1}: {self.message}"
        said = self.message.startswith(f"{self.path}: ")
        where = f"{self.file}: {self.path}" if self.path and not said else self.file
        return f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line or 0, self.column or 0, self.message)


@dataclass
class WorkflowInvalid(CounterpointError):
    """A workflow cannot be run as written; ``problems`` lists every mistake found."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = sorted(self.problems, key=Problem.sort_key)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class AgentConfigError(CounterpointError):
    """An agent definition cannot be made into a working agent."""


class UnknownAgentKind(AgentConfigError):
    """No built-in or plugin provides this agent kind."""

    def __init__(self, kind: str, known: list[str]) -> None:
        self.kind = kind
        self.known = known
        super().__init__(f"unknown agent kind {kind!r}; known kinds: {', '.join(sorted(known))}")


class StepFailed(CounterpointError):
    """Fail the current step with a message.

    Agents raise it for failures they understand. ``retryable=False`` tells the scheduler
    not to spend the step's remaining retries on it.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class StepTimeout(CounterpointError):
    """A step ran past its timeout and was cancelled."""

    def __init__(self, step_id: str, timeout: float) -> None:
        self.step_id = step_id
        self.timeout = timeout
        super().__init__(f"step {step_id!r} timed out after {timeout:g}s")


class ImportFormatError(CounterpointError):
    """A benchmark file (STG, WfCommons, DAX) cannot be read."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class StoreError(CounterpointError):
    """The run store cannot be used; the message says which file, what is wrong, what to do."""


class RunNotFound(CounterpointError):
    """No run with this id in the store."""


class CannotResume(CounterpointError):
    """A run that must not be resumed as asked (finished, still running, or changed)."""
