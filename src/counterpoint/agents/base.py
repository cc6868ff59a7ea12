"""The agent interface: an async callable over a step context."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel

from counterpoint.model.workflow import AgentSpec

if TYPE_CHECKING:
    from counterpoint.events import Event
    from counterpoint.patterns.runtime import Handoff

__all__ = ["Agent", "AgentKind", "EmitFn", "StepContext", "idempotency_key"]

EmitFn = Callable[[str, str, Mapping[str, object]], None]
ChargeFn = Callable[[str, str, Mapping[str, float]], None]
WaitFn = Callable[
    [str, str, "Callable[[Mapping[str, object]], bool] | None", "float | None"],
    "Awaitable[Event]",
]
"""``wait(step_id, event_name, condition, timeout)``: the next matching event of the run."""
"""``charge(step_id, resource, amounts)``: what a step measured it used."""
"""``emit(step_id, event_name, data)``: how a context hands events to the engine."""

_log = logging.getLogger("counterpoint.agent")


def idempotency_key(run_id: str, step_id: str) -> str:
    """The same for every attempt of a step in a run, including attempts after a resume."""
    return hashlib.sha256(f"{run_id}\x00{step_id}".encode()).hexdigest()[:32]


def _no_emit(step_id: str, name: str, data: Mapping[str, object]) -> None:
    return None


@dataclass(slots=True)
class StepContext:
    """What an agent gets for one attempt of one step.

    ``input`` is the step's input with references resolved; ``upstream`` maps the ids of the
    steps it needs to their outputs. ``idempotency_key`` is stable across retries and resumes,
    so agents can make side effects safe to repeat.
    """

    run_id: str
    step_id: str
    attempt: int = 1
    input: object = None
    upstream: Mapping[str, object] = field(default_factory=dict)
    estimate: float | None = None
    timeout: float | None = None
    workflow: str = ""
    base_dir: Path = field(default_factory=Path.cwd)
    handoff: Handoff | None = None  # for an item of a sequence: what came before it
    instructions: list[str] = field(default_factory=list)  # from feedback (triggers' instruct)
    _emit: EmitFn = _no_emit
    _charge: ChargeFn | None = None
    _wait: WaitFn | None = None

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.step_id)

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the run, step and attempt."""
        extra = {"run_id": self.run_id, "step_id": self.step_id, "attempt": self.attempt}
        return logging.LoggerAdapter(_log, extra)

    def emit(self, name: str, data: Mapping[str, object] | None = None) -> None:
        """Publish an event from this step (recorded with the run, seen by observers)."""
        self._emit(self.step_id, name, data or {})

    def charge(self, resource: str, amount: float | Mapping[str, float]) -> None:
        """Report what this step measured it used of a budget or a rate limit (tokens an
        LLM call took, its cost): ``ctx.charge("llm", {"tokens": 5200})``, ``ctx.charge(
        "cost", 0.04)``. It replaces the step's declared demand of a budget, and what exceeds
        its declared demand of a rate limit counts against the limit from now on."""
        if self._charge is None:
            return
        amounts = dict(amount) if isinstance(amount, Mapping) else {"": float(amount)}
        self._charge(self.step_id, resource, amounts)

    async def wait_for(
        self,
        name: str,
        when: Callable[[Mapping[str, object]], bool] | None = None,
        timeout: float | None = None,
    ) -> Event:
        """The run's next event called ``name`` (``*``: any) for which ``when({"event":
        ...})`` holds, one not taken by another wait (one that came before this call counts);
        raises ``TimeoutError`` after ``timeout`` seconds on the run's clock. While a step
        waits for a person, the run shows ``paused``."""
        if self._wait is None:
            raise RuntimeError("this context is not part of a run: nothing to wait for")
        return await self._wait(self.step_id, name, when, timeout)


@runtime_checkable
class Agent(Protocol):
    """Anything that turns a step context into an output.

    The output must be JSON-like (None, bool, int, float, str, lists and dicts of them).
    Raise :class:`counterpoint.StepFailed` to fail with a message; any other exception fails
    the step too, with its type and message. Cancellation arrives as ``CancelledError``.
    """

    async def __call__(self, ctx: StepContext) -> object: ...


class AgentKind(Protocol):
    """A kind of agent (``python``, ``program``, ...): checks options and builds agents.

    Plugins provide one through the ``counterpoint.agents`` entry point group; the entry
    point's name is the kind's name and it loads to an object with this interface.
    """

    @property
    def options(self) -> type[BaseModel]:
        """A pydantic model of the kind's options (forbid extra keys to catch typos)."""
        ...

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        """An agent for ``spec``; raise ``AgentConfigError`` if it cannot be built."""
        ...
