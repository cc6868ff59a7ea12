"""A workflow's graph as a Mermaid flowchart."""

from __future__ import annotations

import re

from counterpoint.graph.dag import Graph

__all__ = ["to_mermaid"]

_SAFE = re.compile(r"[^A-Za-z0-9_]")


def to_mermaid(
    graph: Graph, labels: dict[str, str] | None = None, critical: list[str] | None = None
) -> str:
    """``flowchart TD`` text: one node per step (labelled with its agent), one edge per need.

    Steps on ``critical`` are highlighted.
    """
    names = [f"s{i}_{_SAFE.sub('_', sid)}" for i, sid in enumerate(graph.ids)]
    lines = ["flowchart TD"]
    for i, sid in enumerate(graph.ids):
        label = sid if not labels or sid not in labels else f"{sid}<br/><i>{labels[sid]}</i>"
        lines.append(f'    {names[i]}["{label.replace(chr(34), "#quot;")}"]')
    for i, ps in enumerate(graph.preds):
        lines.extend(f"    {names[p]} --> {names[i]}" for p in ps)
    if critical:
        lines.append("    classDef critical stroke:#d33,stroke-width:3px")
        index = graph.index
        lines.append("    class " + ",".join(names[index[s]] for s in critical) + " critical")
    return "\n".join(lines) + "\n"
