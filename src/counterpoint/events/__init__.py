"""Events: what happens during a run, typed as the seed's event-driven pattern types them.

Every event has a name, a kind (``user``, ``agent``, ``system``, or ``custom`` for names the
seed does not list), data, a source (a step id, ``engine``, ``cli``, ``api``) and its time
and sequence number in the run. The engine's bus delivers each event, in the order it
arrived, to the waits and triggers that match it, and journals it.

Ordering: events of one run are totally ordered by ``seq`` (the order the engine took them
in); events sent from one place (one process, one step) keep the order they were sent in;
an event a step publishes comes after the step started and before its completion.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from counterpoint.events.conditions import Condition, compile_condition

__all__ = [
    "KINDS",
    "Condition",
    "Event",
    "EventBus",
    "EventKind",
    "compile_condition",
    "kind_of",
]

EventKind = Literal["user", "agent", "system", "custom"]

KINDS: dict[str, EventKind] = {
    "feedback_received": "user",
    "direction_change": "user",
    "approval_given": "user",
    "clarification_request": "user",
    "task_completion": "agent",
    "error_encountered": "agent",
    "dependency_resolved": "agent",
    "resource_available": "agent",
    "external_change": "system",
    "resource_constraint": "system",
    "timeline_pressure": "system",
    "quality_issue": "system",
}
"""The seed's event types; any other name is a custom event."""


def kind_of(name: str) -> EventKind:
    return KINDS.get(name, "custom")


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a run."""

    name: str
    data: Mapping[str, object] = field(default_factory=dict)
    source: str = "api"
    time: float = 0.0  # seconds since the run started
    seq: int = 0  # its place in the run's order of events
    inbox: int | None = None  # the store's id, for an event sent from another process
    restored: bool = False  # from an earlier session of a resumed run (journaled then)

    @property
    def kind(self) -> EventKind:
        return kind_of(self.name)

    def scope(self) -> dict[str, object]:
        """What a condition sees as ``event`` (read only)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "data": self.data,
            "source": self.source,
            "time": self.time,
        }


Handler = Callable[[Event], None]


class EventBus:
    """Delivers events, in order, to the handlers listening for all (``*``, first) and for
    their name.

    Handlers run synchronously in the engine's loop; one that publishes more events has them
    delivered after the current one (a queue, never recursion)."""

    __slots__ = ("_busy", "_handlers", "_queue", "_route", "history")

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._route: dict[str, tuple[Handler, ...]] = {}  # name -> its handlers, in order
        self.history: list[Event] = []
        self._queue: deque[Event] = deque()
        self._busy = False

    def listens(self, name: str) -> bool:
        """Whether a handler listens for ``name`` itself (not only for every event)."""
        return name in self._handlers

    def subscribe(self, name: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every event called ``name``; returns the way to stop."""
        handlers = self._handlers.setdefault(name, [])
        handlers.append(handler)
        self._route.clear()

        def stop() -> None:
            if handler in handlers:
                handlers.remove(handler)
                self._route.clear()
                if not handlers:
                    self._handlers.pop(name, None)

        return stop

    def publish(self, event: Event) -> Event:
        """Number the event, keep it, and deliver it (now, or after the one being
        delivered); returns it with its ``seq``."""
        return self.emit(
            event.name, event.data, event.source, event.time, event.inbox, event.restored
        )

    def emit(
        self,
        name: str,
        data: Mapping[str, object],
        source: str,
        time: float,
        inbox: int | None = None,
        restored: bool = False,
    ) -> Event:
        """``publish`` of an event made here, numbered at once."""
        history = self.history
        event = Event(name, data, source, time, len(history) + 1, inbox, restored)
        history.append(event)
        if self._busy:
            self._queue.append(event)
            return event
        self._busy = True
        failed: BaseException | None = None
        try:
            failed = self._deliver(event)
            queue = self._queue
            while queue:
                error = self._deliver(queue.popleft())
                failed = failed or error  # the first one is raised
        finally:
            self._busy = False
        if failed is not None:  # every handler saw every event, in order; then the error
            raise failed
        return event

    def _deliver(self, event: Event) -> BaseException | None:
        handlers = self._route.get(event.name)
        if handlers is None:
            handlers = self._route[event.name] = (
                *self._handlers.get("*", ()),
                *self._handlers.get(event.name, ()),
            )
        failed: BaseException | None = None
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:  # raised after the delivery
                failed = failed or exc
        return failed
