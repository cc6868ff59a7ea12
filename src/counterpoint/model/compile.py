"""Constructs compiled to one flat list of steps for the one scheduler.

A ``sequence`` chains its items (each needs the one before); a ``parallel`` block runs its
streams side by side (each stream a sequence), and a sync point adds, to the item after each
listed stream's milestone, needs on the other listed streams' milestones; ``phases`` run in
order, each after the previous phase's gate. Every construct ends in a *join step* with the
construct's id: it needs the construct's last items, carries its output (the last output, or
the streams' outputs merged) and its gate, and is what ``needs: [construct]`` waits for.

Needs given to a construct apply to its first items. Nothing here runs anything: the plan
says which step belongs to which part, so the engine can pass handoff packages, apply
per-stream shares, check gates and report progress per part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from counterpoint.model.workflow import (
    Conflicts,
    ContextPolicy,
    Item,
    ParallelBlock,
    ParallelItem,
    Phase,
    PhasesItem,
    RollbackPolicy,
    SequenceItem,
    Step,
    SyncPoint,
    Validation,
)

__all__ = ["JOIN_AGENT", "Part", "Plan", "compile_items"]

JOIN_AGENT = "@join"
Path = tuple[str | int, ...]


@dataclass(slots=True)
class Part:
    """A construct of the workflow: a sequence, a parallel block, a phases block or a phase."""

    id: str
    kind: str  # sequence, parallel, phases, phase
    pattern: str  # sequential, parallel, hybrid
    parent: str | None
    path: Path
    members: list[str] = field(default_factory=list)  # ids of its items (steps or parts)
    streams: dict[str, list[str]] = field(default_factory=dict)  # stream -> item ids
    exits: list[str] = field(default_factory=list)  # what its join step needs
    gate: Validation | None = None
    rollback: RollbackPolicy | None = None
    conflicts: Conflicts | None = None
    shares: dict[str, int] = field(default_factory=dict)
    sync_points: dict[str, SyncPoint] = field(default_factory=dict)
    lookahead: bool = False
    context: ContextPolicy | None = None
    one_at_a_time: bool = False  # a parallel block whose pattern is fixed to sequential


@dataclass(slots=True)
class Plan:
    """The flat steps (constructs' join steps included) and where each came from."""

    steps: tuple[Step, ...]
    paths: list[Path] | None = None  # None: every item is a step, at ("steps", i)
    declared: list[tuple[str, ...]] | None = None  # needs as written (joins: none)
    parts: dict[str, Part] = field(default_factory=dict)
    part_of: dict[str, str] = field(default_factory=dict)  # step or part id -> its part
    stream_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (part, stream)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def path(self, i: int) -> Path:
        """Where step ``i`` is written (for a join step: its construct)."""
        return ("steps", i) if self.paths is None else self.paths[i]

    def declared_needs(self, i: int) -> tuple[str, ...]:
        return self.steps[i].needs if self.declared is None else self.declared[i]

    def describe(self) -> list[dict[str, object]]:
        """The constructs as data (outermost first, in the order written): for ``plan``."""
        out: list[dict[str, object]] = []
        for part in self.parts.values():
            entry: dict[str, object] = {
                "id": part.id,
                "kind": part.kind,
                "pattern": part.pattern,
                "parent": part.parent,
                "members": list(part.members),
            }
            if part.streams:
                entry["streams"] = {name: list(ids) for name, ids in part.streams.items()}
            if part.sync_points:
                entry["sync_points"] = {
                    name: {"streams": list(sp.streams), "after": dict(sp.after)}
                    for name, sp in part.sync_points.items()
                }
            if part.shares:
                entry["shares"] = dict(part.shares)
            if part.conflicts is not None and part.streams:
                entry["conflicts"] = part.conflicts.model_dump(exclude_defaults=True) or {
                    "default": part.conflicts.default
                }
            if part.gate is not None:
                entry["gate"] = part.gate.model_dump(exclude_defaults=True, by_alias=True)
            if part.rollback is not None:
                entry["rollback"] = part.rollback.max
            if part.kind == "phases":
                entry["lookahead"] = part.lookahead
            out.append(entry)
        order = {p["id"]: k for k, p in enumerate(out)}
        return sorted(out, key=lambda p: (_depth(self, str(p["id"])), order[p["id"]]))


def compile_items(items: Sequence[Item]) -> Plan:
    """The plan of a workflow's items."""
    if all(type(it) is Step for it in items):
        return Plan(tuple(items))  # type: ignore[arg-type]
    return _Compiler().run(items)


def _dedupe(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


class _Compiler:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.paths: list[Path] = []
        self.declared: list[tuple[str, ...]] = []
        self.parts: dict[str, Part] = {}
        self.part_of: dict[str, str] = {}
        self.stream_of: dict[str, tuple[str, str]] = {}
        self.problems: list[tuple[Path, str]] = []

    def run(self, items: Sequence[Item]) -> Plan:
        for i, it in enumerate(items):
            self.item(it, ("steps", i), None, (), ())
        return Plan(
            tuple(self.steps),
            self.paths,
            self.declared,
            self.parts,
            self.part_of,
            self.stream_of,
            self.problems,
        )

    # An item gets ``extra`` needs always, and ``soft`` needs only if it declares none
    # (lookahead: a step that says what it needs may start before the previous phase ends).
    def item(
        self,
        it: Item,
        path: Path,
        parent: str | None,
        extra: Sequence[str],
        soft: Sequence[str],
    ) -> str:
        if isinstance(it, Step):
            needs = _dedupe([*it.needs, *extra, *(() if it.needs else soft)])
            self.steps.append(it if needs == it.needs else it.model_copy(update={"needs": needs}))
            self.paths.append(path)
            self.declared.append(it.needs)
            if parent is not None:
                self.part_of[it.id] = parent
            return it.id
        if isinstance(it, SequenceItem):
            return self.sequence(it, path, parent, extra, soft)
        if isinstance(it, ParallelItem):
            return self.parallel(it.parallel, (*path, "parallel"), parent, extra, soft)
        assert isinstance(it, PhasesItem)
        return self.phases(it, path, parent, extra, soft)

    def part(self, part: Part) -> Part:
        self.parts[part.id] = part
        if part.parent is not None:
            self.part_of[part.id] = part.parent
        return part

    def join(self, part: Part, path: Path) -> str:
        needs = _dedupe(part.exits)
        self.steps.append(Step(id=part.id, agent=JOIN_AGENT, needs=needs, estimate=0.0))
        self.paths.append(path)
        self.declared.append(())
        return part.id

    def chain(
        self,
        items: Sequence[Item],
        path: Path,
        part: Part,
        extra: Sequence[str],
        soft: Sequence[str],
        waits: dict[str, list[str]] | None = None,
    ) -> list[str]:
        """Items one after the other; returns their ids. ``waits``: after this id, the next
        item also needs these (sync points)."""
        ids: list[str] = []
        for k, sub in enumerate(items):
            more: list[str] = []
            if ids and waits:
                more = waits.get(ids[-1], [])
            first = not ids
            endpoint = self.item(
                sub,
                (*path, k),
                part.id,
                [*extra, *more] if first else [ids[-1], *more],
                soft if first else (),
            )
            ids.append(endpoint)
        return ids

    def sequence(
        self,
        it: SequenceItem,
        path: Path,
        parent: str | None,
        extra: Sequence[str],
        soft: Sequence[str],
    ) -> str:
        block = it.sequence
        p = (*path, "sequence")
        part = self.part(
            Part(
                block.id,
                "sequence",
                "sequential",
                parent,
                p,
                gate=block.gate,
                rollback=block.rollback,
                context=block.context,
            )
        )
        ids = self.chain(block.steps, (*p, "steps"), part, [*block.needs, *extra], soft)
        part.members = ids
        part.exits = ids[-1:]
        return self.join(part, p)

    def parallel(
        self,
        block: ParallelBlock | Phase,
        p: Path,
        parent: str | None,
        extra: Sequence[str],
        soft: Sequence[str],
        kind: str = "parallel",
    ) -> str:
        needs = [*getattr(block, "needs", ()), *extra]
        part = self.part(
            Part(
                block.id,
                kind,
                "parallel",
                parent,
                p,
                gate=block.gate,
                conflicts=block.conflicts,
                shares=dict(block.shares),
                sync_points=dict(block.sync_points),
                one_at_a_time=getattr(block, "pattern", "parallel") == "sequential",
            )
        )
        waits = self.sync_waits(block, p)
        for name, items in block.streams.items():
            ids = self.chain(items, (*p, "streams", name), part, needs, soft, waits.get(name))
            part.streams[name] = ids
            part.members.extend(ids)
            part.exits.extend(ids[-1:])
            for sid in ids:
                self.stream_of[sid] = (part.id, name)
        for k, sub in enumerate(block.steps):
            sid = self.item(sub, (*p, "steps", k), part.id, needs, soft)
            part.members.append(sid)
            part.exits.append(sid)
        for name in block.shares:
            if name not in block.streams:
                self.problems.append(((*p, "shares", name), f"{block.id}: no stream {name!r}"))
        if not part.members:
            self.problems.append((p, f"{block.id}: a parallel block needs streams or steps"))
        return self.join(part, p)

    def sync_waits(self, block: ParallelBlock | Phase, p: Path) -> dict[str, dict[str, list[str]]]:
        """stream -> {milestone step: the other listed streams' milestones}."""
        waits: dict[str, dict[str, list[str]]] = {}
        for name, sp in block.sync_points.items():
            where = (*p, "sync_points", name)
            ok = True
            for stream in sp.streams:
                if stream not in block.streams:
                    self.problems.append(
                        ((*where, "streams"), f"sync point {name!r}: no stream {stream!r}")
                    )
                    ok = False
                elif stream not in sp.after:
                    self.problems.append(
                        (
                            (*where, "after"),
                            f"sync point {name!r}: say after which step of {stream!r}",
                        )
                    )
                    ok = False
            for stream, step in sp.after.items():
                if stream not in sp.streams:
                    self.problems.append(
                        (
                            (*where, "after", stream),
                            f"sync point {name!r}: {stream!r} is not in its streams",
                        )
                    )
                    ok = False
                elif stream in block.streams and step not in _ids(block.streams[stream]):
                    self.problems.append(
                        (
                            (*where, "after", stream),
                            f"sync point {name!r}: stream {stream!r} has no step {step!r}",
                        )
                    )
                    ok = False
            if not ok:
                continue
            for stream in sp.streams:
                others = [sp.after[t] for t in sp.streams if t != stream]
                waits.setdefault(stream, {}).setdefault(sp.after[stream], []).extend(others)
        return waits

    def phases(
        self,
        it: PhasesItem,
        path: Path,
        parent: str | None,
        extra: Sequence[str],
        soft: Sequence[str],
    ) -> str:
        block = it.phases
        p = (*path, "phases")
        part = self.part(Part(block.id, "phases", "hybrid", parent, p, lookahead=block.lookahead))
        before: list[str] = [*block.needs, *extra]
        before_soft: Sequence[str] = soft
        for k, phase in enumerate(block.phases):
            pp = (*p, "phases", k)
            hard: Sequence[str]
            loose: Sequence[str]
            if k and block.lookahead:  # steps that say what they need may go early
                hard, loose = [*block.needs, *extra], before
            else:
                hard, loose = before, before_soft
            if phase.pattern == "parallel" or phase.streams:
                self.parallel(phase, pp, block.id, hard, loose, kind="phase")
                self.parts[phase.id].pattern = phase.pattern
            else:
                sub = self.part(
                    Part(phase.id, "phase", phase.pattern, block.id, pp, gate=phase.gate)
                )
                if phase.pattern == "sequential":
                    ids = self.chain(phase.steps, (*pp, "steps"), sub, hard, loose)
                    sub.exits = ids[-1:]
                else:
                    ids = [
                        self.item(s, (*pp, "steps", j), phase.id, hard, loose)
                        for j, s in enumerate(phase.steps)
                    ]
                    sub.exits = list(ids)
                sub.members = ids
                if not ids:
                    self.problems.append((pp, f"phase {phase.id!r} has no steps"))
                self.join(sub, pp)
            part.members.append(phase.id)
            before, before_soft = [phase.id], ()
        part.exits = list(part.members)  # with lookahead a later phase may end first
        return self.join(part, p)


def _depth(plan: Plan, part_id: str) -> int:
    depth = 0
    parent = plan.parts[part_id].parent
    while parent is not None:
        depth += 1
        parent = plan.parts[parent].parent
    return depth


def _ids(items: Sequence[Item]) -> set[str]:
    out: set[str] = set()
    for it in items:
        if isinstance(it, Step):
            out.add(it.id)
        elif isinstance(it, SequenceItem):
            out.add(it.sequence.id)
        elif isinstance(it, ParallelItem):
            out.add(it.parallel.id)
        elif isinstance(it, PhasesItem):
            out.add(it.phases.id)
    return out
