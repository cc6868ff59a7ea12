"""Pattern selection, adaptation policies and learning from past runs.

``select`` analyses a workflow, simulates each admissible pattern and recommends one with its
reasons and the alternatives; ``policy`` gives the engine options a pattern stands for;
``learning`` reads what past runs say (outcomes per pattern, the user's preferences).
"""

from counterpoint.selection.analysis import Analysis, analyse
from counterpoint.selection.learning import Outcome, Preference, outcomes, preferences
from counterpoint.selection.policies import PATTERNS, PatternName, Policy, policy
from counterpoint.selection.select import Alternative, Recommendation, recommend, select

__all__ = [
    "PATTERNS",
    "Alternative",
    "Analysis",
    "Outcome",
    "PatternName",
    "Policy",
    "Preference",
    "Recommendation",
    "analyse",
    "outcomes",
    "policy",
    "preferences",
    "recommend",
    "select",
]
