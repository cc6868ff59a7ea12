"""Offline stand-ins for the seed's feature_development agents.

Each function does real, deterministic work on a real repository, where the seed's system
would call an LLM agent:

- ``analyze_product`` reads every Python file of the repository (sizes, definitions,
  docstrings, imports between its own modules, which modules tests mention);
- ``smart_spec_generator`` writes a specification: one work item per module with acceptance
  criteria and an effort estimate derived from the analysis;
- ``dependency_resolver`` orders the work items by the import graph (a module is reviewed
  after the modules it imports), breaks import cycles, and emits the plan as a workflow;
- ``workflow_orchestrator`` runs that plan as a nested counterpoint workflow, whose steps
  (``audit_module``) check each module and fold in what their dependencies found, and writes
  a report.

Same repository, same results: every listing is sorted and nothing depends on the clock
except the measured durations of the nested run.
"""

from __future__ import annotations

import ast
import graphlib
import io
import itertools
import os
import tokenize
from pathlib import Path
from typing import Any

import counterpoint as cp
from counterpoint.graph.analysis import analyse
from counterpoint.model.load import workflow_from_data
from counterpoint.model.locate import NoPositions

STAND_IN = "offline stand-in for an LLM agent"
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}
EFFORT_PER_LINE_S = 0.5  # the spec's notional review effort: half a second per line
MIN_EFFORT_S = 30.0


# --- analyze-product -----------------------------------------------------------------------


def _python_files(repo: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        found.extend(Path(folder) / f for f in sorted(files) if f.endswith(".py"))
    return found


def _module_name(path: Path, repo: Path) -> str:
    rel = path.relative_to(repo)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or rel.stem


def _imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module name this module imports, with relative imports made absolute."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    # importing a.b.c runs a and a.b first
    return {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}


def _definitions(tree: ast.Module) -> tuple[int, int, list[str]]:
    """Public functions and classes, and the public ones without a docstring."""
    public = 0
    undocumented: list[str] = []
    longest = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if not isinstance(node, ast.ClassDef):
                longest = max(longest, length)
            if node.name.startswith("_"):
                continue
            public += 1
            if ast.get_docstring(node) is None:
                undocumented.append(node.name)
    return public, longest, sorted(undocumented)


def _todo_comments(text: str) -> int:
    """Comments that say TODO, FIXME or XXX."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return 0
    return sum(
        1
        for t in tokens
        if t.type == tokenize.COMMENT and any(tag in t.string for tag in ("TODO", "FIXME", "XXX"))
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def analyze_product(ctx: cp.StepContext) -> dict[str, Any]:
    """Read the repository: its modules, their sizes, docstrings and imports, and its tests."""
    repo = Path(str(ctx.input["repo"])).resolve()  # type: ignore[index]
    if not repo.is_dir():
        raise cp.StepFailed(f"{repo} is not a directory", retryable=False)
    files = _python_files(repo)
    modules: dict[str, dict[str, Any]] = {}
    tests: dict[str, str] = {}
    syntax_errors: list[str] = []
    for path in files:
        rel = path.relative_to(repo).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if "test" in path.name or "tests" in path.parts:
            tests[rel] = text
            continue
        name = _module_name(path, repo)
        try:
            tree = ast.parse(text, rel)
        except SyntaxError as exc:
            syntax_errors.append(f"{rel}:{exc.lineno}: {exc.msg}")
            continue
        public, longest, undocumented = _definitions(tree)
        modules[name] = {
            "path": rel,
            "lines": text.count("\n") + 1,
            "docstring": ast.get_docstring(tree) is not None,
            "public": public,
            "undocumented": undocumented,
            "longest_function": longest,
            "todo": _todo_comments(text),
            "imports": sorted(_imports(tree, name, path.name == "__init__.py")),
        }
    for name, info in modules.items():
        info["imports"] = sorted({i for i in info["imports"] if i in modules and i != name})
        leaf = name.rpartition(".")[2]
        info["tests"] = sorted(t for t, text in tests.items() if name in text or f"{leaf}." in t)
    ctx.logger.info("analysed %d modules and %d test files", len(modules), len(tests))
    return {
        "agent": f"analyze-product ({STAND_IN})",
        "repo": str(repo),
        "modules": modules,
        "test_files": len(tests),
        "lines": sum(m["lines"] for m in modules.values()),
        "syntax_errors": syntax_errors,
    }


# --- smart-spec-generator ------------------------------------------------------------------


def smart_spec_generator(ctx: cp.StepContext) -> dict[str, Any]:
    """A specification from the analysis: a work item per module, with acceptance criteria."""
    analysis = ctx.upstream["analyze"]
    assert isinstance(analysis, dict)
    goal = str(ctx.input.get("goal", "")) if isinstance(ctx.input, dict) else ""
    items: list[dict[str, Any]] = []
    for name, info in sorted(analysis["modules"].items()):
        criteria = ["the module compiles"]
        if not info["docstring"]:
            criteria.append("add a module docstring")
        if info["undocumented"]:
            criteria.append(f"document {_plural(len(info['undocumented']), 'public definition')}")
        if not info["tests"]:
            criteria.append("add tests that exercise it")
        if info["todo"]:
            criteria.append(f"resolve {_plural(info['todo'], 'TODO comment')}")
        items.append(
            {
                "id": "review-" + name.replace(".", "-"),
                "module": name,
                "path": info["path"],
                "criteria": criteria,
                "effort_s": max(MIN_EFFORT_S, info["lines"] * EFFORT_PER_LINE_S),
            }
        )
    lines = [f"# Specification: {goal or 'review every module'}", ""]
    lines.append(
        f"{len(items)} modules, {analysis['lines']} lines, {analysis['test_files']} test files."
    )
    for item in items:
        lines.append(f"\n## {item['module']} ({item['path']})")
        lines.extend(f"- [ ] {c}" for c in item["criteria"])
    return {
        "agent": f"smart-spec-generator ({STAND_IN})",
        "goal": goal,
        "items": items,
        "markdown": "\n".join(lines) + "\n",
    }


# --- dependency-resolver -------------------------------------------------------------------


def _acyclic(deps: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Remove edges until ``deps`` has no cycle; returns the removed (module, import) pairs.

    Deterministic: in each cycle found, the edge from its alphabetically last module goes.
    """
    removed: list[tuple[str, str]] = []
    while True:
        try:
            graphlib.TopologicalSorter(deps).prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]  # [a, b, ..., a], each a dependency of the next
            node, dep = max((after, before) for before, after in itertools.pairwise(cycle))
            deps[node].remove(dep)
            removed.append((node, dep))
        else:
            return removed


def dependency_resolver(ctx: cp.StepContext) -> dict[str, Any]:
    """Order the work items by the import graph and write the plan as a workflow."""
    spec = ctx.upstream["spec"]
    analysis = ctx.upstream["analyze"]
    assert isinstance(spec, dict) and isinstance(analysis, dict)
    by_module = {item["module"]: item for item in spec["items"]}
    deps = {m: set(analysis["modules"][m]["imports"]) & by_module.keys() for m in by_module}
    broken = _acyclic(deps)
    steps = [
        {
            "id": item["id"],
            "agent": "audit",
            "needs": sorted(by_module[d]["id"] for d in deps[m]),
            "input": {
                "repo": analysis["repo"],
                "module": m,
                "path": item["path"],
                "criteria": item["criteria"],
            },
            "estimate": item["effort_s"],
        }
        for m, item in sorted(by_module.items())
    ]
    plan = {
        "name": "review-plan",
        "description": "Generated by dependency-resolver: review modules in import order.",
        "agents": {
            "audit": {
                "kind": "python",
                "function": "demo_agents:audit_module",
                "description": "checks one module and folds in what its imports' audits found",
            }
        },
        "steps": steps,
    }
    wf = workflow_from_data(plan, NoPositions("<generated plan>"), Path(__file__).parent)
    stats = analyse(wf.graph)
    return {
        "agent": f"dependency-resolver ({STAND_IN})",
        "workflow": plan,
        "cycles_broken": [f"{a} -> {b}" for a, b in broken],
        "levels": stats.depth,
        "width": stats.width,
        "critical_path": stats.critical_steps,
        "critical_path_s": stats.critical_path,
        "work_s": stats.total_work,
        "parallelism": round(stats.parallelism, 2),
    }


# --- workflow-orchestrator and the nested plan's agent -------------------------------------


def audit_module(ctx: cp.StepContext) -> dict[str, Any]:
    """Check one module against its criteria; add up what its dependencies' audits found."""
    task = ctx.input
    assert isinstance(task, dict)
    path = Path(str(task["repo"])) / str(task["path"])
    text = path.read_text(encoding="utf-8", errors="replace")
    tree = ast.parse(text, str(path))
    compile(tree, str(path), "exec")
    public, longest, undocumented = _definitions(tree)
    findings = [c for c in task["criteria"] if c != "the module compiles"]
    below: dict[str, int] = {}  # every module this one depends on, directly or not
    for out in ctx.upstream.values():
        if isinstance(out, dict):
            below.update(out["below"])
            below[out["module"]] = out["findings"]
    return {
        "module": task["module"],
        "public": public,
        "documented": public - len(undocumented),
        "longest_function": longest,
        "findings": len(findings),
        "inherited": sum(below.values()),
        "below": below,
        "todo": findings,
    }


class _Relay(cp.RunObserver):
    """Passes the nested run's progress on as events of the orchestrating step."""

    def __init__(self, ctx: cp.StepContext, total: int) -> None:
        self.ctx = ctx
        self.total = total
        self.done = 0
        self.next_report = 0.25

    def step_finished(self, record: cp.StepRecord) -> None:
        self.done += 1
        if self.total and self.done / self.total >= self.next_report:
            self.ctx.emit("nested-progress", {"done": self.done, "of": self.total})
            while self.done / self.total >= self.next_report:
                self.next_report += 0.25


async def workflow_orchestrator(ctx: cp.StepContext) -> dict[str, Any]:
    """Run the plan as a nested workflow and write the report."""
    plan = ctx.upstream["dependencies"]
    spec = ctx.upstream["spec"]
    assert isinstance(plan, dict) and isinstance(spec, dict) and isinstance(ctx.input, dict)
    wf = workflow_from_data(
        plan["workflow"], NoPositions("<generated plan>"), Path(__file__).parent
    )
    result = await cp.run(
        wf, max_concurrency=4, run_id=f"{ctx.run_id}.plan", observers=[_Relay(ctx, len(wf.steps))]
    )
    if result.status is not cp.RunStatus.SUCCEEDED:
        failed = [r.id for r in result.steps.values() if r.error]
        raise cp.StepFailed(f"the nested plan {result.status.value}: {', '.join(failed)}")
    audits = [out for out in result.outputs.values() if isinstance(out, dict)]
    public = sum(a["public"] for a in audits)
    documented = sum(a["documented"] for a in audits)
    coverage = documented / public if public else 1.0
    worst = sorted(audits, key=lambda a: (-(a["findings"] + a["inherited"]), a["module"]))[:5]

    out_dir = Path(str(ctx.input["out"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spec.md").write_text(spec["markdown"])
    report = [
        "# Review report",
        "",
        f"{len(audits)} modules audited in {result.makespan_s:.2f} s "
        f"(nested run {result.run_id}, pattern {result.pattern}).",
        f"Docstring coverage of public definitions: {coverage:.0%} ({documented}/{public}).",
        f"Plan: {plan['levels']} levels, width {plan['width']}, "
        f"critical path {' -> '.join(plan['critical_path'])}.",
        f"Import cycles broken: {', '.join(plan['cycles_broken']) or 'none'}.",
        "",
        "Modules to look at first (own findings + findings in what they import):",
        *(
            f"- {a['module']}: {a['findings']} + {a['inherited']} ({'; '.join(a['todo'])})"
            for a in worst
        ),
    ]
    (out_dir / "report.md").write_text("\n".join(report) + "\n")
    summary = (
        f"{len(audits)} modules audited, docstring coverage {coverage:.0%}, "
        f"{sum(a['findings'] for a in audits)} findings; "
        f"spec and report in {out_dir}/ (all four agents are offline stand-ins for LLM agents)"
    )
    return {
        "agent": f"workflow-orchestrator ({STAND_IN})",
        "summary": summary,
        "modules": len(audits),
        "docstring_coverage": round(coverage, 4),
        "findings": sum(a["findings"] for a in audits),
        "nested_run": {
            "run_id": result.run_id,
            "steps": len(result.steps),
            "makespan_s": round(result.makespan_s, 3),
            "pattern": result.pattern,
        },
        "report": str(out_dir / "report.md"),
        "spec": str(out_dir / "spec.md"),
    }
