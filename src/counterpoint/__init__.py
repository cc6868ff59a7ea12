"""counterpoint: agent orchestration with composable patterns, near-optimal schedules and
durable, explained runs.

The public API is what this module exports; everything else may change.
"""

from counterpoint.agents.base import Agent, AgentKind, StepContext
from counterpoint.errors import (
    AgentConfigError,
    CounterpointError,
    ImportFormatError,
    Problem,
    StepFailed,
    StepTimeout,
    UnknownAgentKind,
    WorkflowInvalid,
)
from counterpoint.model.builder import WorkflowBuilder, ref
from counterpoint.model.load import load, loads
from counterpoint.model.workflow import AgentSpec, InputSpec, RetryPolicy, Step, Workflow
from counterpoint.observe.base import RunObserver
from counterpoint.runner import run, run_sync, simulate
from counterpoint.scheduler.clock import RealClock, VirtualClock
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.result import RunResult, RunStatus, StepRecord

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentConfigError",
    "AgentKind",
    "AgentSpec",
    "CounterpointError",
    "ImportFormatError",
    "InputSpec",
    "Problem",
    "RealClock",
    "RetryPolicy",
    "RunObserver",
    "RunResult",
    "RunStatus",
    "Step",
    "StepContext",
    "StepFailed",
    "StepRecord",
    "StepState",
    "StepTimeout",
    "UnknownAgentKind",
    "VirtualClock",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowInvalid",
    "load",
    "loads",
    "ref",
    "run",
    "run_sync",
    "simulate",
]
