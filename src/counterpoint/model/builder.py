"""Build a workflow in Python; ``build()`` checks it exactly as the YAML loader does."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from counterpoint.durations import parse_duration
from counterpoint.model.load import workflow_from_data
from counterpoint.model.locate import NoPositions
from counterpoint.model.workflow import Workflow

__all__ = ["WorkflowBuilder", "parallel", "phase", "phases", "ref", "sequence", "step"]


def ref(path: str) -> str:
    """``ref("steps.fetch.output.items")`` -> ``"${{ steps.fetch.output.items }}"``."""
    return "${{ " + path + " }}"


class WorkflowBuilder:
    """Collects inputs, agents and steps, then makes a checked :class:`Workflow`.

    >>> b = WorkflowBuilder("hello")
    >>> b.agent("wait", kind="sleep", seconds="10ms")
    >>> b.step("a", agent="wait")
    'a'
    >>> b.step("b", agent="wait", needs=["a"])
    'b'
    >>> b.build().steps[1].needs
    ('a',)
    """

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        max_concurrency: int | None = None,
        deadline: float | str | None = None,
    ) -> None:
        self._data: dict[str, object] = {"name": name}
        if description is not None:
            self._data["description"] = description
        if max_concurrency is not None:
            self._data["max_concurrency"] = max_concurrency
        if deadline is not None:
            self._data["deadline"] = deadline
        self._inputs: dict[str, object] = {}
        self._agents: dict[str, object] = {}
        self._steps: list[dict[str, object]] = []
        self._defaults: dict[str, object] = {}
        self._resources: dict[str, dict[str, object]] = {}
        self._triggers: list[dict[str, object]] = []

    def _resource(self, section: str, name: str, spec: dict[str, object]) -> None:
        self._resources.setdefault(section, {})[name] = spec

    def pool(
        self,
        name: str,
        capacity: float | str | None = None,
        *,
        available: object = None,
        overflow: float | str | Mapping[str, float | str] | None = None,
        fair: bool = False,
        description: str | None = None,
        **dimensions: float | str,
    ) -> None:
        """A pool: ``pool("db", 2)`` or ``pool("machine", cpu=8, memory="32GiB")``;
        ``available``: time windows; ``overflow``: a soft capacity for deadlines; ``fair``:
        streams share it by weight."""
        spec: dict[str, object] = {"capacity": dict(dimensions) if capacity is None else capacity}
        for key, value in (("available", available), ("overflow", overflow)):
            if value is not None:
                spec[key] = value
        if fair:
            spec["fair"] = True
        if description is not None:
            spec["description"] = description
        self._resource("pools", name, spec)

    def rate_limit(
        self,
        name: str,
        rate: str | None = None,
        *,
        burst: float | str | Mapping[str, float | str] | None = None,
        available: object = None,
        description: str | None = None,
        **dimensions: str,
    ) -> None:
        """A rate limit: ``rate_limit("api", "10/s")`` or ``rate_limit("llm",
        requests="500/min", tokens="90k/min")``; ``burst``: a token bucket of that size."""
        spec: dict[str, object] = {"requests": rate} if rate is not None else dict(dimensions)
        for key, value in (("burst", burst), ("available", available)):
            if value is not None:
                spec[key] = value
        if description is not None:
            spec["description"] = description
        self._resource("rate_limits", name, spec)

    def budget(self, name: str, limit: float | str, *, when_spent: str = "pause") -> None:
        """A budget for the whole run (cost, tokens): when spent, the run pauses (or fails)."""
        self._resource("budgets", name, {"limit": limit, "when_spent": when_spent})

    def trigger(
        self,
        on: str,
        *,
        when: str | None = None,
        run: Sequence[str] | str = (),
        add: Sequence[Mapping[str, object]] = (),
        end: bool = False,
        use: Mapping[str, str] | None = None,
        instruct: Sequence[str] | str = (),
        prioritise: Sequence[str] | str = (),
    ) -> None:
        """On an event called ``on`` (whose data meet ``when``): start the held steps in
        ``run``, ``add`` new steps (made with ``step``), ``end`` the run, or adjust steps not
        started (``use`` another agent, ``instruct``, ``prioritise``)."""
        spec: dict[str, object] = {"on": on}
        for key, value in (
            ("when", when),
            ("run", [run] if isinstance(run, str) else list(run)),
            ("add", [dict(a) for a in add]),
            ("end", end),
            ("use", dict(use or {})),
            ("instruct", [instruct] if isinstance(instruct, str) else list(instruct)),
            ("prioritise", [prioritise] if isinstance(prioritise, str) else list(prioritise)),
        ):
            if value:
                spec[key] = value
        self._triggers.append(spec)

    def timezone(self, name: str) -> None:
        """The time zone of windows' times that do not give their own (default UTC)."""
        self._data["resources_timezone"] = name

    def input(
        self,
        name: str,
        *,
        default: object = None,
        type: str = "any",
        required: bool | None = None,
        description: str | None = None,
    ) -> str:
        """Declare a workflow input; returns the reference to it."""
        spec: dict[str, object] = {"type": type, "default": default}
        if required is not None:
            spec["required"] = required
        if description is not None:
            spec["description"] = description
        self._inputs[name] = spec
        return ref(f"inputs.{name}")

    def agent(
        self,
        name: str,
        *,
        kind: str | None = None,
        function: Callable[..., object] | str | None = None,
        **options: object,
    ) -> None:
        """Define an agent: ``agent("fetch", function=fetch)`` or ``agent("x", kind=..., ...)``.

        Passing ``function`` alone defines a ``python`` agent.
        """
        if function is not None:
            options["function"] = function
            kind = kind or "python"
        if kind is None:
            raise TypeError("agent() needs kind=... or function=...")
        self._agents[name] = {"kind": kind, **options}

    def defaults(self, **values: object) -> None:
        """Values every step gets unless it says otherwise (retries, timeout, estimate)."""
        self._defaults.update(values)

    def step(
        self,
        id: str,
        *,
        agent: str,
        needs: Sequence[str] | str = (),
        input: object = None,
        estimate: float | str | None = None,
        retries: int | dict[str, object] | None = None,
        timeout: float | str | None = None,
        description: str | None = None,
        validate: Mapping[str, object] | None = None,
        uses: Mapping[str, object] | None = None,
        priority: int | None = None,
        deadline: float | str | None = None,
        race: Sequence[str] | None = None,
        cache: bool | None = None,
    ) -> str:
        """Add a step; returns its id, so it can be passed to ``needs`` of later steps."""
        self._steps.append(
            step(
                id,
                agent=agent,
                needs=needs,
                input=input,
                estimate=estimate,
                retries=retries,
                timeout=timeout,
                description=description,
                validate=validate,
                uses=uses,
                priority=priority,
                deadline=deadline,
                race=race,
                cache=cache,
            )
        )
        return id

    def add(self, item: Mapping[str, object]) -> str:
        """Add an item made with ``step``, ``sequence``, ``parallel`` or ``phases``; returns
        its id."""
        self._steps.append(dict(item))
        return _item_id(item)

    def output(self, step_id: str, *path: str | int) -> str:
        """The reference to a step's output (or a part of it)."""
        return ref(".".join(["steps", step_id, "output", *map(str, path)]))

    def build(self) -> Workflow:
        """The checked workflow; raises ``WorkflowInvalid`` listing every problem."""
        data = dict(self._data)
        if self._inputs:
            data["inputs"] = self._inputs
        if self._agents:
            data["agents"] = self._agents
        if self._defaults:
            data["defaults"] = self._defaults
        zone = data.pop("resources_timezone", None)
        if self._resources or zone is not None:
            data["resources"] = {**self._resources, **({"timezone": zone} if zone else {})}
        if self._triggers:
            data["triggers"] = self._triggers
        data["steps"] = self._steps
        return workflow_from_data(data, NoPositions())


# --- items for constructs: plain data, the same as the YAML ---------------------------------


def step(
    id: str,
    *,
    agent: str,
    needs: Sequence[str] | str = (),
    input: object = None,
    estimate: float | str | None = None,
    retries: int | Mapping[str, object] | None = None,
    timeout: float | str | None = None,
    description: str | None = None,
    validate: Mapping[str, object] | None = None,
    uses: Mapping[str, object] | None = None,
    priority: int | None = None,
    deadline: float | str | None = None,
    race: Sequence[str] | None = None,
    cache: bool | None = None,
) -> dict[str, object]:
    """A step, as an item of a construct (``sequence("s", step("a", agent="x"), ...)``)."""
    data: dict[str, object] = {"id": id, "agent": agent}
    if needs:
        data["needs"] = [needs] if isinstance(needs, str) else list(needs)
    if input is not None:
        data["input"] = input
    if estimate is not None:
        data["estimate"] = parse_duration(estimate) if isinstance(estimate, str) else estimate
    for key, value in (
        ("retries", retries),
        ("timeout", timeout),
        ("description", description),
        ("validate", validate),
        ("uses", dict(uses) if uses is not None else None),
        ("priority", priority),
        ("deadline", deadline),
        ("race", list(race) if race is not None else None),
        ("cache", cache),
    ):
        if value is not None:
            data[key] = value
    return data


def _item_id(item: Mapping[str, object]) -> str:
    for key in ("sequence", "parallel", "phases"):
        block = item.get(key)
        if isinstance(block, Mapping):
            return str(block["id"])
    return str(item["id"])


def _block(id: str, needs: Sequence[str] | str, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {"id": id}
    if needs:
        data["needs"] = [needs] if isinstance(needs, str) else list(needs)
    data.update({k: v for k, v in fields.items() if v is not None and v not in ({}, [])})
    return data


def sequence(
    id: str,
    *items: Mapping[str, object],
    needs: Sequence[str] | str = (),
    gate: Mapping[str, object] | None = None,
    rollback: int | None = None,
    description: str | None = None,
) -> dict[str, object]:
    """Items one after the other, each with a handoff package from those before."""
    return {
        "sequence": _block(
            id,
            needs,
            steps=[dict(i) for i in items],
            gate=gate,
            rollback=rollback,
            description=description,
        )
    }


def parallel(
    id: str,
    *items: Mapping[str, object],
    streams: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
    sync_points: Mapping[str, Mapping[str, object]] | None = None,
    conflicts: Mapping[str, object] | None = None,
    shares: Mapping[str, int] | None = None,
    needs: Sequence[str] | str = (),
    gate: Mapping[str, object] | None = None,
    description: str | None = None,
) -> dict[str, object]:
    """Independent ``items``, or named ``streams`` (each a sequence) with sync points."""
    return {
        "parallel": _block(
            id,
            needs,
            steps=[dict(i) for i in items],
            streams={k: [dict(i) for i in v] for k, v in (streams or {}).items()},
            sync_points=dict(sync_points or {}),
            conflicts=dict(conflicts) if conflicts else None,
            shares=dict(shares or {}),
            gate=gate,
            description=description,
        )
    }


def phase(
    id: str,
    *items: Mapping[str, object],
    pattern: str = "hybrid",
    streams: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
    sync_points: Mapping[str, Mapping[str, object]] | None = None,
    conflicts: Mapping[str, object] | None = None,
    shares: Mapping[str, int] | None = None,
    gate: Mapping[str, object] | None = None,
    description: str | None = None,
) -> dict[str, object]:
    """One phase of ``phases``: ``pattern`` sequential, parallel or hybrid (a phase holds
    what a parallel block holds, and a pattern)."""
    block = parallel(
        id,
        *items,
        streams=streams,
        sync_points=sync_points,
        conflicts=conflicts,
        shares=shares,
        gate=gate,
        description=description,
    )["parallel"]
    assert isinstance(block, dict)
    return {**block, "pattern": pattern}


def phases(
    id: str,
    *items: Mapping[str, object],
    needs: Sequence[str] | str = (),
    lookahead: bool = False,
    description: str | None = None,
) -> dict[str, object]:
    """Phases in order (made with ``phase``), each after the one before passes its gate."""
    return {
        "phases": _block(
            id,
            needs,
            phases=[dict(i) for i in items],
            lookahead=lookahead or None,
            description=description,
        )
    }
