"""The dependency graph of a workflow and its analysis (pure functions, no I/O)."""

from counterpoint.graph.analysis import GraphStats, analyse, critical_path, levels, upward_ranks
from counterpoint.graph.dag import Graph
from counterpoint.graph.mermaid import to_mermaid

__all__ = [
    "Graph",
    "GraphStats",
    "analyse",
    "critical_path",
    "levels",
    "to_mermaid",
    "upward_ranks",
]
