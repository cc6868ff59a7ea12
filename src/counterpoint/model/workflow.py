"""The workflow model: the objects the YAML loader and the Python builder both produce.

The models check types and shapes (pydantic); the relations between parts (agents that
exist, dependencies, cycles, references) are checked by :mod:`counterpoint.model.validate`,
which can report every mistake with its position.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from counterpoint.durations import parse_duration
from counterpoint.model.windows import Window, as_windows, parse_timezone

if TYPE_CHECKING:
    from counterpoint.graph.dag import Graph
    from counterpoint.model.compile import Plan

__all__ = [
    "AgentSpec",
    "Budget",
    "CachePolicy",
    "Conflicts",
    "ContextPolicy",
    "Duration",
    "GuardPolicy",
    "InputSpec",
    "Item",
    "ParallelBlock",
    "Phase",
    "PhasesBlock",
    "Pool",
    "Quality",
    "RateLimit",
    "RecoveryOption",
    "Resources",
    "RetryPolicy",
    "RollbackPolicy",
    "SequenceBlock",
    "Step",
    "StepDefaults",
    "SyncPoint",
    "Trigger",
    "Validation",
    "Window",
    "Workflow",
]

STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def _duration(value: object) -> float:
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; accepts ``250ms``, ``1.5s``, ``2m``, ``1h30m`` or a number of seconds."""


def _step_id(value: object) -> object:
    if isinstance(value, str) and not STEP_ID.fullmatch(value):
        raise ValueError(
            f"bad step id {value!r}: use letters, digits, '_' and '-', starting with a letter"
            " or '_'"
        )
    return value


StepId = Annotated[str, BeforeValidator(_step_id)]


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class RetryPolicy(_Model):
    """How often a failed step is tried again, and how long to wait in between.

    The n-th retry waits ``min(backoff * factor**(n-1), max_backoff)``, shortened by a random
    fraction of up to ``jitter`` so that many retries do not fall in step.
    """

    max: int = Field(0, ge=0, description="retries after the first attempt")
    backoff: Duration = 1.0
    factor: float = Field(2.0, ge=1.0)
    max_backoff: Duration = 60.0
    jitter: float = Field(0.5, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _from_count(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"max": value}
        return value

    def delay(self, retry: int, random: float) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); ``random`` in [0, 1)."""
        base = min(self.backoff * self.factor ** (retry - 1), self.max_backoff)
        return base * (1.0 - self.jitter * random)


class RecoveryOption(_Model):
    """One way to recover a step that failed for good, tried in the order listed:
    ``retry`` (``times``, with the timeout multiplied by ``timeout_factor``), ``alternative``
    (run ``agent`` instead), ``skip`` (a non-critical step: its dependents go on without its
    output), ``escalate`` (ask a person: the run pauses with the error and its impact;
    approved, the step runs again; ``timeout`` then fail), ``rollback`` (the compensations
    of completed steps run in reverse order, as a saga, and the step fails)."""

    kind: Literal["retry", "alternative", "skip", "escalate", "rollback"]
    times: int = Field(1, ge=1)
    timeout_factor: float | None = Field(None, gt=0)
    agent: str | None = None
    timeout: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, str):
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value and len(value) == 1:
            ((kind, body),) = value.items()
            if kind == "alternative" and isinstance(body, str):
                return {"kind": kind, "agent": body}
            if isinstance(body, dict):
                return {"kind": kind, **body}
            if body is True or body is None:
                return {"kind": kind}
        return value

    @model_validator(mode="after")
    def _complete(self) -> RecoveryOption:
        if self.kind == "alternative" and not self.agent:
            raise ValueError("alternative: name the agent to run instead")
        return self


def _options(value: object) -> object:
    return [value] if isinstance(value, str | dict) else value


Recovery = Annotated[tuple[RecoveryOption, ...], BeforeValidator(_options)]


class StepDefaults(_Model):
    """Values every step gets unless it says otherwise."""

    retries: RetryPolicy = RetryPolicy()
    timeout: Duration | None = None
    estimate: Duration | None = None
    recovery: Recovery = ()


class InputSpec(_Model):
    """A workflow input. A plain value in YAML (``repo: .``) is shorthand for its default."""

    type: Literal["string", "integer", "number", "boolean", "object", "array", "any"] = "any"
    default: JsonValue = None
    required: bool | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_default(cls, value: object) -> object:
        if not isinstance(value, dict):
            return {"default": value}
        return value

    @field_validator("default")
    @classmethod
    def _default_has_the_type(cls, value: JsonValue, info: ValidationInfo) -> JsonValue:
        kind = info.data.get("type", "any")
        if value is not None and not has_type(value, kind):
            shown = "true" if value is True else "false" if value is False else repr(value)
            raise ValueError(f"default should be {kind}, got {shown}")
        return value

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has this input's type."""
        return has_type(value, self.type)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def has_type(value: object, kind: str) -> bool:
    """Whether ``value`` is of the input type ``kind`` (``integer``, ``string``, ``any``...)."""
    if kind == "any":
        return True
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


class CachePolicy(_Model):
    """Reuse an agent's outputs: keyed by the agent (its definition and ``version``) and a
    hash of the step's input and upstream outputs; entries older than ``ttl`` are not used."""

    ttl: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if value is True:
            return {}
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return {"ttl": value}
        return value


class AgentSpec(_Model):
    """An agent definition: its ``kind`` and the kind's own options.

    In YAML the options sit beside ``kind`` (``{kind: program, argv: [...]}``); each kind checks
    its options. From Python, ``options`` may also hold objects YAML cannot, such as a function.
    """

    kind: str
    description: str | None = None
    input_schema: dict[str, JsonValue] | None = Field(
        None, description="JSON Schema of what this agent accepts (checked at handoffs)"
    )
    version: str | None = Field(None, description="change it to stop using cached outputs")
    cache: CachePolicy | None = None
    idempotent: bool = Field(
        False,
        description="two attempts at once are safe: a flaky agent's steps may race a second "
        "attempt of themselves (the resource-aware pattern)",
    )
    options: dict[str, object] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, value: object) -> object:
        if isinstance(value, dict) and "options" not in value:
            own = {"kind", "description", "input_schema", "version", "cache", "idempotent"}
            options = {k: v for k, v in value.items() if k not in own}
            return {k: v for k, v in value.items() if k in own} | {"options": options}
        return value


_AMOUNT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")
_UNITS = {
    "": 1.0,
    "k": 1e3,
    "m": 1e6,
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2.0**10,
    "mib": 2.0**20,
    "gib": 2.0**30,
    "tib": 2.0**40,
}
_INTERVALS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
}


def parse_amount(value: object) -> float:
    """``2``, ``1.5``, ``4GiB``, ``512MiB``, ``90k``: a non-negative quantity."""
    if isinstance(value, bool):
        raise ValueError(
            f"bad amount {str(value).lower()}: write a number, or one with a unit (4GiB)"
        )
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"bad amount {value}: write a finite number")
        if value < 0:
            raise ValueError(f"bad amount {value}: it cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _AMOUNT.fullmatch(value)
        if m and m.group(2).lower() in _UNITS:
            return float(m.group(1)) * _UNITS[m.group(2).lower()]
    raise ValueError(
        f"bad amount {value!r}: write a number, or one with a unit (k, M, KB, MB, GB, KiB, "
        "MiB, GiB)"
    )


Amount = Annotated[float, BeforeValidator(parse_amount)]


def _demand(value: object) -> object:
    if isinstance(value, dict):
        return {k: parse_amount(v) for k, v in value.items()}
    return parse_amount(value)


DemandAmount = Annotated[float | dict[str, float], BeforeValidator(_demand)]
"""An amount (``2``, ``4GiB``) or one per dimension (``{cpu: 2, memory: 4GiB}``)."""


def parse_rate(value: object) -> tuple[float, float]:
    """``500/min``, ``10/s``, ``90k/min``: (amount, interval in seconds)."""
    if isinstance(value, str) and "/" in value:
        amount, _, per = value.partition("/")
        per = per.strip()
        count = per.rstrip("abcdefghijklmnopqrstuvwxyz") if per[:1].isdigit() else ""
        unit = per[len(count) :].strip() if count else per
        try:
            n = parse_amount(amount.strip())
        except ValueError:
            n = -1.0
        seconds = _INTERVALS.get(unit, 0.0) * (float(count) if count else 1.0)
        if n > 0 and seconds > 0:
            return n, seconds
    raise ValueError(f"bad rate {value!r}: write an amount per interval (500/min, 10/s, 90k/h)")


_POOL_KEYS = ("description", "available", "overflow", "fair")


class Pool(_Model):
    """A resource with a capacity: a count (``db: 2``) or several weighted dimensions
    (``machine: {cpu: 8, memory: 32GiB}``).

    ``available``: time windows outside which no new work takes from it. ``overflow``: how
    far above its capacity it may go (a soft constraint), used only when waiting would miss
    a deadline. ``fair``: streams competing for it share it by their blocks' ``shares``."""

    capacity: dict[str, Amount]
    available: Annotated[tuple[Window, ...], BeforeValidator(as_windows)] = ()
    overflow: dict[str, Amount] = Field(default_factory=dict)
    fair: bool = False
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return {"capacity": {"slots": value}}
        if isinstance(value, dict) and "capacity" not in value:
            extra = {k: v for k, v in value.items() if k not in _POOL_KEYS}
            return {"capacity": extra, **{k: value[k] for k in _POOL_KEYS if k in value}}
        return value

    @field_validator("capacity", mode="before")
    @classmethod
    def _one_capacity(cls, value: object) -> object:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return {"slots": value}
        return value

    @model_validator(mode="after")
    def _overflow_dims(self) -> Pool:
        for dim in self.overflow:
            if dim not in self.capacity:
                have = ", ".join(self.capacity)
                raise ValueError(f"overflow of {dim!r}, which the pool does not have ({have})")
        return self

    @field_validator("overflow", mode="before")
    @classmethod
    def _one_overflow(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, dict) or value is None:
            return value or {}
        capacity = info.data.get("capacity") or {}
        if len(capacity) != 1:
            raise ValueError("give the overflow per dimension ({cpu: 2}) when the pool has several")
        return {next(iter(capacity)): value}


class RateLimit(_Model):
    """At most an amount per interval in each dimension (``requests: 500/min``, ``tokens:
    90k/min``), over any sliding window; with ``burst``, a token bucket of that size instead."""

    limits: dict[str, tuple[float, float]]  # dimension -> (amount, interval s)
    burst: dict[str, Amount] = Field(default_factory=dict)
    available: Annotated[tuple[Window, ...], BeforeValidator(as_windows)] = ()
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, str):
            return {"limits": {"requests": parse_rate(value)}}
        if isinstance(value, dict) and "limits" not in value:
            limits = {
                k: parse_rate(v)
                for k, v in value.items()
                if k not in ("burst", "description", "available")
            }
            burst = value.get("burst", {})
            if isinstance(burst, int | float | str) and not isinstance(burst, bool):
                if len(limits) != 1:
                    raise ValueError(
                        "burst: give it per dimension ({requests: 50, tokens: 20k}) when the "
                        "limit has several"
                    )
                burst = {next(iter(limits)): burst}
            out: dict[str, object] = {"limits": limits, "burst": burst}
            for key in ("description", "available"):
                if key in value:
                    out[key] = value[key]
            return out
        return value


class Budget(_Model):
    """An amount for the whole run (cost, tokens); when it is spent no new step starts, the
    running ones finish, and the run ends ``paused`` (resumable) or ``failed``."""

    limit: Amount
    when_spent: Literal["pause", "fail"] = "pause"
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return {"limit": value}
        return value


def _regexes(value: tuple[str, ...], what: str) -> tuple[str, ...]:
    for p in value:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{what}: {p!r} is not a regular expression: {exc}") from None
        if re.fullmatch(p, ""):
            raise ValueError(f"{what}: {p!r} matches empty text")
    return value


class AgentRules(_Model):
    """Agents the policy allows (names, or ``kind:KIND``; empty: any) and denies."""

    allow: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    deny: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()


class ProgramRules(_Model):
    """Programs program agents may run (their first argv element's file name; empty: any)."""

    allow: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()


class OutputRules(_Model):
    """What no step's output may hold: text matching ``forbid`` patterns (on its JSON
    text), more than ``max_bytes``."""

    forbid: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    max_bytes: int | None = Field(None, ge=1)

    @field_validator("forbid")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _regexes(value, "forbid")


class GuardPolicy(_Model):
    """The policy guardian (``mode``: off, advisory, mandatory): agents and programs allowed,
    output rules, steps whose ``risk`` is above ``approval_above`` approved by a person
    first; and ``redact``, regular expressions whose matches are secrets (besides the values
    of KEY/TOKEN/SECRET/PASSWORD environment variables), never written to the journal or
    shown (in every mode)."""

    mode: Literal["off", "advisory", "mandatory"] = "off"
    agents: AgentRules = AgentRules()
    programs: ProgramRules = ProgramRules()
    outputs: OutputRules = OutputRules()
    approval_above: float | None = Field(None, ge=0, le=1)
    redact: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()

    @field_validator("redact")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _regexes(value, "redact")


class Resources(_Model):
    """What steps share: pools with capacities, rate limits, and budgets for the run;
    ``timezone``: of the windows' times that do not give their own (default UTC)."""

    pools: dict[str, Pool] = Field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    budgets: dict[str, Budget] = Field(default_factory=dict)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        parse_timezone(value)
        return value

    @model_validator(mode="after")
    def _windows_in_order(self) -> Resources:
        zone = parse_timezone(self.timezone)
        for kind, items in (("pool", self.pools), ("rate limit", self.rate_limits)):
            for name, resource in items.items():
                for k, window in enumerate(resource.available):
                    try:
                        window.check_order(zone)
                    except ValueError as exc:
                        raise ValueError(f"{kind} {name!r}, window {k + 1}: {exc}") from None
        return self


class Quality(_Model):
    """A quality standard: a score (a reference into the output, or a function of it) that
    must reach a threshold, or a predicate that must hold."""

    score: str | None = Field(None, description="${{ output.KEY }} or module:function")
    at_least: float | None = None
    check: str | None = Field(None, description="module:function returning true or a reason")


class Validation(_Model):
    """The checkpoint at a handoff (or a phase gate): what an output must be to go on."""

    required: tuple[str, ...] = ()
    json_schema: dict[str, JsonValue] | None = Field(None, alias="schema")
    model: str | None = Field(None, description="module:Model, a pydantic model")
    quality: Quality | None = None
    blocking_errors: bool = Field(
        True, description="fail when the output reports a non-empty `blocking_errors` list"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Step(_Model):
    """One unit of work: an agent called with an input once the steps it needs are done."""

    id: StepId
    agent: str
    needs: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    input: JsonValue = None
    estimate: Duration | None = None
    retries: RetryPolicy | None = None
    timeout: Duration | None = None
    description: str | None = None
    validate_: Validation | None = Field(None, alias="validate")
    uses: dict[str, DemandAmount] = Field(default_factory=dict)
    cache: bool | None = Field(None, description="false: never use the agent's cache here")
    race: tuple[str, ...] = Field(
        (), description="alternative agents raced against `agent`: the first valid result wins"
    )
    priority: int = Field(0, description="higher starts first, before any rule decides")
    deadline: Duration | None = Field(
        None, description="finish within this long of the run's start (pools may overflow)"
    )
    recovery: Recovery | None = Field(None, description="what to try when it fails for good")
    critical: bool = Field(True, description="false: recovery may skip it")
    risk: float = Field(
        0.0, ge=0, le=1, description="above the policy's approval_above: approved first"
    )
    compensate: str | None = Field(None, description="the agent that undoes it (rollback)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SyncPoint(_Model):
    """A named milestone of a parallel block: every listed stream reaches its step in
    ``after`` before any of them goes past it. Streams not listed never wait."""

    streams: tuple[str, ...]
    after: dict[str, str]


class Conflicts(_Model):
    """What to do when streams produce the same key with different values."""

    default: Literal["priority", "merge", "last", "escalate"] = "escalate"
    keys: dict[str, Literal["priority", "merge", "last", "escalate"]] = Field(default_factory=dict)
    priority: tuple[str, ...] = Field((), description="streams, the first wins")
    merge: str | None = Field(None, description="module:function(key, values) -> value")


class RollbackPolicy(_Model):
    """How often a sequence may go back to its last validated state after a checkpoint fails."""

    max: int = Field(1, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_count(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"max": value}
        return value


class ContextPolicy(_Model):
    """How big a sequence's accumulated context may grow, and how it is kept small."""

    budget: int | None = Field(None, ge=1, description="bytes of JSON; over it: summarise")
    summarise: str | None = Field(None, description="module:function(context, budget) -> context")
    by_reference: int = Field(
        16384, ge=0, description="values larger than this (JSON bytes) are passed by reference"
    )


Pattern = Literal["sequential", "parallel", "hybrid"]


class _Block(_Model):
    id: StepId
    needs: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    description: str | None = None


class SequenceBlock(_Block):
    """Sequential: each item runs after the one before and gets a handoff package."""

    steps: tuple[Item, ...] = Field(min_length=1)
    gate: Validation | None = None
    rollback: RollbackPolicy | None = None
    context: ContextPolicy | None = None


class ParallelBlock(_Block):
    """Parallel: named streams (each a sequence) run at once; or plain independent steps.
    ``pattern: sequential`` fixes this part's coordination: its steps run one at a time (in
    the order the run's rule gives), whatever pattern the run uses."""

    pattern: Literal["parallel", "sequential"] = "parallel"
    steps: tuple[Item, ...] = ()
    streams: dict[str, tuple[Item, ...]] = Field(default_factory=dict)
    sync_points: dict[str, SyncPoint] = Field(default_factory=dict)
    conflicts: Conflicts = Conflicts()
    shares: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    gate: Validation | None = None


class Phase(_Model):
    """One phase of a hybrid block, with its own pattern."""

    id: StepId
    pattern: Pattern = "hybrid"
    description: str | None = None
    steps: tuple[Item, ...] = ()
    streams: dict[str, tuple[Item, ...]] = Field(default_factory=dict)
    sync_points: dict[str, SyncPoint] = Field(default_factory=dict)
    conflicts: Conflicts = Conflicts()
    shares: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    gate: Validation | None = None


class PhasesBlock(_Block):
    """Hybrid: phases in order, each gated; ``lookahead`` lets a next phase's steps that
    declare their own needs start as soon as those are done."""

    phases: tuple[Phase, ...] = Field(min_length=1)
    lookahead: bool = False


class SequenceItem(_Model):
    sequence: SequenceBlock


class ParallelItem(_Model):
    parallel: ParallelBlock


class PhasesItem(_Model):
    phases: PhasesBlock


def _item_kind(value: object) -> str:
    if isinstance(value, dict):
        for key in ("sequence", "parallel", "phases"):
            if key in value:
                return f"@{key}"
        return "@step"
    if isinstance(value, SequenceItem):
        return "@sequence"
    if isinstance(value, ParallelItem):
        return "@parallel"
    if isinstance(value, PhasesItem):
        return "@phases"
    return "@step"


Item = Annotated[
    Annotated[Step, Tag("@step")]
    | Annotated[SequenceItem, Tag("@sequence")]
    | Annotated[ParallelItem, Tag("@parallel")]
    | Annotated[PhasesItem, Tag("@phases")],
    Discriminator(_item_kind),
]
"""An item of a list of steps: a step, or a construct holding more items."""


class Trigger(_Model):
    """On an event (whose data meet a condition), start steps that wait for it, or end
    the run."""

    on: str = Field(description="the event's name; '*' for any")
    when: str | None = Field(None, description="a condition on the event (event.data.KEY ...)")
    run: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    end: bool = Field(False, description="end the run: nothing new starts, running steps finish")
    use: dict[str, str] = Field(
        default_factory=dict, description="step -> agent: steps not started yet change agent"
    )
    instruct: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        (), description="steps that get the event's direction (or text) as an instruction"
    )
    prioritise: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        (), description="steps that go first from now on"
    )
    add: tuple[Step, ...] = Field((), description="new steps added to the running workflow")
    description: str | None = None

    @model_validator(mode="after")
    def _does_something(self) -> Trigger:
        if not (self.run or self.end or self.use or self.instruct or self.prioritise or self.add):
            raise ValueError(
                "a trigger needs `run` (steps to start), `add` (new steps), `end: true`, "
                "`use`, `instruct` or `prioritise`"
            )
        return self

    @field_validator("when")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            from counterpoint.events.conditions import compile_condition

            compile_condition(value)
        return value


class Workflow(_Model):
    """A named set of agents and the steps that use them.

    Build one with :func:`counterpoint.load` (YAML) or :class:`counterpoint.WorkflowBuilder`;
    both check it the same way and give equal objects.
    """

    name: str
    description: str | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
    defaults: StepDefaults = StepDefaults()
    max_concurrency: int | None = Field(None, ge=1)
    pattern: (
        Literal["sequential", "parallel", "hybrid", "event-driven", "resource-aware"] | None
    ) = Field(None, description="fix the coordination pattern (default: selected per run)")
    deadline: Duration | None = Field(
        None, description="finish the run within this long (pools may overflow to make it)"
    )
    resources: Resources = Resources()
    policy: GuardPolicy = GuardPolicy()
    triggers: tuple[Trigger, ...] = ()
    items: tuple[Item, ...] = Field(alias="steps")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("items")
    @classmethod
    def _some_steps(cls, items: tuple[Item, ...]) -> tuple[Item, ...]:
        if not items:
            raise ValueError("a workflow needs at least one step")
        return items

    _source: str = PrivateAttr("<python>")
    _graph: Graph | None = PrivateAttr(None)
    _text: str | None = PrivateAttr(None)  # the YAML it was loaded from
    _plan: Plan | None = PrivateAttr(None)
    _demands: list[Any] | None = PrivateAttr(None)  # resource demands, compiled at validation

    @property
    def plan(self) -> Plan:
        """The items compiled to one flat list of steps (constructs add their join steps),
        with where each came from and the structure of the patterns."""
        if self._plan is None:
            from counterpoint.model.compile import compile_items

            self._plan = compile_items(self.items)
        return self._plan

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step the engine runs: the workflow's own, in the order written (constructs
        included), and one join step per construct, which completes it."""
        return self.plan.steps

    def __eq__(self, other: object) -> bool:
        """Equal when the definitions are: where a workflow came from does not count."""
        if not isinstance(other, Workflow):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # holds dicts: not hashable

    @property
    def graph(self) -> Graph:
        """The dependency graph of the steps (built once; the workflow is immutable)."""
        if self._graph is None:
            from counterpoint.graph.dag import Graph

            self._graph = Graph.from_workflow(self)
        return self._graph

    @property
    def text(self) -> str | None:
        """The YAML text the workflow was loaded from (``None`` when built in Python)."""
        return self._text

    @property
    def source(self) -> str:
        """The file the workflow was loaded from, or ``<python>``."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Where relative paths and Python agent modules are looked up: the file's folder."""
        if self._source.startswith("<"):
            return Path.cwd()
        return Path(self._source).resolve().parent

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``; raises ``KeyError``."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


for _model in (
    SequenceBlock,
    ParallelBlock,
    Phase,
    SequenceItem,
    ParallelItem,
    PhasesItem,
    Workflow,
):
    _model.model_rebuild()
