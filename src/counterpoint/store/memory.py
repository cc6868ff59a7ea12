"""A store in this process's memory: for tests, simulations and runs that need no history."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from counterpoint.errors import RunNotFound, StoreError
from counterpoint.store.base import Entry, Posted, RunInfo

__all__ = ["MemoryStore", "pick_run"]


def pick_run(run_id: str, ids: Sequence[str], location: str) -> str:
    """``run_id`` itself, or the one id it is a prefix of; ``RunNotFound`` otherwise."""
    if run_id in ids:
        return run_id
    matches = [i for i in ids if i.startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(sorted(matches)[:5])
        raise RunNotFound(f"{run_id!r} matches {len(matches)} runs in {location}: {shown}")
    raise RunNotFound(f"no run {run_id!r} in {location} (`counterpoint runs` lists them)")


class MemoryStore:
    """Runs kept in dictionaries; gone with the process."""

    def __init__(self) -> None:
        self._runs: dict[str, RunInfo] = {}
        self._journals: dict[str, list[Entry]] = {}
        self._cache: dict[str, tuple[str, float]] = {}
        self._inbox: list[tuple[str, Posted]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryStore runs={len(self._runs)}>"

    @property
    def location(self) -> str:
        return "<memory>"

    @property
    def durable(self) -> bool:
        return False

    def _check(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")

    async def create_run(self, run: RunInfo) -> None:
        self._check()
        if run.run_id in self._runs:
            raise StoreError(f"a run {run.run_id!r} exists already")
        self._runs[run.run_id] = copy.deepcopy(run)
        self._journals[run.run_id] = []

    async def update_run(self, run_id: str, **fields: object) -> None:
        self._check()
        run = self._runs[pick_run(run_id, list(self._runs), self.location)]
        unknown = [n for n in fields if n == "run_id" or not hasattr(run, n)]
        if unknown:
            raise StoreError(f"cannot update {', '.join(unknown)} of a run")
        for name, value in fields.items():
            setattr(run, name, copy.deepcopy(value))

    async def append(self, run_id: str, entries: Sequence[Entry]) -> None:
        self._check()
        journal = self._journals.get(run_id)
        if journal is None:
            raise RunNotFound(f"no run {run_id!r} in {self.location}")
        last = journal[-1].seq if journal else 0
        for e in entries:
            if e.seq <= last:
                raise StoreError(f"run {run_id}: journal entry {e.seq} is not after {last}")
            last = e.seq
        journal.extend(entries)

    async def get_run(self, run_id: str) -> RunInfo:
        self._check()
        return copy.deepcopy(self._runs[pick_run(run_id, list(self._runs), self.location)])

    async def list_runs(self, *, limit: int = 50, workflow: str | None = None) -> list[RunInfo]:
        self._check()
        runs = [r for r in self._runs.values() if workflow is None or r.workflow == workflow]
        runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return [copy.deepcopy(r) for r in runs[:limit]]

    async def entries(self, run_id: str, *, after: int = 0) -> list[Entry]:
        self._check()
        journal = self._journals[pick_run(run_id, list(self._runs), self.location)]
        return [e for e in journal if e.seq > after]

    async def cache_get(self, key: str) -> tuple[str, float] | None:
        self._check()
        return self._cache.get(key)

    async def cache_put(self, key: str, output: str, stored_at: float) -> None:
        self._check()
        self._cache[key] = (output, stored_at)

    async def post(self, run_id: str, name: str, data: str, source: str, sent_at: float) -> int:
        self._check()
        await self.get_run(run_id)  # it must exist
        posted = Posted(len(self._inbox) + 1, name, data, source, sent_at)
        self._inbox.append((run_id, posted))
        return posted.id

    async def inbox(self, run_id: str, after: int = 0) -> list[Posted]:
        self._check()
        return [p for r, p in self._inbox[after:] if r == run_id]

    async def close(self) -> None:
        self._closed = True
