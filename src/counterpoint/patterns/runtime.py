"""What the engine needs, while it runs, from a workflow's constructs.

- **Join steps** complete a construct: a sequence's (or phase's) output is its last item's;
  a parallel block's is its streams' outputs merged (conflicts resolved as declared), then
  its gate is checked.
- **Handoff packages** go to the items of a sequence: the previous result, all results so far,
  the accumulated context (mapping outputs merged, each key kept once), the validation status
  of the last checkpoint, and the errors of earlier attempts (and of a rollback) as feedback.
- **Checkpoints** (``validate:``) run on a step's output before anything downstream sees it.
- **Rollback**: when a sequence item fails for good, the sequence may go back to its last
  validated state: the context snapshot from before the previous item is restored and the
  previous item runs again, with the failure as feedback (at most ``rollback.max`` times).
- **Streams**: their share of the concurrency, and their progress.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.python import import_function
from counterpoint.errors import StepFailed
from counterpoint.graph.dag import Graph
from counterpoint.model.compile import Part, Plan
from counterpoint.model.workflow import Step, Workflow
from counterpoint.patterns.validation import Checkpoint, CheckpointFailed

__all__ = ["Handoff", "PatternRuntime"]


@dataclass(frozen=True, slots=True)
class Handoff:
    """What an item of a sequence gets from the items before it (``ctx.handoff``)."""

    sequence: str
    position: int  # 0 for the first item
    previous: str | None
    previous_output: object
    results: Mapping[str, object]  # id -> output, every earlier item of the sequence
    context: Mapping[str, object]  # the mapping outputs so far, merged (later keys win)
    validation: Mapping[str, object]  # {"checkpoint": id, "checked": bool, "passed": True}
    errors: tuple[str, ...] = ()  # earlier attempts' errors, and a rollback's reason

    def resolve(self, value: object) -> object:
        """A context value itself: large values are in the context by reference
        (``"${{ steps.ID.output.KEY }}"``); this returns what it refers to."""
        if isinstance(value, str) and value.startswith(_REF_PREFIX) and value.endswith(" }}"):
            step, _, key = value[len(_REF_PREFIX) : -3].partition(".output.")
            out = self.results.get(step)
            if isinstance(out, dict) and key in out:
                return out[key]
        return value


_REF_PREFIX = "${{ steps."


@dataclass(slots=True)
class _Sequence:
    part: Part
    members: list[int]  # step indexes of its items (a construct item: its join step)
    snapshots: list[dict[str, object]]  # context before item k
    rollbacks: int = 0
    position: dict[str, int] = field(default_factory=dict)  # item id -> k


@dataclass(slots=True)
class _Stream:
    part: str
    name: str
    steps: list[int]
    done: int = 0
    cap: int | None = None
    running: int = 0
    finished: set[int] = field(default_factory=set)


class PatternRuntime:
    """Built by the engine for a workflow with constructs or checkpoints."""

    def __init__(
        self,
        workflow: Workflow,
        graph: Graph,
        base_dir: Path,
        outputs: list[object],
        end_time: Callable[[int], float | None],
        max_concurrency: int | None,
    ) -> None:
        self.plan: Plan = workflow.plan
        self.graph = graph
        self.outputs = outputs
        self._end_time = end_time
        index = graph.index
        steps = workflow.steps
        self.checkpoints: list[Checkpoint | None] = [
            Checkpoint.build(f"checkpoint after {s.id!r}", s.validate_, base_dir)
            if s.validate_ is not None
            else None
            for s in steps
        ]
        self.gates: dict[int, Checkpoint] = {}
        self.sequences: dict[str, _Sequence] = {}
        self.seq_of: dict[int, tuple[_Sequence, int]] = {}
        self.streams: list[_Stream] = []
        self.stream_of: dict[int, _Stream] = {}
        self.feedback: dict[int, list[str]] = {}
        self.readiness: dict[int, tuple[str, str, jsonschema.protocols.Validator]] = {}
        self.summarisers: dict[str, Callable[..., object]] = {}
        self._events: list[tuple[int, str, dict[str, object]]] = []
        for part in self.plan.parts.values():
            if part.gate is not None:
                self.gates[index[part.id]] = Checkpoint.build(
                    f"gate of {part.kind} {part.id!r}", part.gate, base_dir
                )
            if part.pattern == "sequential" and part.kind in ("sequence", "phase"):
                seq = _Sequence(part, [index[m] for m in part.members], [{}])
                seq.position = {m: k for k, m in enumerate(part.members)}
                self.sequences[part.id] = seq
                for k, i in enumerate(seq.members):
                    self.seq_of[i] = (seq, k)
                    if k + 1 < len(seq.members):  # integration readiness of the next agent
                        nxt = steps[seq.members[k + 1]]
                        spec = workflow.agents.get(nxt.agent)
                        if spec is not None and spec.input_schema is not None:
                            kind = jsonschema.validators.validator_for(spec.input_schema)
                            self.readiness[i] = (nxt.id, nxt.agent, kind(spec.input_schema))
                policy = part.context
                if policy is not None and policy.summarise:
                    self.summarisers[part.id] = import_function(policy.summarise, base_dir)
            total_share = sum(part.shares.values())
            for name, ids in part.streams.items():
                stream = _Stream(part.id, name, [index[s] for s in _leaves(ids, self.plan)])
                share = part.shares.get(name)
                if share and max_concurrency and total_share:
                    stream.cap = max(1, max_concurrency * share // total_share)
                self.streams.append(stream)
                for i in stream.steps:
                    self.stream_of[i] = stream
        self._joins = {index[p.id]: p for p in self.plan.parts.values()}
        # parallel blocks fixed to one step at a time: (their steps, 1)
        self.one_at_a_time: list[list[int]] = [
            [index[s] for s in _leaves(list(part.members), self.plan) if s not in self.plan.parts]
            for part in self.plan.parts.values()
            if part.one_at_a_time
        ]

    def capped(self, n: int) -> tuple[list[int] | None, list[int | None]]:
        """Groups of steps whose running steps are capped (a group per step, -1 for none, and
        each group's cap): streams with shares, and parallel blocks fixed to one step at a
        time (the outermost wins: it holds the inner ones)."""
        groups: list[int] | None = None
        caps: list[int | None] = []
        if any(s.cap for s in self.streams):
            groups = [-1] * n
            for g, stream in enumerate(self.streams):
                caps.append(stream.cap)
                for i in stream.steps:
                    groups[i] = g
        for members in sorted(self.one_at_a_time, key=len):
            if groups is None:
                groups = [-1] * n
            caps.append(1)
            for i in members:
                groups[i] = len(caps) - 1
        return groups, caps

    def add_step(self, step: Step, base_dir: Path) -> None:
        """A step added to the running workflow (outside every construct)."""
        self.checkpoints.append(
            Checkpoint.build(f"checkpoint after {step.id!r}", step.validate_, base_dir)
            if step.validate_ is not None
            else None
        )

    # --- agents for join steps ----------------------------------------------------------------

    def join_agent(self, i: int) -> Agent:
        part = self._joins[i]
        gate = self.gates.get(i)
        merge = _merger(part, self._end_time, self.graph)

        async def join(ctx: StepContext) -> object:
            output = merge(ctx)
            if gate is not None:
                try:
                    gate.check(output)
                except CheckpointFailed as exc:
                    raise StepFailed(str(exc), retryable=False) from None
            return output

        return join

    def is_join(self, i: int) -> bool:
        return i in self._joins

    # --- sequences: handoffs, checkpoints, rollback -------------------------------------------

    def handoff(self, i: int, errors: list[str]) -> Handoff | None:
        found = self.seq_of.get(i)
        if found is None:
            return None
        seq, k = found
        ids = self.graph.ids
        prev = seq.members[k - 1] if k else None
        return Handoff(
            sequence=seq.part.id,
            position=k,
            previous=ids[prev] if prev is not None else None,
            previous_output=self.outputs[prev] if prev is not None else None,
            results=_Results(self, seq, k),
            context=seq.snapshots[k] if k < len(seq.snapshots) else seq.snapshots[-1],
            validation=(
                {
                    "checkpoint": ids[prev],
                    "checked": self.checkpoints[prev] is not None or prev in self.readiness,
                    "passed": True,
                }
                if prev is not None
                else {}
            ),
            errors=(*self.feedback.get(i, ()), *errors),
        )

    def looks_at(self, i: int) -> bool:
        """Whether ``check`` reads step ``i``'s output (a checkpoint or the next input schema)."""
        return self.checkpoints[i] is not None or i in self.readiness

    def check(self, i: int, output: object) -> str | None:
        """The reason ``output`` of step ``i`` fails its checkpoint (or the next agent's
        input schema), or ``None``."""
        cp = self.checkpoints[i]
        if cp is not None:
            try:
                cp.check(output)
            except CheckpointFailed as exc:
                return str(exc)
        ready = self.readiness.get(i)
        if ready is not None:
            next_id, agent, schema = ready
            errors = [
                f"{'/'.join(map(str, e.absolute_path)) or 'the output'}: {e.message}"
                for e in schema.iter_errors(output)  # type: ignore[arg-type]
            ]
            if errors:
                return (
                    f"integration readiness: agent {agent!r} of the next step {next_id!r} "
                    f"does not accept this output: {'; '.join(errors)}"
                )
        return None

    def succeeded(self, i: int, output: object) -> None:
        """Keep the sequence's context snapshot for the item after ``i``: the outputs so far,
        merged (each key once), large values by reference, within the context budget."""
        found = self.seq_of.get(i)
        if found is None:
            return
        seq, k = found
        before = seq.snapshots[k] if k < len(seq.snapshots) else seq.snapshots[-1]
        after = before
        if isinstance(output, dict) and output:
            policy = seq.part.context
            limit = policy.by_reference if policy is not None else 16384
            step_id = self.graph.ids[i]
            added = {key: _by_reference(step_id, key, v, limit) for key, v in output.items()}
            after = {**before, **added}
            if policy is not None and policy.budget is not None:
                after = self._within_budget(i, seq, after, policy.budget)
        del seq.snapshots[k + 1 :]
        seq.snapshots.append(after)

    def _within_budget(
        self, i: int, seq: _Sequence, context: dict[str, object], budget: int
    ) -> dict[str, object]:
        size = len(json.dumps(context, default=repr))
        if size <= budget:
            return context
        summarise = self.summarisers.get(seq.part.id)
        if summarise is None:
            self._events.append((i, "context-over-budget", {"bytes": size, "budget": budget}))
            return context
        smaller = summarise(dict(context), budget)
        if not isinstance(smaller, dict):
            raise StepFailed(f"{seq.part.id}: the summarise function must return a mapping")
        after = len(json.dumps(smaller, default=repr))
        self._events.append((i, "context-summarised", {"bytes": size, "now": after}))
        return smaller

    def take_events(self) -> list[tuple[int, str, dict[str, object]]]:
        """Events the runtime noted (context summarised...), for the engine to publish."""
        events, self._events = self._events, []
        return events

    def rollback_target(self, i: int, error: str, started: Callable[[int], bool]) -> int | None:
        """The step to run again when step ``i`` failed for good, or ``None``: the previous
        item of its sequence, if the sequence allows another rollback and nothing else has
        used that item's output yet."""
        found = self.seq_of.get(i)
        if found is None:
            return None
        seq, k = found
        policy = seq.part.rollback
        if policy is None or k == 0 or seq.rollbacks >= policy.max:
            return None
        prev = seq.members[k - 1]
        if self.is_join(prev):
            return None  # going back into a construct is not supported
        if any(j != i and started(j) for j in self.graph.succs[prev]):
            return None
        seq.rollbacks += 1
        del seq.snapshots[k:]  # back to the state before the previous item
        self.feedback.setdefault(prev, []).append(
            f"rolled back: {self.graph.ids[i]!r} failed after this step's output: {error}"
        )
        return prev

    # --- streams ------------------------------------------------------------------------------

    def stream(self, i: int) -> _Stream | None:
        return self.stream_of.get(i)

    def stream_done(self, i: int) -> _Stream | None:
        stream = self.stream_of.get(i)
        if stream is not None and i not in stream.finished:
            stream.finished.add(i)
            stream.done += 1
        return stream


class _Results(Mapping[str, object]):
    """The outputs of a sequence's first ``k`` items, read when asked (no copies)."""

    __slots__ = ("_k", "_rt", "_seq")

    def __init__(self, rt: PatternRuntime, seq: _Sequence, k: int) -> None:
        self._rt = rt
        self._seq = seq
        self._k = k

    def __getitem__(self, key: str) -> object:
        k = self._seq.position.get(key)
        if k is None or k >= self._k:
            raise KeyError(key)
        return self._rt.outputs[self._seq.members[k]]

    def __iter__(self) -> Iterator[str]:
        ids = self._rt.graph.ids
        return (ids[m] for m in self._seq.members[: self._k])

    def __len__(self) -> int:
        return self._k


def _by_reference(step_id: str, key: str, value: object, limit: int) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        if not isinstance(value, str) or len(value) <= limit:
            return value
    elif len(json.dumps(value, default=repr)) <= limit:
        return value
    return f"{_REF_PREFIX}{step_id}.output.{key} }}}}"


def _leaves(ids: list[str], plan: Plan) -> list[str]:
    """Every step of a stream, the steps of its constructs included."""
    out: list[str] = []
    for sid in ids:
        out.append(sid)
        part = plan.parts.get(sid)
        if part is not None:
            out.extend(_leaves(part.members, plan))
            for members in part.streams.values():
                out.extend(_leaves(members, plan))
    return list(dict.fromkeys(out))


def _merger(
    part: Part, end_time: Callable[[int], float | None], graph: Graph
) -> Callable[[StepContext], object]:
    if part.pattern == "sequential" or part.kind == "phases":
        last = part.exits[-1] if part.exits else None
        return lambda ctx: ctx.upstream.get(last) if last is not None else None
    sources: dict[str, str] = {}  # name -> step id whose output it is
    if part.streams:
        for name, ids in part.streams.items():
            if ids:
                sources[name] = ids[-1]
    for sid in part.members:
        if sid not in {s for ids in part.streams.values() for s in ids}:
            sources[sid] = sid
    conflicts = part.conflicts
    order = list(conflicts.priority) if conflicts and conflicts.priority else list(sources)
    merge_fn = None

    def merge(ctx: StepContext) -> object:
        nonlocal merge_fn
        values = {name: ctx.upstream.get(sid) for name, sid in sources.items()}
        if not all(isinstance(v, dict) for v in values.values()):
            return values
        merged: dict[str, object] = {}
        claims: dict[str, dict[str, object]] = {}
        for name, value in values.items():
            assert isinstance(value, dict)
            for key, v in value.items():
                claims.setdefault(key, {})[name] = v
        for key, by_source in claims.items():
            distinct = {json.dumps(v, sort_keys=True, default=repr) for v in by_source.values()}
            if len(distinct) == 1:
                merged[key] = next(iter(by_source.values()))
                continue
            strategy = "escalate"
            if conflicts is not None:
                strategy = conflicts.keys.get(key, conflicts.default)
            if strategy == "priority":
                winner = min(by_source, key=lambda n: order.index(n) if n in order else len(order))
                merged[key] = by_source[winner]
            elif strategy == "last":
                index = graph.index
                winner = max(by_source, key=lambda n: end_time(index[sources[n]]) or 0.0)
                merged[key] = by_source[winner]
            elif strategy == "merge":
                if conflicts is None or conflicts.merge is None:
                    raise StepFailed(
                        f"{part.id}: conflicts on {key!r} say merge, but no merge function "
                        "is given (conflicts.merge: module:function)",
                        retryable=False,
                    )
                if merge_fn is None:
                    merge_fn = import_function(conflicts.merge, ctx.base_dir)
                merged[key] = merge_fn(key, dict(by_source))
                winner = "merge"
            else:
                shown = "; ".join(
                    f"{n}: {json.dumps(v, default=repr)}" for n, v in by_source.items()
                )
                raise StepFailed(
                    f"{part.id}: streams disagree on {key!r} ({shown}); say how to resolve it: "
                    "conflicts: {default or keys: priority, merge or last}",
                    retryable=False,
                )
            ctx.emit("conflict-resolved", {"key": key, "strategy": strategy, "winner": winner})
        return merged

    return merge
