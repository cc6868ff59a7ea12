"""The cache of step outputs, as a run uses it: which steps may take a stored output, the key
of each (agent definition and version, input, upstream outputs), and the lookups."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

from pydantic_core import to_jsonable_python

from counterpoint.backends.base import Completion, Job, Outcome
from counterpoint.errors import CounterpointError
from counterpoint.store.fingerprint import callable_name

if TYPE_CHECKING:
    from counterpoint.scheduler.engine import Engine

__all__ = ["OutputCache"]


class OutputCache:
    """The run's cached steps (step -> TTL), the keys looked up, the outputs to store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ttl = self.policies()
        self.keys: dict[int, str] = {}
        self.puts: list[tuple[str, str]] = []

    def policies(self) -> dict[int, float | None]:
        """Steps whose agent asks for a cache (step -> TTL, None for no limit), when the run
        has a store and the cache is on."""
        engine = self.engine
        if engine.journal is None or not engine.options.cache or engine.virtual:
            return {}
        agents = engine.workflow.agents
        out: dict[int, float | None] = {}
        for i, s in enumerate(engine._steps):
            spec = agents.get(s.agent)
            if spec is not None and spec.cache is not None and s.cache is not False:
                out[i] = spec.cache.ttl
        return out

    def key(self, i: int) -> str:
        """The agent (definition and version), the step's input and its upstream outputs."""
        engine = self.engine
        step = engine._steps[i]
        spec = engine.workflow.agents[step.agent]
        template = engine._templates[i]
        value = template(engine._scope) if template is not None else step.input
        ids = engine.graph.ids
        upstream = {ids[p]: engine.outputs[p] for p in engine.graph.preds[i]}
        agent = to_jsonable_python(spec, fallback=callable_name)
        text = json.dumps(
            [step.agent, agent, value, upstream], sort_keys=True, default=repr, ensure_ascii=False
        )
        return hashlib.sha256(text.encode()).hexdigest()

    async def lookup(self, jobs: list[Job]) -> list[Job]:
        """Complete the jobs whose output is cached (and fresh); return the others."""
        engine = self.engine
        journal = engine.journal
        assert journal is not None
        store = journal.store
        now = time.time()
        todo: list[Job] = []
        for job in jobs:
            i = job.index
            if i not in self.ttl:
                todo.append(job)
                continue
            key = self.keys[i] = self.key(i)
            try:
                found = await store.cache_get(key)
            except CounterpointError:
                found = None
            ttl = self.ttl[i]
            if found is None or (ttl is not None and found[1] + ttl < now):
                todo.append(job)
                continue
            engine.records[i].cached = True
            engine._emit(engine.records[i].id, "cache-hit", {"stored_at": found[1]})
            t = engine.clock.now()
            engine._post(
                Completion(i, job.attempt, Outcome.SUCCEEDED, t, t, output=json.loads(found[0]))
            )
        return todo
