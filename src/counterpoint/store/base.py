"""The run store: where runs and their journals live.

A store keeps, for every run, one row of facts (``RunInfo``) and a journal: the numbered list
of every transition of the run (``Entry``). The interface is small and async so that a store
may sit behind a network; the embedded SQLite store answers at once.

Entry kinds, and what ``data`` holds (JSON text, or ``None``):

======================  ==============================================================
``run-started``         the options of this session of the run (``attempt`` counts sessions)
``ready``               a step's needs are all done
``started``             an attempt began (``attempt`` is its number, from 1)
``succeeded``           the step's output
``retried``             an attempt failed and another will follow: ``{"error", "delay"}``
``failed``              the step failed for good: the error text
``skipped``             a step it needs did not succeed: the reason
``cancelled``           fail-fast, Ctrl-C, or a store that failed: the reason
``rolled-back``         a sequence went back: this step waits again, ``{"to", "error"}``
                        names the step that runs again
``charged``             what a step cost a budget: ``{"budget", "amount"}`` (resume adds
                        them up, so a budget is never spent twice)
``event``               an event of the run: ``{"name", "kind", "data", "source", "seq"}``
                        (and ``"inbox"``: its id there, for one sent from elsewhere)
``taken``               a wait took the event numbered ``{"seq"}`` (no other wait may, after
                        a resume either)
``run-finished``        ``{"status", "error"}``
======================  ==============================================================

A store must keep ``data`` exactly (large values included) and return entries in ``seq``
order. Everything that ``append`` accepted is durable when it returns.

Besides the journal, which only the process running the run writes, each run has an inbox:
events other processes ``post`` to it (``counterpoint send``, ``approve``), which the run
reads (``inbox``) and journals as it takes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = ["BLOB_THRESHOLD", "Entry", "Posted", "RunInfo", "Store"]

BLOB_THRESHOLD = 1 << 20  # data longer than 1 MiB is kept apart, as a blob


class Entry(NamedTuple):
    """One transition in a run's journal."""

    seq: int
    kind: str
    step: str | None
    attempt: int
    time: float  # wall clock, seconds since the epoch
    data: str | None  # JSON text


class Posted(NamedTuple):
    """An event another process sent to a run."""

    id: int  # increasing, per store
    name: str
    data: str  # JSON text
    source: str
    sent_at: float  # wall clock


@dataclass(slots=True)
class RunInfo:
    """What a store knows of a run besides its journal."""

    run_id: str
    workflow: str
    source: str  # the workflow file (absolute), or "<python>"
    fingerprint: str  # sha256 of the definition
    definition: str  # the YAML text, or the definition as JSON for Python-built workflows
    inputs: dict[str, object] = field(default_factory=dict)
    options: dict[str, object] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)  # step id -> agent name
    status: str = "running"
    pattern: str = ""
    created_at: float = 0.0
    finished_at: float | None = None
    makespan_s: float | None = None
    pid: int | None = None
    host: str = ""
    version: str = ""
    error: str | None = None


class Store(Protocol):
    """Where runs are kept. Implementations: ``MemoryStore`` and ``SqliteStore``."""

    @property
    def location(self) -> str:
        """Where the store is, for messages: a file path, or ``<memory>``."""
        ...

    @property
    def durable(self) -> bool:
        """Whether runs survive the process (outputs must then be JSON)."""
        ...

    async def create_run(self, run: RunInfo) -> None:
        """Add a new run; its id must be new."""
        ...

    async def update_run(self, run_id: str, **fields: object) -> None:
        """Change some fields of a run (status, finished_at, makespan_s, pattern, pid...)."""
        ...

    async def append(self, run_id: str, entries: Sequence[Entry]) -> None:
        """Add entries to a run's journal, durably, all or none."""
        ...

    async def get_run(self, run_id: str) -> RunInfo:
        """The run with this id, or the only one whose id starts with it; ``RunNotFound``."""
        ...

    async def list_runs(self, *, limit: int = 50, workflow: str | None = None) -> list[RunInfo]:
        """The newest runs first."""
        ...

    async def entries(self, run_id: str, *, after: int = 0) -> list[Entry]:
        """A run's journal, in order, from ``seq > after``."""
        ...

    async def cache_get(self, key: str) -> tuple[str, float] | None:
        """A cached output (JSON text) and when it was stored, or ``None``."""
        ...

    async def cache_put(self, key: str, output: str, stored_at: float) -> None:
        """Keep an output under ``key`` (replacing an older one)."""
        ...

    async def post(self, run_id: str, name: str, data: str, source: str, sent_at: float) -> int:
        """Send an event to a run's inbox (durably); returns its id."""
        ...

    async def inbox(self, run_id: str, after: int = 0) -> list[Posted]:
        """The events sent to a run with an id above ``after``, in the order sent."""
        ...

    async def close(self) -> None:
        """Release the store; further calls are errors."""
        ...
