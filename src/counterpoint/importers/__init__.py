"""Importers: workflows from the benchmark formats STG, WfCommons and Pegasus DAX, and from
Agent OS workflow templates.

Each importer turns a file into workflow *data* (the dict a YAML file would hold), so the
result goes through the same validation as a hand-written workflow. For the benchmark
formats, runtimes become ``estimate``; core and memory demands are kept in each step's
``input``; every agent is a ``sleep`` placeholder that waits for its step's estimate. Agent
OS templates become phases of Claude Code subagents (see ``agent_os``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from counterpoint.errors import ImportFormatError
from counterpoint.importers import agent_os, dax, stg, wfcommons
from counterpoint.model.load import workflow_from_data
from counterpoint.model.locate import NoPositions
from counterpoint.model.workflow import Workflow

__all__ = ["FORMATS", "convert", "import_workflow", "to_yaml"]

FORMATS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "stg": stg.read,
    "wfcommons": wfcommons.read,
    "dax": dax.read,
    "agent-os": agent_os.read,
}


def convert(fmt: str, path: str | Path) -> dict[str, Any]:
    """The workflow data for ``path`` in format ``fmt`` (one of ``FORMATS``)."""
    try:
        reader = FORMATS[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        message = f"unknown format {fmt!r} (formats: {known})"
        raise ImportFormatError(str(path), None, message) from None
    p = Path(path)
    if not p.is_file():
        raise ImportFormatError(str(p), None, "no such file")
    return reader(p)


def import_workflow(fmt: str, path: str | Path) -> Workflow:
    """``convert`` followed by validation: a ready-to-run ``Workflow``."""
    data = convert(fmt, path)
    return workflow_from_data(data, NoPositions(str(path)), Path(path).resolve().parent)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block style, keys in the order they were built."""


def _flow_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    # short lists of scalars (needs) read best on one line
    flow = len(items) <= 8 and all(isinstance(i, str | int | float) for i in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)


_Dumper.add_representer(list, _flow_list)


def to_yaml(data: dict[str, Any]) -> str:
    """Workflow data as YAML, in the order it was built (after the importer's ``header``
    comment, if it gives one)."""
    header: str = getattr(data, "header", "")
    text: str = yaml.dump(
        dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return header + text
