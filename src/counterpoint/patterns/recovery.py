"""Error recovery orchestration: what to do when a step fails for good.

The seed's error analysis: the error's type (technical, process or communication, and
whether it is transient) and its impact scope (the steps and streams downstream of the
step); then the recovery options declared for the step (or the workflow's defaults), tried
in order: retry with adjusted parameters, an alternative agent, skip (non-critical steps
only), escalate to a person, roll back (the compensations of completed steps in reverse
order, as a saga). Each decision, and why, becomes a ``recovery`` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from counterpoint.model.workflow import RecoveryOption

__all__ = ["Decision", "ErrorClass", "RecoveryPlan", "classify"]

ErrorClass = Literal["technical", "process", "communication"]

_COMMUNICATION = (
    "connection",
    "network",
    "unreachable",
    "name resolution",
    "dns",
    "reset by peer",
    "broken pipe",
    "http 429",
    "http 502",
    "http 503",
    "http 504",
    "too many requests",
    "service unavailable",
    "temporarily",
)
_PROCESS = (
    "checkpoint",
    "validation",
    "schema",
    "rejected",
    "gate",
    "required key",
    "quality",
    "blocking error",
    "not allowed",
    "policy",
)


def classify(error: str, timed_out: bool, retryable: bool) -> tuple[ErrorClass, bool]:
    """The error's type and whether it is transient (worth trying again as it is)."""
    low = error.lower()
    if any(k in low for k in _COMMUNICATION):
        return "communication", True
    if any(k in low for k in _PROCESS):
        return "process", False
    if timed_out or "timed out" in low or "timeout" in low:
        return "technical", True
    return "technical", retryable


@dataclass(frozen=True, slots=True)
class Decision:
    """The option taken (``none``: nothing left to try) and why."""

    option: RecoveryOption | None
    why: str

    @property
    def name(self) -> str:
        return self.option.kind if self.option is not None else "none"


@dataclass(slots=True)
class RecoveryPlan:
    """Where one step is in its list of options."""

    options: Sequence[RecoveryOption]
    critical: bool
    next: int = 0  # the option to look at
    retries: int = 0  # retries taken of the current retry option
    tried: list[str] = field(default_factory=list)

    def decide(self, error_class: ErrorClass, transient: bool) -> Decision:
        """The next option to take, skipping those that do not apply."""
        while self.next < len(self.options):
            option = self.options[self.next]
            kind = option.kind
            if kind == "retry":
                if self.retries < option.times:
                    self.retries += 1
                    why = (
                        f"{'transient' if transient else 'not transient'} {error_class} error; "
                        f"retry {self.retries} of {option.times}"
                    )
                    if option.timeout_factor:
                        why += f", timeout x{option.timeout_factor:g}"
                    return self._take(option, why)
                self.next += 1
                self.retries = 0
                continue
            self.next += 1
            if kind == "skip" and self.critical:
                self.tried.append("skip (not taken: the step is critical)")
                continue
            why = {
                "alternative": f"route around it: run {option.agent!r} instead",
                "skip": "the step is not critical: its dependents go on without its output",
                "escalate": "ask a person: the run pauses with the error and its impact",
                "rollback": "undo the completed steps (compensations in reverse order)",
            }[kind]
            return self._take(option, why)
        return Decision(None, "every recovery option was tried" if self.options else "none")

    def _take(self, option: RecoveryOption, why: str) -> Decision:
        self.tried.append(option.kind)
        return Decision(option, why)
