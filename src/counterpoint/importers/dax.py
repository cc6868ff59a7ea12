"""Pegasus DAX (2.x) abstract workflows: ``<job id name runtime>`` elements and
``<child ref><parent ref/></child>`` dependencies. One placeholder agent per job name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from counterpoint.errors import ImportFormatError
from counterpoint.importers.common import agent_name, placeholder, seconds

__all__ = ["read"]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read(path: Path) -> dict[str, Any]:
    """Workflow data for the DAX file at ``path``."""
    file = str(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise ImportFormatError(file, line, f"not valid XML: {exc}") from None
    except OSError as exc:
        raise ImportFormatError(file, None, f"cannot read the file: {exc}") from None
    if _local(root.tag) != "adag":
        raise ImportFormatError(
            file, None, f"expected an <adag> document, got <{_local(root.tag)}>"
        )

    jobs: dict[str, dict[str, Any]] = {}
    agents: dict[str, dict[str, Any]] = {}
    for job in root:
        if _local(job.tag) != "job":
            continue
        jid = job.get("id")
        if not jid:
            raise ImportFormatError(file, None, "a <job> has no id")
        if jid in jobs:
            raise ImportFormatError(file, None, f"job {jid!r} is defined twice")
        try:
            runtime = float(job.get("runtime", "0"))
        except ValueError:
            raise ImportFormatError(
                file,
                None,
                f"job {jid!r} has a runtime that is not a number: {job.get('runtime')!r}",
            ) from None
        if runtime < 0:
            raise ImportFormatError(file, None, f"job {jid!r} has a negative runtime {runtime}")
        program = agent_name(job.get("name") or "job")
        agents.setdefault(program, placeholder(f"the {program} job"))
        jobs[jid] = {"id": agent_name(jid), "agent": program, "estimate": seconds(runtime)}

    parents = _parents(root, jobs, file)
    steps = []
    for jid, entry in jobs.items():
        step = {"id": entry["id"], "agent": entry["agent"]}
        if parents.get(jid):
            step["needs"] = [jobs[p]["id"] for p in parents[jid]]
        step["estimate"] = entry["estimate"]
        steps.append(step)
    if not steps:
        raise ImportFormatError(file, None, "the DAX has no <job> elements")
    name = root.get("name") or path.stem
    if name == "test":  # the WorkflowSim files all say name="test"
        name = path.stem
    return {
        "name": agent_name(name),
        "description": f"Pegasus DAX {path.name}: {len(steps)} jobs (imported)",
        "agents": agents,
        "steps": steps,
    }


def _parents(root: ET.Element, jobs: dict[str, dict[str, Any]], file: str) -> dict[str, list[str]]:
    """Each job's parents, from ``<child ref><parent ref/></child>``, in file order."""
    parents: dict[str, list[str]] = {}
    for child in root:
        if _local(child.tag) != "child":
            continue
        ref = child.get("ref", "")
        if ref not in jobs:
            raise ImportFormatError(file, None, f"<child ref={ref!r}> names no job")
        for parent in child:
            pref = parent.get("ref", "")
            if _local(parent.tag) == "parent" and pref not in jobs:
                raise ImportFormatError(
                    file, None, f"<parent ref={pref!r}> of job {ref!r} names no job"
                )
            if _local(parent.tag) == "parent" and pref not in parents.setdefault(ref, []):
                parents[ref].append(pref)

    return parents
