"""Offline, deterministic stand-ins for the seed's LLM agents, for the pattern examples.

Where the seed's system would call an LLM agent (analyze-product, smart-spec-generator,
dependency-resolver, workflow-orchestrator, context-intelligence, policy-guardian,
execution-monitor, adaptive-learner, project-manager), these functions do small, real,
deterministic work on their inputs instead: they split a request into requirements, trace
them to modules, order work by a dependency graph, derive API endpoints from user stories,
write test plans and documentation outlines, check each other's results, and merge them.

Every output says where it comes from: ``stand_in`` is always :data:`STAND_IN` (one value
everywhere, so that merging the outputs of parallel streams never conflicts on it).

The sections follow the three examples: ``feature_development.yaml`` (a sequence),
``full_stack_development.yaml`` (parallel streams) and ``enterprise_integration.yaml``
(phases).
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

import counterpoint as cp

STAND_IN = "offline, deterministic stand-in for an LLM agent"

Out = dict[str, Any]


def _out(**fields: Any) -> Out:
    return {"stand_in": STAND_IN, **fields}


def _input(ctx: cp.StepContext) -> dict[str, Any]:
    if not isinstance(ctx.input, dict):
        raise cp.StepFailed(f"expected a mapping as input, got {ctx.input!r}", retryable=False)
    return ctx.input


def _received(ctx: cp.StepContext) -> dict[str, Any]:
    """What the handoff package said: where it came from and whether it was validated."""
    h = ctx.handoff
    if h is None:
        return {}
    return {
        "sequence": h.sequence,
        "position": h.position,
        "from": h.previous,
        "validated": h.validation.get("passed") if h.validation else None,
        "context_keys": sorted(h.context),
        "feedback": list(h.errors),
    }


def _context(ctx: cp.StepContext) -> dict[str, Any]:
    """The accumulated context of a sequence (every earlier output, merged), with the values
    passed by reference (large ones) resolved."""
    h = ctx.handoff
    if h is None:
        raise cp.StepFailed("this agent runs inside a sequence (it reads the handoff)", False)
    return {key: h.resolve(value) for key, value in h.context.items()}


# --- words ----------------------------------------------------------------------------------

STOP = frozenset(
    re.findall(
        r"\w+",
        "a an and are as be by can for from in into is it its let of on or so that the their"
        " them they this to up we what when while who will with",
    )
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _norm(word: str) -> str:
    """A crude singular: ``exports`` and ``export`` are one term."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _terms(text: str) -> list[str]:
    return sorted({_norm(w) for w in _words(text) if w not in STOP})


def _related(a: str, b: str) -> bool:
    """Broad matching: the words share a stem of five letters or more."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= 5


def _levels(
    graph: Mapping[str, list[str]],
) -> tuple[list[list[str]], dict[str, list[str]], list[str]]:
    """Topological levels of ``node -> what it needs``, the needs that remain, and what was
    dropped: cycles are broken deterministically (the alphabetically last node of a cycle
    stops waiting for its successor in the cycle)."""
    edges = {n: sorted(set(graph[n])) for n in sorted(graph)}
    broken: list[str] = []
    while True:
        try:
            order = graphlib.TopologicalSorter(edges)
            order.prepare()
            break
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1][:-1]
            node = max(cycle)
            dropped = next(d for d in edges[node] if d in cycle)
            edges[node] = [d for d in edges[node] if d != dropped]
            broken.append(
                f"{node} no longer waits for {dropped} (cycle of {', '.join(sorted(cycle))})"
            )
    levels: list[list[str]] = []
    while order.is_active():
        ready = sorted(order.get_ready())
        levels.append(ready)
        order.done(*ready)
    return levels, edges, broken


# === feature_development: a sequence ========================================================


def analyze_product(ctx: cp.StepContext) -> Out:
    """analyze-product: trace the request's terms to the project's modules.

    A first analysis is focused (a term matches a module whose name or description has that
    word). After a rollback (the spec built on it failed its checkpoint, and says so in the
    handoff's feedback) the analysis is broadened: words that share a stem also match.
    """
    data = _input(ctx)
    request = str(data["request"])
    modules: dict[str, dict[str, Any]] = data["project"]["modules"]
    broadened = bool(ctx.handoff and ctx.handoff.errors)
    terms = _terms(request)
    vocabulary: dict[str, list[str]] = {}
    for name in sorted(modules):
        known = set(_terms(f"{name} {modules[name]['about']}"))
        for term in terms:
            if term in known or (broadened and any(_related(term, k) for k in known)):
                vocabulary.setdefault(term, []).append(name)
    components = sorted({m for found in vocabulary.values() for m in found})
    return _out(
        request=request,
        analysis_depth="broadened" if broadened else "focused",
        current_state={
            "modules": len(modules),
            "touched": len(components),
            "untraced_terms": [t for t in terms if t not in vocabulary],
        },
        vocabulary=vocabulary,
        components=components,
        opportunities=[f"reuse {m}: {modules[m]['about']}" for m in components],
        dependencies={m: sorted(modules[m].get("uses", [])) for m in sorted(modules)},
        handoff=_received(ctx),
    )


def smart_spec_generator(ctx: cp.StepContext) -> Out:
    """smart-spec-generator: one requirement per clause of the request, each traced to the
    components the analysis found for its terms. ``confidence`` is the share of requirements
    traced to at least one component (the checkpoint wants at least 0.7)."""
    context = _context(ctx)
    request = str(context["request"])
    vocabulary: Mapping[str, list[str]] = context["vocabulary"]
    clauses = [c.strip() for c in re.split(r",|;|\band\b", request) if c.strip()]
    requirements: list[dict[str, Any]] = []
    for n, clause in enumerate(clauses, 1):
        traced = sorted({m for t in _terms(clause) for m in vocabulary.get(t, [])})
        requirements.append({"id": f"R{n}", "text": clause, "components": traced})
    users: dict[str, list[str]] = {}
    for r in requirements:
        for m in r["components"]:
            users.setdefault(m, []).append(r["id"])
    risks = [
        f"{', '.join(ids[:-1])} and {ids[-1]} change {m}: coordinate them"
        for m, ids in sorted(users.items())
        if len(ids) > 1
    ]
    risks += [
        f"{r['id']} ({r['text']!r}) traces to no component"
        for r in requirements
        if not r["components"]
    ]
    risks += [f"regression in {m}" for m in sorted(users)]
    confidence = round(sum(1 for r in requirements if r["components"]) / len(requirements), 2)
    return _out(
        spec={"title": request, "requirements": len(requirements), "components": sorted(users)},
        requirements=requirements,
        acceptance_criteria=[
            f"{r['id']}: a test shows {r['text']!r}" for r in requirements if r["components"]
        ],
        risks=risks,
        confidence=confidence,
        handoff=_received(ctx),
    )


def dependency_resolver(ctx: cp.StepContext) -> Out:
    """dependency-resolver: one task per component to change, ordered by the modules'
    dependencies (a module changes after what it uses), plus an integration test at the end."""
    context = _context(ctx)
    requirements: list[dict[str, Any]] = context["requirements"]
    uses: Mapping[str, list[str]] = context["dependencies"]
    touched = sorted({m for r in requirements for m in r["components"]})
    graph = {m: [d for d in uses.get(m, []) if d in touched] for m in touched}
    levels, edges, broken = _levels(graph)
    tasks: list[dict[str, Any]] = [
        {
            "id": f"change-{m}",
            "module": m,
            "requirements": [r["id"] for r in requirements if m in r["components"]],
            "needs": [f"change-{d}" for d in edges[m]],
        }
        for level in levels
        for m in level
    ]
    last = [f"change-{m}" for m in levels[-1]] if levels else []
    tasks.append({"id": "integration-test", "module": None, "requirements": [], "needs": last})
    return _out(
        tasks=tasks,
        levels=[[f"change-{m}" for m in level] for level in levels] + [["integration-test"]],
        conflicts_resolved=broken,
        blocking_errors=[],
        handoff=_received(ctx),
    )


async def workflow_orchestrator(ctx: cp.StepContext) -> Out:
    """workflow-orchestrator: turn the tasks into a counterpoint workflow (a day of effort per
    task, one more per requirement it serves) and simulate it on ``workers`` developers with
    counterpoint's own virtual clock, to give the makespan and the schedule."""
    from counterpoint.model.load import workflow_from_data
    from counterpoint.model.locate import NoPositions

    context = _context(ctx)
    workers = int(_input(ctx)["workers"])
    deadline = float(_input(ctx)["deadline_days"])
    tasks: list[dict[str, Any]] = context["tasks"]
    effort = {t["id"]: 1 + len(t["requirements"]) for t in tasks}
    plan = {
        "name": "feature-plan",
        "agents": {"work": {"kind": "noop"}},
        "steps": [
            {"id": t["id"], "agent": "work", "needs": t["needs"], "estimate": effort[t["id"]]}
            for t in tasks
        ],
    }
    workflow = workflow_from_data(plan, NoPositions("<generated plan>"))
    simulated = await cp.simulate(workflow, workers=workers)
    schedule = sorted(
        (
            {"id": r.id, "start_day": r.start, "end_day": r.end}
            for r in simulated.steps.values()
            if r.start is not None and r.end is not None
        ),
        key=lambda s: (s["start_day"], s["id"]),
    )
    widest = max(len(level) for level in context["levels"])
    return _out(
        workflow=plan,
        schedule=schedule,
        strategy="sequential" if widest == 1 or workers == 1 else "hybrid",
        workers=workers,
        makespan_days=simulated.makespan_s,
        deadline_days=deadline,
        feasible=simulated.makespan_s <= deadline,
        handoff=_received(ctx),
    )


class PlannedStep(BaseModel):
    id: str
    start_day: float
    end_day: float


class OrchestrationPlan(BaseModel):
    """What the orchestrator's checkpoint requires (``validate: {model: ...}``)."""

    schedule: list[PlannedStep]
    strategy: Literal["sequential", "parallel", "hybrid"]
    workers: int
    makespan_days: float
    feasible: bool


def fits_resources(output: Mapping[str, Any]) -> bool | str:
    """Quality check of the orchestrator's output: the plan meets the deadline."""
    if output["feasible"]:
        return True
    return f"{output['makespan_days']:g} days exceed the deadline of {output['deadline_days']:g}"


# === full_stack_development: parallel streams ===============================================

OPERATIONS = {
    "browse": ["list", "get"],
    "view": ["get"],
    "download": ["get", "export"],
    "manage": ["list", "get", "create", "update", "delete"],
    "create": ["create"],
    "edit": ["update"],
    "delete": ["delete"],
}
ORDER = ["list", "get", "create", "update", "delete", "export"]
ROUTES = {
    "list": ("GET", "/{r}"),
    "get": ("GET", "/{r}/{{id}}"),
    "create": ("POST", "/{r}"),
    "update": ("PUT", "/{r}/{{id}}"),
    "delete": ("DELETE", "/{r}/{{id}}"),
    "export": ("GET", "/{r}/{{id}}/export"),
}


def _bump(version: str, part: Literal["major", "minor", "patch"]) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def plan_feature(ctx: cp.StepContext) -> Out:
    """analyze-product: user stories (``actor verb resource``) to resources, the operations
    each needs and who uses them."""
    resources: dict[str, dict[str, list[str]]] = {}
    for story in _input(ctx)["stories"]:
        words = _words(story)
        if len(words) < 3 or words[1] not in OPERATIONS:
            known = ", ".join(sorted(OPERATIONS))
            raise cp.StepFailed(
                f"cannot read the story {story!r}: write 'actor verb resource' ({known})",
                retryable=False,
            )
        actor, verb, resource = words[0], words[1], words[-1]
        entry = resources.setdefault(resource, {"actors": [], "operations": []})
        entry["actors"] = sorted({*entry["actors"], actor})
        ops = {*entry["operations"], *OPERATIONS[verb]}
        entry["operations"] = [op for op in ORDER if op in ops]
    return _out(resources=dict(sorted(resources.items())))


def design_api(ctx: cp.StepContext) -> Out:
    """smart-spec-generator (backend): the API contract, one endpoint per operation."""
    data = _input(ctx)
    endpoints = []
    for resource, entry in data["resources"].items():
        for op in entry["operations"]:
            method, path = ROUTES[op]
            endpoints.append(
                {
                    "id": f"{op}-{resource}",
                    "method": method,
                    "path": f"/{data['api_version']}" + path.format(r=resource),
                    "resource": resource,
                    "actors": entry["actors"],
                }
            )
    return _out(contract={"api_version": data["api_version"], "endpoints": endpoints})


def design_database(ctx: cp.StepContext) -> Out:
    """dependency-resolver (backend): a table per resource; rows owned by their actor unless
    only admins use them; migrations in an order that respects the foreign keys."""
    tables: dict[str, list[str]] = {}
    for e in _input(ctx)["endpoints"]:
        owned = any(a != "admins" for a in e["actors"])
        tables[e["resource"]] = ["id", "created_at", *(["owner_id"] if owned else [])]
    return _out(schema={"tables": tables, "migrations": [f"create_{t}" for t in sorted(tables)]})


def business_logic(ctx: cp.StepContext) -> Out:
    """smart-spec-generator (backend): who may call what. Admins may call everything."""
    permissions = {e["id"]: sorted({*e["actors"], "admins"}) for e in _input(ctx)["endpoints"]}
    return _out(permissions=permissions)


def api_handlers(ctx: cp.StepContext) -> Out:
    """execution-monitor (backend): a handler per endpoint, named after its operation."""
    handlers = {e["id"]: f"handle_{e['id'].replace('-', '_')}" for e in _input(ctx)["endpoints"]}
    return _out(handlers=handlers)


def backend_report(ctx: cp.StepContext) -> Out:
    """execution-monitor (backend): every endpoint has a handler, a permission and a table.
    Proposes the release version: new endpoints are a minor version."""
    data = _input(ctx)
    build = data["build"]
    missing = [
        e["id"]
        for e in data["contract"]["endpoints"]
        if e["id"] not in build["handlers"]
        or e["id"] not in build["permissions"]
        or e["resource"] not in build["schema"]["tables"]
    ]
    endpoints = data["contract"]["endpoints"]
    return _out(
        backend={
            "endpoints": len(endpoints),
            "handlers": len(build["handlers"]),
            "tables": sorted(build["schema"]["tables"]),
            "missing": missing,
        },
        version=_bump(data["current_version"], "minor"),
        changelog=[f"API {data['contract']['api_version']}: {len(endpoints)} endpoints"],
    )


def ui_mockup(ctx: cp.StepContext) -> Out:
    """smart-spec-generator (frontend): a list screen, a detail screen and a form per
    resource, as its operations call for."""
    screens = []
    for resource, entry in _input(ctx)["resources"].items():
        ops = set(entry["operations"])
        for kind, wanted in (
            ("list", {"list"}),
            ("detail", {"get"}),
            ("form", {"create", "update"}),
        ):
            if ops & wanted:
                screens.append({"id": f"{resource}-{kind}", "resource": resource, "kind": kind})
    return _out(screens=screens)


SCREEN_CALLS = {
    "list": ["list"],
    "detail": ["get", "export", "delete"],
    "form": ["create", "update"],
}


def ui_build(ctx: cp.StepContext) -> Out:
    """adaptive-learner (frontend): a component per screen, bound to the contract's endpoints
    (it runs after the api-contract sync point, so the contract is final)."""
    data = _input(ctx)
    ids = {e["id"] for e in data["contract"]["endpoints"]}
    components = []
    for s in data["screens"]:
        calls = [f"{op}-{s['resource']}" for op in SCREEN_CALLS[s["kind"]]]
        name = "".join(w.title() for w in (s["resource"], s["kind"]))
        components.append(
            {"screen": s["id"], "component": name, "calls": [c for c in calls if c in ids]}
        )
    return _out(components=components)


def frontend_report(ctx: cp.StepContext) -> Out:
    """execution-monitor (frontend): screens without a component or calling nothing.
    Proposes the release version: UI work alone is a patch."""
    data = _input(ctx)
    built = {c["screen"]: c for c in data["components"]}
    unbound = sorted(s["id"] for s in data["screens"] if not built.get(s["id"], {}).get("calls"))
    return _out(
        frontend={"screens": len(data["screens"]), "components": len(built), "unbound": unbound},
        version=_bump(data["current_version"], "patch"),
        changelog=[f"UI: {len(built)} screens"],
    )


def test_strategy(ctx: cp.StepContext) -> Out:
    """policy-guardian (testing): what must be tested, and the gate a release must pass."""
    resources = _input(ctx)["resources"]
    return _out(
        strategy={
            "levels": ["contract", "e2e"],
            "coverage": {"contract": "every endpoint", "e2e": "every screen"},
            "resources": sorted(resources),
            "gate": "every test passes",
        }
    )


def test_suite(ctx: cp.StepContext) -> Out:
    """execution-monitor (testing): a contract test per endpoint and an end-to-end test per
    screen (after the api-contract sync point: it sees the contract and the mockups)."""
    data = _input(ctx)
    tests = [
        {"id": f"contract:{e['method']} {e['path']}", "level": "contract", "target": e["id"]}
        for e in data["contract"]["endpoints"]
    ] + [{"id": f"e2e:{s['id']}", "level": "e2e", "target": s["id"]} for s in data["screens"]]
    return _out(suite={"levels": data["strategy"]["levels"], "tests": tests})


def test_run(ctx: cp.StepContext) -> Out:
    """execution-monitor (testing): 'runs' the suite against what was built: a contract test
    passes when its endpoint has a handler, an end-to-end test when its screen has a
    component that calls the API (after the integration sync point, so both are built)."""
    data = _input(ctx)
    handlers = data["handlers"]
    screens = {c["screen"] for c in data["components"] if c["calls"]}
    failed = [
        t["id"]
        for t in data["suite"]["tests"]
        if (t["level"] == "contract" and t["target"] not in handlers)
        or (t["level"] == "e2e" and t["target"] not in screens)
    ]
    total = len(data["suite"]["tests"])
    passed = [t["target"] for t in data["suite"]["tests"] if t["id"] not in failed]
    return _out(
        tests={
            "total": total,
            "passed": len(passed),
            "failed": failed,
            "pass_rate": round(len(passed) / total, 3) if total else 0.0,
            "verified": sorted(passed),
        }
    )


def docs_outline(ctx: cp.StepContext) -> Out:
    """project-manager (documentation): the guide's sections."""
    resources = _input(ctx)["resources"]
    sections = ["Getting started", *(f"Working with {r}" for r in resources), "API reference"]
    return _out(outline=sections)


def api_reference(ctx: cp.StepContext) -> Out:
    """adaptive-learner (documentation): a reference entry per endpoint, in the outline's
    section for its resource (after the api-contract sync point: the contract is final)."""
    data = _input(ctx)
    entries = [
        {
            "endpoint": e["id"],
            "title": f"{e['method']} {e['path']}",
            "section": f"Working with {e['resource']}",
            "who": ", ".join(e["actors"]),
        }
        for e in data["contract"]["endpoints"]
    ]
    missing = sorted({x["section"] for x in entries} - set(data["outline"]))
    return _out(reference=entries, sections_missing=missing)


def docs_review(ctx: cp.StepContext) -> Out:
    """project-manager (documentation): content review against the test results (after the
    content-review sync point): an entry is verified when its endpoint's test passed."""
    data = _input(ctx)
    verified = set(data["tests"]["verified"])
    entries = data["reference"]
    return _out(
        docs={
            "pages": len({e["section"] for e in entries}) + 2,
            "endpoints_documented": len(entries),
            "verified": sorted(e["endpoint"] for e in entries if e["endpoint"] in verified),
            "unverified": sorted(e["endpoint"] for e in entries if e["endpoint"] not in verified),
        },
        changelog=[f"Docs: reference for {len(entries)} endpoints"],
    )


def merge_release(key: str, values: Mapping[str, Any]) -> Any:
    """The ``merge`` conflict strategy (``conflicts.merge``): the streams' changelogs are
    joined in stream order; versions merge to the highest; anything else is refused."""
    if all(isinstance(v, list) for v in values.values()):
        return [entry for v in values.values() for entry in v]
    if all(isinstance(v, str) and re.fullmatch(r"\d+\.\d+\.\d+", v) for v in values.values()):
        return max(values.values(), key=lambda v: tuple(int(x) for x in v.split(".")))
    raise ValueError(f"no merge rule for {key!r}: {dict(values)!r}")


def release_notes(ctx: cp.StepContext) -> Out:
    """project-manager: the release, from the parallel block's merged output."""
    build = _input(ctx)["build"]
    return _out(
        release=build["version"],
        notes=build["changelog"],
        ready=build["tests"]["pass_rate"] == 1 and not build["backend"]["missing"],
    )


# === enterprise_integration: phases =========================================================


def inventory_systems(ctx: cp.StepContext) -> Out:
    """analyze-product: what each system exposes and consumes; entities nobody provides."""
    systems: dict[str, dict[str, Any]] = _input(ctx)["systems"]
    producers: dict[str, str] = {}
    for name in sorted(systems):
        for entity in systems[name].get("exposes", []):
            producers.setdefault(entity, name)
    gaps = sorted(
        {e for s in systems.values() for e in s.get("consumes", []) if e not in producers}
    )
    return _out(
        systems={n: systems[n] for n in sorted(systems)},
        producers=dict(sorted(producers.items())),
        gaps=gaps,
        handoff=_received(ctx),
    )


def map_context(ctx: cp.StepContext) -> Out:
    """context-intelligence: the data flows (producer -> consumer, per entity), from the
    inventory in the handoff's accumulated context."""
    context = _context(ctx)
    producers: Mapping[str, str] = context["producers"]
    flows = [
        {"entity": e, "from": producers[e], "to": name}
        for name, s in context["systems"].items()
        for e in s.get("consumes", [])
        if e in producers
    ]
    flows.sort(key=lambda f: (f["entity"], f["to"]))
    return _out(flows=flows, handoff=_received(ctx))


def integration_order(ctx: cp.StepContext) -> Out:
    """dependency-resolver: integrate a system after the systems it consumes from."""
    context = _context(ctx)
    graph: dict[str, list[str]] = {n: [] for n in context["systems"]}
    for f in context["flows"]:
        graph[f["to"]].append(f["from"])
    levels, _, broken = _levels(graph)
    return _out(
        integration_order=[s for level in levels for s in level],
        levels=levels,
        flows=context["flows"],
        cycles_broken=broken,
        blocking_errors=[f"no system provides {e!r}" for e in context["gaps"]],
        handoff=_received(ctx),
    )


def architecture_draft(ctx: cp.StepContext) -> Out:
    """smart-spec-generator: an adapter per system; an entity with several consumers goes
    through events, one with a single consumer through an API."""
    data = _input(ctx)
    consumers: dict[str, list[str]] = {}
    for f in data["flows"]:
        consumers.setdefault(f["entity"], []).append(f["to"])
    channels = {e: "events" if len(c) > 1 else "api" for e, c in sorted(consumers.items())}
    return _out(
        draft={
            "adapters": [f"{s}-adapter" for s in data["order"]],
            "channels": channels,
            "hub": "event-bus" if "events" in channels.values() else None,
        }
    )


def architecture_review(ctx: cp.StepContext) -> Out:
    """policy-guardian: the draft against the rules (after the architecture-review sync
    point, so it sees the threat model): a sensitive entity never goes over events."""
    data = _input(ctx)
    sensitive = set(data["threats"]["sensitive"])
    findings = [
        f"{e} is sensitive: use an authenticated API, not events"
        for e, channel in data["draft"]["channels"].items()
        if e in sensitive and channel == "events"
    ]
    channels = {e: ("api" if e in sensitive else c) for e, c in data["draft"]["channels"].items()}
    return _out(
        architecture={**data["draft"], "channels": channels, "findings": findings},
        architecture_approved=True,
    )


def data_flow_map(ctx: cp.StepContext) -> Out:
    """dependency-resolver: the flows grouped by consuming system."""
    by_consumer: dict[str, list[str]] = {}
    for f in _input(ctx)["flows"]:
        by_consumer.setdefault(f["to"], []).append(f"{f['entity']} from {f['from']}")
    return _out(flow_map=dict(sorted(by_consumer.items())))


def data_mapping(ctx: cp.StepContext) -> Out:
    """context-intelligence: a canonical model per entity and the channel it travels on
    (after the integration-planning sync point, so it sees the architecture draft)."""
    data = _input(ctx)
    mappings = []
    for entity, channel in data["draft"]["channels"].items():
        consumers = sorted(
            system
            for system, needs in data["flow_map"].items()
            if any(n.startswith(f"{entity} from ") for n in needs)
        )
        mappings.append(
            {
                "entity": entity,
                "canonical": f"canonical.{entity}",
                "channel": channel,
                "consumers": consumers,
            }
        )
    return _out(mappings=mappings)


def threat_model(ctx: cp.StepContext) -> Out:
    """policy-guardian: a threat per sensitive entity that leaves its system. It needs only
    the inventory, so with lookahead it starts before the analysis phase is over."""
    data = _input(ctx)
    sensitive = sorted(data["sensitive"])
    threats = [
        {"entity": e, "threat": f"{e} records leak in transit", "owner": data["producers"][e]}
        for e in sensitive
        if e in data["producers"]
    ]
    return _out(threats={"sensitive": sensitive, "items": threats})


def security_approval(ctx: cp.StepContext) -> Out:
    """adaptive-learner: a control per threat, adapted to the drafted channel; approved when
    every threat has one (after the architecture-review sync point)."""
    data = _input(ctx)
    channels = data["draft"]["channels"]
    controls = {
        t["entity"]: "mutual TLS + field encryption"
        if channels.get(t["entity"]) == "events"
        else "mutual TLS"
        for t in data["threats"]["items"]
    }
    uncovered = [t["entity"] for t in data["threats"]["items"] if t["entity"] not in controls]
    return _out(
        security={"controls": controls, "uncovered": uncovered}, security_approved=not uncovered
    )


def design_approved(output: Mapping[str, Any]) -> bool | str:
    """The design phase's gate: both approvals given."""
    missing = [k for k in ("architecture_approved", "security_approved") if not output.get(k)]
    return True if not missing else f"not approved: {', '.join(missing)}"


def prepare_environments(ctx: cp.StepContext) -> Out:
    """workflow-orchestrator: a sandbox per system, in integration order. It needs only the
    integration order, so with lookahead it starts while the design phase still runs."""
    order = _input(ctx)["order"]
    return _out(
        environments=[{"system": s, "sandbox": f"sbx-{s}", "wave": i} for i, s in enumerate(order)],
        handoff=_received(ctx),
    )


def finalize_contracts(ctx: cp.StepContext) -> Out:
    """workflow-orchestrator: a contract per mapped entity, with its channel (as the
    architecture review left it), its security control and the sandboxes it is tested in
    (from the handoff: the environments the step before prepared)."""
    data = _input(ctx)
    sandboxes = {e["system"]: e["sandbox"] for e in _context(ctx)["environments"]}
    contracts = [
        {
            "entity": m["entity"],
            "channel": data["channels"].get(m["entity"], m["channel"]),
            "control": data["controls"].get(m["entity"], "none needed"),
            "sandboxes": [sandboxes[c] for c in m["consumers"] if c in sandboxes],
        }
        for m in data["mappings"]
    ]
    return _out(contracts=contracts, setup={"received": _received(ctx)})


def build_adapters(ctx: cp.StepContext) -> Out:
    """workflow-orchestrator: the client side (consumers) or server side (producers) of every
    contract."""
    data = _input(ctx)
    side = data["side"]
    role = "consumer" if side == "client" else "producer"
    return _out(**{f"{side}_build": [f"{c['entity']}-{role}" for c in data["contracts"]]})


def monitor_build(ctx: cp.StepContext) -> Out:
    """execution-monitor: the stream's build output, counted and checked for gaps."""
    data = _input(ctx)
    side = data["side"]
    built = data["built"]
    return _out(**{f"{side}_side": {"built": built, "count": len(built), "healthy": bool(built)}})


def test_harness(ctx: cp.StepContext) -> Out:
    """policy-guardian: a test per contract: a round trip through the sandboxes."""
    contracts = _input(ctx)["contracts"]
    return _out(harness=[f"round-trip {c['entity']} via {c['channel']}" for c in contracts])


def monitor_harness(ctx: cp.StepContext) -> Out:
    """execution-monitor: the harness covers every contract."""
    harness = _input(ctx)["harness"]
    return _out(testing_framework={"tests": len(harness), "ready": bool(harness)})


def integration_tests(ctx: cp.StepContext) -> Out:
    """execution-monitor: a contract passes when both sides were built and it is tested."""
    data = _input(ctx)
    build = data["build"]
    consumers = set(build["client_side"]["built"])
    producers = set(build["server_side"]["built"])
    results = {
        c["entity"]: f"{c['entity']}-consumer" in consumers
        and f"{c['entity']}-producer" in producers
        for c in data["contracts"]
    }
    passed = sum(results.values())
    return _out(
        integration={
            "results": results,
            "pass_rate": round(passed / len(results), 3) if results else 0.0,
        },
        handoff=_received(ctx),
    )


def integration_signoff(ctx: cp.StepContext) -> Out:
    """policy-guardian: sign off the integration when every contract passed."""
    context = _context(ctx)
    failed = sorted(e for e, ok in context["integration"]["results"].items() if not ok)
    return _out(
        integration=context["integration"],
        signoff={"approved": not failed, "failed": failed, "received": _received(ctx)},
    )


def compliance_check(ctx: cp.StepContext) -> Out:
    """policy-guardian: every contract of a sensitive entity carries a control."""
    data = _input(ctx)
    unprotected = [
        c["entity"]
        for c in data["contracts"]
        if c["entity"] in data["sensitive"] and c["control"] == "none needed"
    ]
    return _out(
        compliance={"checked": len(data["contracts"]), "unprotected": unprotected},
        handoff=_received(ctx),
    )


def monitoring_check(ctx: cp.StepContext) -> Out:
    """execution-monitor: health of the implementation streams and the integration."""
    data = _input(ctx)
    streams = {
        k: data["implementation"][k] for k in ("client_side", "server_side", "testing_framework")
    }
    healthy = all(s.get("healthy", s.get("ready")) for s in streams.values())
    return _out(
        monitoring={"streams": sorted(streams), "healthy": healthy},
        handoff=_received(ctx),
    )


def deployment_readiness(ctx: cp.StepContext) -> Out:
    """project-manager: readiness is the share of checks that hold; go live at 0.9."""
    context = _context(ctx)
    checks = {
        "compliance": not context["compliance"]["unprotected"],
        "monitoring": context["monitoring"]["healthy"],
        "signed_off": bool(_input(ctx)["signoff"]["approved"]),
    }
    readiness = round(sum(checks.values()) / len(checks), 3)
    return _out(
        checks=checks, readiness=readiness, go_live=readiness >= 0.9, handoff=_received(ctx)
    )
