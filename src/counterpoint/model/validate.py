"""Checks of how the parts of a workflow fit together, each mistake reported with its place.

Shapes and types are the models' job; here: agents that exist and are well defined, step ids
given once, dependencies that exist and form no cycle, and references that point at workflow
inputs or at outputs of steps upstream.
"""

from __future__ import annotations

import difflib
import graphlib
import itertools
from collections.abc import Iterable
from pathlib import Path

from counterpoint.errors import Problem
from counterpoint.graph.dag import Graph
from counterpoint.model.compile import JOIN_AGENT
from counterpoint.model.locate import Locator, format_path
from counterpoint.model.refs import Reference, find_references
from counterpoint.model.workflow import RecoveryOption, Step, Trigger, Validation, Workflow

Path_ = tuple[str | int, ...]

__all__ = ["check"]


def check(workflow: Workflow, where: Locator, base_dir: Path) -> list[Problem]:
    """Every problem in how ``workflow``'s parts refer to each other (empty when none).

    ``base_dir`` is where the workflow lives: Python agents may import modules from there.
    """
    from counterpoint.agents.registry import check_agent

    problems: list[Problem] = []
    plan = workflow.plan
    for loc, message in plan.problems:
        problems.append(where.problem(loc, message))
    for name, spec in workflow.agents.items():
        for loc, message in check_agent(name, spec, base_dir):
            problems.append(where.problem(("agents", name, *loc), message, key=bool(loc)))
    for more in (
        _checkpoint_problems(workflow, where, base_dir),
        _resource_problems(workflow, where),
        _policy_problems(workflow, where),
    ):
        problems.extend(more)

    index: dict[str, int] = {}
    for i, step in enumerate(workflow.steps):
        if step.id in index:
            first = where.problem((*plan.path(index[step.id]), "id"), "")
            also = f"line {first.line}" if first.line else format_path(plan.path(index[step.id]))
            problems.append(
                where.problem(
                    (*plan.path(i), "id"), f"duplicate step id {step.id!r} (first used at {also})"
                )
            )
        else:
            index[step.id] = i

    agents = list(workflow.agents)
    graph: dict[str, list[str]] = {}
    for i, step in enumerate(workflow.steps):
        path = plan.path(i)
        problems.extend(_race_problems(step, path, workflow, where))
        if step.agent not in workflow.agents and step.agent != JOIN_AGENT:
            problems.append(
                where.problem(
                    (*path, "agent"),
                    f"step {step.id!r}: unknown agent {step.agent!r}{_hint(step.agent, agents)}",
                )
            )
        deps: list[str] = []
        for j, need in enumerate(plan.declared_needs(i)):
            if need == step.id:
                problems.append(
                    where.problem((*path, "needs", j), f"step {step.id!r} cannot need itself")
                )
            elif need not in index:
                problems.append(
                    where.problem(
                        (*path, "needs", j),
                        f"step {step.id!r} needs unknown step {need!r}{_hint(need, index)}",
                    )
                )
            elif need in deps:
                problems.append(
                    where.problem(
                        (*path, "needs", j), f"step {step.id!r} lists {need!r} twice in needs"
                    )
                )
            else:
                deps.append(need)
        # the needs the constructs add (known to exist, as the plan made them)
        deps.extend(n for n in step.needs if n not in deps and n in index and n != step.id)
        graph.setdefault(step.id, deps)

    compiled: Graph | None = None
    cycle: list[str] = []
    if len(index) == len(workflow.steps):  # ids are unique: build the step graph once
        ids = list(graph)
        default = workflow.defaults.estimate
        try:
            compiled = Graph(
                ids,
                [[index[d] for d in deps] for deps in graph.values()],
                [s.estimate if s.estimate is not None else default for s in workflow.steps],
            )
        except graphlib.CycleError as exc:  # graphlib names it against the needs direction
            cycle = [ids[i] for i in reversed(exc.args[1])]
    else:
        cycle = _find_cycle(graph)
    if cycle:
        problems.append(
            where.problem(
                (*plan.path(index[cycle[0]]), "needs"),
                "dependency cycle: "
                + ", ".join(f"{a} needs {b}" for a, b in itertools.pairwise(cycle))
                + " (remove one of these needs to break it)",
            )
        )
    problems.extend(_reference_problems(workflow, graph, where))
    problems.extend(_trigger_problems(workflow, index, where))
    problems.extend(_recovery_problems(workflow, where))
    if not problems and compiled is not None:
        workflow._graph = compiled
    return problems


def _policy_problems(workflow: Workflow, where: Locator) -> list[Problem]:
    """Under a mandatory policy, agents and programs it does not allow."""
    if workflow.policy.mode != "mandatory":
        return []
    from counterpoint.policy.guardian import Guardian

    return [
        where.problem(v.path, f"{v.message} (policy mode: mandatory)")
        for v in Guardian(workflow.policy).violations(workflow)
    ]


def _recovery_problems(workflow: Workflow, where: Locator) -> list[Problem]:
    """Recovery options and compensations that name agents that do not exist."""
    problems: list[Problem] = []
    agents = list(workflow.agents)
    plan = workflow.plan
    found: list[tuple[Path_, str, tuple[RecoveryOption, ...]]] = [
        (("defaults", "recovery"), "defaults", workflow.defaults.recovery)
    ]
    found += [
        ((*plan.path(i), "recovery"), f"step {s.id!r}", s.recovery)
        for i, s in enumerate(workflow.steps)
        if s.recovery
    ]
    for path, who, options in found:
        for k, option in enumerate(options):
            if option.agent is not None and option.agent not in workflow.agents:
                problems.append(
                    where.problem(
                        (*path, k),
                        f"{who}: unknown agent {option.agent!r} in recovery"
                        f"{_hint(option.agent, agents)}",
                    )
                )
    for i, s in enumerate(workflow.steps):
        if s.compensate is not None and s.compensate not in workflow.agents:
            problems.append(
                where.problem(
                    (*plan.path(i), "compensate"),
                    f"step {s.id!r}: unknown agent {s.compensate!r} to compensate"
                    f"{_hint(s.compensate, agents)}",
                )
            )
    return problems


def _trigger_problems(workflow: Workflow, index: dict[str, int], where: Locator) -> list[Problem]:
    """Triggers that would start steps that do not exist."""
    problems: list[Problem] = []
    ids = list(index)
    agents = list(workflow.agents)
    added: set[str] = set()
    for t, trigger in enumerate(workflow.triggers):
        named = [
            *(("run", k, sid) for k, sid in enumerate(trigger.run)),
            *(("instruct", k, sid) for k, sid in enumerate(trigger.instruct)),
            *(("prioritise", k, sid) for k, sid in enumerate(trigger.prioritise)),
        ]
        for key, k, step_id in named:
            if step_id not in index:
                problems.append(
                    where.problem(
                        ("triggers", t, key, k),
                        f"trigger on {trigger.on!r}: unknown step {step_id!r} in {key}"
                        f"{_hint(step_id, ids)}",
                    )
                )
        problems.extend(_added_problems(workflow, t, trigger, index, added, where))
        for step_id, agent in trigger.use.items():
            if step_id not in index:
                problems.append(
                    where.problem(
                        ("triggers", t, "use", step_id),
                        f"trigger on {trigger.on!r}: unknown step {step_id!r} in use"
                        f"{_hint(step_id, ids)}",
                        key=True,
                    )
                )
            if agent not in workflow.agents:
                problems.append(
                    where.problem(
                        ("triggers", t, "use", step_id),
                        f"trigger on {trigger.on!r}: unknown agent {agent!r}{_hint(agent, agents)}",
                    )
                )
    return problems


def _added_problems(
    workflow: Workflow,
    t: int,
    trigger: Trigger,
    index: dict[str, int],
    added: set[str],
    where: Locator,
) -> list[Problem]:
    """Steps a trigger adds: new ids, known agents, needs that exist before them."""
    problems: list[Problem] = []
    agents = list(workflow.agents)
    mine: list[str] = []
    for k, step in enumerate(trigger.add):
        path: Path_ = ("triggers", t, "add", k)
        if step.id in index or step.id in added:
            problems.append(
                where.problem((*path, "id"), f"trigger adds step {step.id!r}, which exists already")
            )
        if step.agent not in workflow.agents:
            problems.append(
                where.problem(
                    (*path, "agent"),
                    f"added step {step.id!r}: unknown agent {step.agent!r}"
                    f"{_hint(step.agent, agents)}",
                )
            )
        for n, need in enumerate(step.needs):
            if need not in index and need not in mine:
                problems.append(
                    where.problem(
                        (*path, "needs", n),
                        f"added step {step.id!r} needs {need!r}, which is neither a step of the "
                        "workflow nor added before it by this trigger",
                    )
                )
        mine.append(step.id)
        added.add(step.id)
    return problems


def _resource_problems(workflow: Workflow, where: Locator) -> list[Problem]:
    """Demands of steps that name unknown resources or could never be met."""
    res = workflow.resources
    if not (res.pools or res.rate_limits or res.budgets or any(s.uses for s in workflow.steps)):
        return []
    from counterpoint.scheduler.resources import compile_demands

    plan = workflow.plan
    demands, found = compile_demands(res, workflow.steps)
    workflow._demands = demands  # the engine uses them as they are
    return [
        where.problem((*plan.path(i), *inner), message, key=key) for i, inner, message, key in found
    ]


def _race_problems(step: Step, path: Path_, workflow: Workflow, where: Locator) -> list[Problem]:
    """Alternatives of a race that do not exist, or come twice."""
    problems: list[Problem] = []
    agents = list(workflow.agents)
    for k, alt in enumerate(step.race):
        if alt not in workflow.agents:
            problems.append(
                where.problem(
                    (*path, "race", k),
                    f"step {step.id!r}: unknown agent {alt!r} in race{_hint(alt, agents)}",
                )
            )
        elif alt == step.agent or alt in step.race[:k]:
            problems.append(
                where.problem((*path, "race", k), f"step {step.id!r} races {alt!r} twice")
            )
    return problems


def _checkpoint_problems(workflow: Workflow, where: Locator, base_dir: Path) -> Iterable[Problem]:
    """Schemas, models and functions of checkpoints and gates that cannot be used."""
    from counterpoint.agents.python import import_function
    from counterpoint.errors import AgentConfigError
    from counterpoint.patterns.validation import Checkpoint

    plan = workflow.plan
    found: list[tuple[Path_, str, Validation]] = [
        ((*plan.path(i), "validate"), f"step {s.id!r}", s.validate_)
        for i, s in enumerate(workflow.steps)
        if s.validate_ is not None
    ]
    found += [
        ((*part.path, "gate"), f"{part.kind} {part.id!r}", part.gate)
        for part in plan.parts.values()
        if part.gate is not None
    ]
    for part in plan.parts.values():  # merge functions of conflicts
        if part.conflicts is not None and part.conflicts.merge is not None:
            try:
                import_function(part.conflicts.merge, base_dir)
            except AgentConfigError as exc:
                loc = (*part.path, "conflicts", "merge")
                yield where.problem(loc, f"{part.kind} {part.id!r}: conflicts.merge: {exc}")
    for loc, what, spec in found:
        try:
            Checkpoint.build(what, spec, base_dir)
        except AgentConfigError as exc:
            message = str(exc)
            yield where.problem(loc, message if message.startswith(what) else f"{what}: {message}")


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        # graphlib gives the cycle against the direction of `needs`, ending where it started.
        return list(reversed(exc.args[1]))
    return []


def _reference_problems(
    workflow: Workflow, graph: dict[str, list[str]], where: Locator
) -> Iterable[Problem]:
    plan = workflow.plan
    for i, step in enumerate(workflow.steps):
        if step.input is None:
            continue
        for inner, ref in find_references(step.input):
            loc = (*plan.path(i), "input", *inner)
            if isinstance(ref, str):
                yield where.problem(loc, f"step {step.id!r}: {ref}")
                continue
            message = _reference_problem(workflow, graph, step.id, ref)
            if message:
                yield where.problem(loc, f"step {step.id!r}: {message}")


def _reference_problem(
    workflow: Workflow, graph: dict[str, list[str]], step_id: str, ref: Reference
) -> str | None:
    if ref.root == "inputs":
        if not ref.path or not isinstance(ref.path[0], str):
            return f"{ref} must name an input, e.g. ${{{{ inputs.NAME }}}}"
        name = ref.path[0]
        if name not in workflow.inputs:
            return f"{ref} refers to unknown input {name!r}{_hint(name, workflow.inputs)}"
        return None
    if ref.root == "steps":
        if len(ref.path) < 2 or ref.path[1] != "output":
            return f"{ref}: write ${{{{ steps.ID.output }}}} or ${{{{ steps.ID.output.KEY }}}}"
        target = str(ref.path[0])
        if target not in graph:
            return f"{ref} refers to unknown step {target!r}{_hint(target, graph)}"
        if target == step_id:
            return f"{ref}: a step cannot use its own output"
        if not _is_upstream(graph, step_id, target):
            return (
                f"{ref} uses the output of {target!r}, which is not upstream of {step_id!r}; "
                f"add {target!r} to its needs"
            )
        return None
    return f"{ref}: unknown name {ref.root!r}; use inputs.NAME or steps.ID.output"


def _is_upstream(graph: dict[str, list[str]], step_id: str, target: str) -> bool:
    deps = graph[step_id]
    if target in deps:
        return True
    seen = {step_id}
    stack = list(deps)
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return False
