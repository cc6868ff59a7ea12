"""WfCommons instances (WfFormat 1.5): real scientific workflow traces.

Tasks and their parents come from ``workflow.specification.tasks``; each task's measured
``runtimeInSeconds`` (and ``coreCount`` and ``memoryInBytes`` where present) from
``workflow.execution.tasks``. Steps are grouped into one placeholder agent per program.

The machines of ``workflow.execution.machines`` become one pool, ``machines``, with their
cores (and memory, when every machine gives it) added up; each step uses its task's cores
(one when the trace gives none) and memory from it. One pool for all machines is a
simplification: a task's memory may span two machines in the simulation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from counterpoint.errors import ImportFormatError
from counterpoint.importers.common import agent_name, placeholder, seconds

__all__ = ["read"]


def read(path: Path) -> dict[str, Any]:
    """Workflow data for the WfCommons JSON file at ``path``."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(file, exc.lineno, f"not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(file, None, f"cannot read the file: {exc}") from None

    def fail(message: str, task_id: str | None = None) -> ImportFormatError:
        line = None
        if task_id is not None:
            found = re.search(rf'"id"\s*:\s*{re.escape(json.dumps(task_id))}', text)
            line = text.count("\n", 0, found.start()) + 1 if found else None
        return ImportFormatError(file, line, message)

    workflow = doc.get("workflow") if isinstance(doc, dict) else None
    spec = workflow.get("specification") if isinstance(workflow, dict) else None
    execution = workflow.get("execution") if isinstance(workflow, dict) else None
    if not isinstance(spec, dict) or not isinstance(execution, dict):
        version = doc.get("schemaVersion") if isinstance(doc, dict) else None
        raise fail(
            "expected WfFormat 1.5 with workflow.specification and workflow.execution"
            + (f" (this file says schemaVersion {version})" if version else "")
        )
    spec_tasks = spec.get("tasks")
    exec_tasks = execution.get("tasks")
    if not isinstance(spec_tasks, list) or not isinstance(exec_tasks, list):
        raise fail("workflow.specification.tasks and workflow.execution.tasks must be lists")

    measured: dict[str, dict[str, Any]] = {}
    for task in exec_tasks:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise fail("every task in workflow.execution.tasks needs an 'id'")
        measured[task["id"]] = task

    ids: dict[str, str] = {}  # task id -> step id
    for task in spec_tasks:
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise fail("every task in workflow.specification.tasks needs an 'id'")
        if task["id"] in ids:
            raise fail(f"task {task['id']!r} is listed twice", task["id"])
        ids[task["id"]] = agent_name(task["id"])

    agents, steps = _steps(spec_tasks, measured, ids, fail)
    name = str(doc.get("name") or path.stem)
    makespan = execution.get("makespanInSeconds")
    measured_note = f"; measured makespan {makespan} s" if makespan is not None else ""
    out: dict[str, Any] = {
        "name": agent_name(name),
        "description": f"WfCommons instance {path.name}: {len(steps)} tasks{measured_note}",
        "agents": agents,
    }
    pool = _machines(execution.get("machines"))
    if pool:
        out["resources"] = {"pools": {"machines": pool}}
        for step in steps:
            wants = step.pop("_uses")
            step["uses"] = {"machines": {k: v for k, v in wants.items() if k in pool}}
    else:
        for step in steps:
            step.pop("_uses")
    out["steps"] = steps
    return out


def _machines(machines: object) -> dict[str, float]:
    """The cores (and memory) of all the trace's machines together; ``{}`` if none given."""
    if not isinstance(machines, list) or not machines:
        return {}
    cores = 0.0
    memory: float | None = 0.0
    for m in machines:
        cpu = m.get("cpu") if isinstance(m, dict) else None
        count = cpu.get("coreCount") if isinstance(cpu, dict) else None
        if not isinstance(count, int | float) or isinstance(count, bool) or count <= 0:
            return {}
        cores += count
        mem = m.get("memoryInBytes")
        if memory is not None and isinstance(mem, int | float) and not isinstance(mem, bool):
            memory += mem
        else:
            memory = None
    pool = {"cores": cores, "memory": memory} if memory else {"cores": cores}
    return {k: int(v) if v == int(v) else v for k, v in pool.items()}


def _program(task: dict[str, Any], run: dict[str, Any]) -> str:
    """The program a task runs: ``category``, ``command.program``, or its name's stem."""
    command = run.get("command")
    for candidate in (
        run.get("category"),
        task.get("category"),
        command.get("program") if isinstance(command, dict) else None,
    ):
        if isinstance(candidate, str) and candidate:
            return agent_name(candidate)
    name = str(task.get("name") or task["id"])
    return agent_name(re.sub(r"_ID\d+$", "", name))


def _steps(
    spec_tasks: list[dict[str, Any]],
    measured: dict[str, dict[str, Any]],
    ids: dict[str, str],
    fail: Callable[..., ImportFormatError],
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """One placeholder agent per program, and a step per task."""
    agents: dict[str, dict[str, Any]] = {}
    steps: list[dict[str, Any]] = []
    for task in spec_tasks:
        tid = task["id"]
        run = measured.get(tid)
        if run is None:
            raise fail(f"task {tid!r} has no entry in workflow.execution.tasks", tid)
        runtime = run.get("runtimeInSeconds")
        if not isinstance(runtime, int | float) or isinstance(runtime, bool) or runtime < 0:
            raise fail(f"task {tid!r} has no usable runtimeInSeconds ({runtime!r})", tid)
        program = _program(task, run)
        agents.setdefault(program, placeholder(f"the {program} program"))
        step: dict[str, Any] = {"id": ids[tid], "agent": program}
        parents = task.get("parents", [])
        if not isinstance(parents, list):
            raise fail(f"task {tid!r}: parents must be a list", tid)
        needs = []
        for parent in parents:
            if parent not in ids:
                raise fail(f"task {tid!r} has an unknown parent {parent!r}", tid)
            needs.append(ids[parent])
        if needs:
            step["needs"] = needs
        step["estimate"] = seconds(float(runtime))
        uses: dict[str, float] = {"cores": 1}
        for key, field in (("cores", "coreCount"), ("memory", "memoryInBytes")):
            value = run.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                uses[key] = value
        step["_uses"] = uses  # becomes `uses` of the machines' pool, if the trace lists them
        steps.append(step)

    return agents, steps
