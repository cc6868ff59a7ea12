"""The policy guardian: what may run, what an output may hold, and which steps need a
person's approval first — the seed's policy-guardian role as code.

Modes, as the seed's Agent OS configuration named them: ``off`` (nothing is checked),
``advisory`` (each violation is published as a ``policy_violation`` event and the run goes
on) and ``mandatory`` (a workflow whose agents or programs are not allowed does not load;
an output that breaks a rule fails its attempt; a step whose ``risk`` is above
``approval_above`` waits for ``counterpoint approve RUN STEP`` before it starts).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from counterpoint.agents.base import Agent, StepContext
from counterpoint.agents.builtin import APPROVAL, for_step
from counterpoint.errors import StepFailed
from counterpoint.model.workflow import GuardPolicy, Workflow

__all__ = ["Guardian", "Violation", "guarded"]


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule a workflow breaks: where (a path into the workflow) and what."""

    path: tuple[str | int, ...]
    rule: str
    message: str

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "message": self.message, "at": ".".join(map(str, self.path))}


def _program(argv: object) -> str | None:
    """The program a program agent runs (its first argv element), when it is written out."""
    if isinstance(argv, list | tuple) and argv and isinstance(argv[0], str):
        first = argv[0]
        return None if "${{" in first else os.path.basename(first)
    return None


class Guardian:
    """The checks of one workflow's ``policy``."""

    def __init__(self, policy: GuardPolicy) -> None:
        self.policy = policy
        self.forbid = [re.compile(p) for p in policy.outputs.forbid]

    @property
    def mode(self) -> str:
        return self.policy.mode

    @property
    def active(self) -> bool:
        return self.policy.mode != "off"

    def violations(self, workflow: Workflow) -> list[Violation]:
        """The agents and programs the workflow uses that the policy does not allow."""
        p = self.policy
        out: list[Violation] = []
        if not self.active:
            return out
        for name, spec in workflow.agents.items():
            where: tuple[str | int, ...] = ("agents", name)
            allowed = p.agents.allow
            if allowed and name not in allowed and f"kind:{spec.kind}" not in allowed:
                out.append(
                    Violation(
                        (*where, "kind"),
                        "agents.allow",
                        f"agent {name!r} ({spec.kind}) is not allowed by the policy (allowed: "
                        f"{', '.join(allowed)})",
                    )
                )
            if name in p.agents.deny or f"kind:{spec.kind}" in p.agents.deny:
                out.append(
                    Violation(
                        (*where, "kind"),
                        "agents.deny",
                        f"agent {name!r} ({spec.kind}) is denied by the policy",
                    )
                )
            if spec.kind == "program" and p.programs.allow:
                program = _program(spec.options.get("argv"))
                if program is None or program not in p.programs.allow:
                    shown = program or "a program given by a template"
                    out.append(
                        Violation(
                            (*where, "argv", 0),
                            "programs.allow",
                            f"agent {name!r} runs {shown!r}, not an allowed program (allowed: "
                            f"{', '.join(p.programs.allow)})",
                        )
                    )
        return out

    @property
    def checks_outputs(self) -> bool:
        """Whether ``check_output`` reads outputs at all."""
        return self.active and (self.policy.outputs.max_bytes is not None or bool(self.forbid))

    def check_output(self, step: str, output: object) -> Violation | None:
        """Whether ``output`` breaks the output rules: too big, or holding a forbidden
        pattern (checked on its JSON text)."""
        rules = self.policy.outputs
        if not self.active or (rules.max_bytes is None and not self.forbid):
            return None
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        size = len(text.encode())
        if rules.max_bytes is not None and size > rules.max_bytes:
            return Violation(
                ("steps", step),
                "outputs.max_bytes",
                f"the output of {step!r} is {size} bytes, over the policy's {rules.max_bytes}",
            )
        for pattern in self.forbid:
            if pattern.search(text):
                return Violation(
                    ("steps", step),
                    "outputs.forbid",
                    f"the output of {step!r} matches the forbidden pattern {pattern.pattern!r}",
                )
        return None

    def advise(self, workflow: Workflow, emit: Callable[..., None]) -> None:
        """An advisory policy: what a mandatory one would refuse or hold, said as
        ``policy_violation`` events."""
        for v in self.violations(workflow):
            emit("", "policy_violation", v.to_json())
        threshold = self.policy.approval_above
        for s in workflow.steps:
            if threshold is not None and self.needs_approval(s.risk):
                emit(
                    s.id,
                    "policy_violation",
                    {
                        "rule": "approval_above",
                        "message": f"step {s.id!r} has risk {s.risk:g}, above {threshold:g}: "
                        "a mandatory policy would wait for approval",
                        "at": f"steps.{s.id}",
                    },
                )

    def needs_approval(self, risk: float) -> bool:
        threshold = self.policy.approval_above
        return self.active and threshold is not None and risk > threshold


def guarded(agent: Agent, risk: float, threshold: float) -> Agent:
    """``agent`` behind an approval: a person approves (``counterpoint approve RUN STEP``)
    before it runs; a rejection fails the step."""

    async def approved_first(ctx: StepContext) -> object:
        ctx.emit(
            "approval-requested",
            {
                "prompt": f"step {ctx.step_id!r} has risk {risk:g}, above the policy's "
                f"{threshold:g}: approve it to run",
                "input": ctx.input,
                "risk": risk,
            },
        )
        event = await ctx.wait_for(APPROVAL, for_step(ctx.step_id))
        if not bool(event.data.get("approved", True)):
            comment = event.data.get("comment")
            raise StepFailed(
                f"rejected by {event.source}" + (f": {comment}" if comment else ""),
                retryable=False,
            )
        return await agent(ctx)

    return approved_first
