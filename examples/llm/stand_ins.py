"""Offline stand-ins for the LLM agents of ``feature_development.yaml``, and a check of the
dependency resolver's plan.

When no endpoint is configured (neither ``$OPENAI_BASE_URL`` nor ``$OPENAI_API_KEY``), each
``kind: subagent`` agent of the workflow answers with its ``stand_in`` function instead of a
model, and a ``stand_in`` event says so. These functions do small, real, deterministic work on
the same inputs the model would get, and give answers of the same shape (fitting the same
``output_schema``), so that the rest of the workflow — checkpoints, handoffs, the plan check —
runs as it would with a model:

- ``analyze_product`` traces the request's words to the project's components;
- ``smart_spec_generator`` makes a requirement of each clause of the request, traced to the
  components the analysis found, with a confidence (the share traced);
- ``dependency_resolver`` makes a task per component to change, ordered by the components'
  ``uses`` (cycles broken and reported);
- ``workflow_orchestrator`` schedules the tasks on the workers, critical path first, and
  writes the coordination strategy in Markdown.

Every answer says it comes from a stand-in: a ``stand_in`` key in a mapping, a first line in
text. ``plan_is_sound`` is no stand-in: it is the quality check of the plan, whoever wrote it.
"""

from __future__ import annotations

import graphlib
import itertools
import re
from collections.abc import Mapping
from typing import Any

import counterpoint as cp

STAND_IN = "offline, deterministic stand-in for an LLM agent (no endpoint configured)"

Out = dict[str, Any]

STOP = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by can do for from in into is it its let make of on or so that"
        " the their them they this to up use we what when while who will with run show add",
    )
)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _words(text: str) -> list[str]:
    """The text's meaningful words, lowercased and without a plural 's'."""
    return [_stem(w) for w in _plain_words(text)]


def _plain_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP]


def _matches(word: str, vocabulary: set[str]) -> bool:
    """``word`` is in ``vocabulary``, or one is the start of the other (export, exporter)."""
    return word in vocabulary or any(
        len(word) >= 4 and len(v) >= 4 and (v.startswith(word) or word.startswith(v))
        for v in vocabulary
    )


def _clauses(request: str) -> list[str]:
    """The request split on commas, semicolons and 'and'."""
    parts = re.split(r"[,;]|\band\b", request)
    return [p.strip(" .") for p in parts if p.strip(" .")]


def _modules(project: object) -> dict[str, dict[str, Any]]:
    modules = project.get("modules", {}) if isinstance(project, Mapping) else {}
    return {str(k): dict(v) for k, v in sorted(modules.items()) if isinstance(v, Mapping)}


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise cp.StepFailed(f"expected {what} as a mapping, got {value!r}", retryable=False)
    return value


# --- analyze-product ----------------------------------------------------------------------


def analyze_product(ctx: cp.StepContext) -> Out:
    """The components the request's words lead to, with why; opportunities and risks."""
    task = _mapping(ctx.input, "the input")
    request = str(task.get("request", ""))
    modules = _modules(task.get("project"))
    words = _plain_words(request)
    vocabularies = {n: set(_words(f"{n} {i.get('about', '')}")) for n, i in modules.items()}
    components: list[dict[str, str]] = []
    for name, vocabulary in vocabularies.items():
        found = sorted({w for w in words if _matches(_stem(w), vocabulary)})
        if found:
            components.append({"name": name, "why": f"the request says {', '.join(found)}"})
    touched = {c["name"] for c in components}
    opportunities = [
        f"{name} already uses {used}: build on that rather than adding a new path"
        for name in sorted(touched)
        for used in modules[name].get("uses", [])
        if used in touched
    ]
    users = {
        name: sorted(m for m, info in modules.items() if name in info.get("uses", []))
        for name in sorted(touched)
    }
    risks = [
        f"{name} is used by {', '.join(by)}: agree on its interface before they change"
        for name, by in users.items()
        if by
    ]
    risks += [
        f"nothing in the project matches {clause!r}"
        for clause in _clauses(request)
        if not any(_matches(w, v) for w in _words(clause) for v in vocabularies.values())
    ]
    summary = f"The request touches {len(components)} of {len(modules)} components" + (
        f": {', '.join(sorted(touched))}." if touched else "."
    )
    return {
        "stand_in": STAND_IN,
        "summary": summary,
        "components": components,
        "opportunities": opportunities,
        "risks": risks,
    }


# --- smart-spec-generator -----------------------------------------------------------------


def smart_spec_generator(ctx: cp.StepContext) -> Out:
    """A requirement per clause of the request, traced to the analysis's components."""
    task = _mapping(ctx.input, "the input")
    analysis = _mapping(ctx.upstream.get("analyze"), "the analysis (step analyze)")
    request = str(task.get("request", ""))
    vocabularies = {
        c["name"]: set(_words(f"{c['name']} {c.get('why', '')}")) - {"request", "say"}
        for c in analysis.get("components", [])
    }
    requirements: list[dict[str, Any]] = []
    questions: list[str] = []
    for i, clause in enumerate(_clauses(request), 1):
        words = _words(clause)
        traced = sorted(n for n, v in vocabularies.items() if any(_matches(w, v) for w in words))
        requirements.append(
            {
                "id": f"R{i}",
                "text": f"The product must {clause[0].lower()}{clause[1:]}.",
                "components": traced,
            }
        )
        if not traced:
            questions.append(f"R{i}: which component does {clause!r} concern?")
    traced_share = sum(1 for r in requirements if r["components"]) / max(1, len(requirements))
    return {
        "stand_in": STAND_IN,
        "title": request.split(",", maxsplit=1)[0].strip(" .") or "(empty request)",
        "requirements": requirements,
        "acceptance_criteria": [
            f"{r['id']}: shown by a test or a demo: {clause}"
            for r, clause in zip(requirements, _clauses(request), strict=True)
        ],
        "risks": list(analysis.get("risks", [])),
        "open_questions": questions,
        "confidence": round(traced_share, 2),
    }


# --- dependency-resolver ------------------------------------------------------------------


def _acyclic(deps: dict[str, set[str]]) -> list[str]:
    """Remove dependencies until there is no cycle (in each cycle, the one from its
    alphabetically last task); returns what was removed, as 'a needs b'."""
    removed: list[str] = []
    while True:
        try:
            graphlib.TopologicalSorter(deps).prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]  # [a, b, ..., a]: each needed by the next
            node, dep = max((after, before) for before, after in itertools.pairwise(cycle))
            deps[node].discard(dep)
            removed.append(f"{node} needs {dep}")
        else:
            return removed


def dependency_resolver(ctx: cp.StepContext) -> Out:
    """A task per component to change, needing the tasks of the components it uses."""
    task = _mapping(ctx.input, "the input")
    spec = _mapping(ctx.upstream.get("spec"), "the specification (step spec)")
    modules = _modules(task.get("project"))
    serves: dict[str, list[str]] = {}
    for req in spec.get("requirements", []):
        for component in req.get("components", []):
            serves.setdefault(component, []).append(req["id"])
    component = {f"change-{c}": c for c in sorted(serves)}
    deps = {
        t: {f"change-{u}" for u in modules.get(c, {}).get("uses", []) if u in serves}
        for t, c in component.items()
    }
    conflicts = [f"dependency cycle broken: {r}" for r in _acyclic(deps)]
    order = graphlib.TopologicalSorter({t: sorted(d) for t, d in deps.items()}).static_order()
    tasks = [
        {
            "id": t,
            "title": f"Change {component[t]} for {', '.join(serves[component[t]])}",
            "component": component[t],
            "needs": sorted(deps[t]),
            "requirements": serves[component[t]],
            "estimate_days": min(5.0, 1.0 + 0.5 * len(serves[component[t]])),
        }
        for t in order
    ]
    return {"stand_in": STAND_IN, "tasks": tasks, "conflicts": conflicts}


def plan_is_sound(output: Mapping[str, Any]) -> bool | str:
    """Quality check of the plan, whoever wrote it: every task needed exists, no task needs
    itself, there is no cycle, and the ids are unique."""
    tasks = output.get("tasks", [])
    ids = [t["id"] for t in tasks]
    problems = [
        f"task id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    known = set(ids)
    for t in tasks:
        problems += [
            f"{t['id']} needs {n!r}, which is no task" for n in t["needs"] if n not in known
        ]
        if t["id"] in t["needs"]:
            problems.append(f"{t['id']} needs itself")
    if not problems:
        try:
            graphlib.TopologicalSorter({t["id"]: t["needs"] for t in tasks}).prepare()
        except graphlib.CycleError as exc:
            cycle = list(reversed(exc.args[1]))  # [a, c, b, a]: each needs the next
            problems.append(
                "dependency cycle: "
                + ", ".join(f"{a} needs {b}" for a, b in itertools.pairwise(cycle))
            )
    return "; ".join(problems) if problems else True


# --- workflow-orchestrator ----------------------------------------------------------------


def _levels(needs: Mapping[str, list[str]]) -> list[list[str]]:
    """Level 1: the tasks that need nothing; level n: those whose needs are all earlier."""
    level: dict[str, int] = {}
    for t in graphlib.TopologicalSorter(needs).static_order():
        level[t] = 1 + max((level[n] for n in needs.get(t, [])), default=0)
    return [
        sorted(t for t, n in level.items() if n == k)
        for k in range(1, max(level.values(), default=0) + 1)
    ]


def _critical_path(
    needs: Mapping[str, list[str]], days: Mapping[str, float]
) -> tuple[dict[str, float], list[str]]:
    """Each task's rank (the longest chain from it to the end, itself included) and the
    longest chain of all."""
    users: dict[str, list[str]] = {t: [] for t in needs}
    for t, ns in needs.items():
        for n in ns:
            users[n].append(t)
    rank: dict[str, float] = {}
    for t in reversed(list(graphlib.TopologicalSorter(needs).static_order())):
        rank[t] = days[t] + max((rank[u] for u in users[t]), default=0.0)
    if not rank:
        return rank, []
    path = [max(rank, key=lambda i: (rank[i], i))]
    while users[path[-1]]:
        path.append(max(users[path[-1]], key=lambda i: (rank[i], i)))
    return rank, path


def _schedule(
    needs: Mapping[str, list[str]],
    days: Mapping[str, float],
    rank: Mapping[str, float],
    workers: int,
) -> list[tuple[float, float, int, str]]:
    """List scheduling on the worker free first: the task that can start soonest, the
    highest rank among those; (start, end, worker, task) for each task."""
    free = [0.0] * workers
    end: dict[str, float] = {}
    out: list[tuple[float, float, int, str]] = []
    left = set(needs)
    while left:
        w = min(range(workers), key=lambda k: (free[k], k))
        start, _rank, task = min(
            (max([free[w], *(end[n] for n in needs[i])]), -rank[i], i)
            for i in left
            if all(n in end for n in needs[i])
        )
        end[task] = free[w] = start + days[task]
        out.append((start, end[task], w + 1, task))
        left.remove(task)
    return sorted(out)


def workflow_orchestrator(ctx: cp.StepContext) -> str:
    """The coordination strategy: the pattern, a schedule on the workers (critical path
    first), the critical path, checkpoints and recovery, in Markdown."""
    task = _mapping(ctx.input, "the input")
    plan = _mapping(ctx.upstream.get("dependencies"), "the plan (step dependencies)")
    tasks = {str(t["id"]): t for t in plan.get("tasks", [])}
    needs = {i: list(t["needs"]) for i, t in tasks.items()}
    days = {i: float(t["estimate_days"]) for i, t in tasks.items()}
    workers = max(1, int(task.get("workers", 1)))
    deadline = float(task.get("deadline_days", 0) or 0)
    rank, path = _critical_path(needs, days)
    schedule = _schedule(needs, days, rank, workers)
    makespan = max((e for _s, e, _w, _t in schedule), default=0.0)
    levels = _levels(needs)
    widest = max((len(level) for level in levels), default=0)
    if widest <= 1:
        pattern, why = "sequential", "the plan is a chain: each task needs the one before"
    elif widest > workers:
        pattern, why = (
            "resource-aware",
            f"up to {widest} tasks could run at once but there are {workers} workers: "
            "the critical path goes first",
        )
    else:
        pattern, why = (
            "parallel",
            f"up to {widest} independent tasks and {workers} workers: each level at once",
        )
    verdict = (
        f"meets the deadline of {deadline:g} days"
        if not deadline or makespan <= deadline
        else f"misses the deadline of {deadline:g} days: add a worker or defer a requirement"
    )
    lines = [
        f"> Written by an {STAND_IN}.",
        "",
        "# Coordination strategy",
        "",
        "## Pattern",
        "",
        f"**{pattern}**: {why}.",
        "",
        "## Schedule",
        "",
        "| days | worker | task |",
        "|---|---|---|",
        *(f"| {s:g} to {e:g} | {w} | {i} |" for s, e, w, i in schedule),
        "",
        f"Expected finish: day {makespan:g} on {workers} workers; it {verdict}.",
        "",
        "## Critical path",
        "",
        f"{' → '.join(path) or '(no tasks)'} ({sum(days[i] for i in path):g} days).",
        "",
        "## Checkpoints",
        "",
        *(
            f"- after {i}: the acceptance criteria of {', '.join(tasks[i]['requirements'])}"
            for level in levels
            for i in level
        ),
        "",
        "## Risks and recovery",
        "",
        "- A failed check is retried once with its error; then the task before it is redone.",
        "- A delay on the critical path delays the end: escalate it the same day.",
        *(f"- {c}" for c in plan.get("conflicts", [])),
    ]
    return "\n".join(lines) + "\n"
