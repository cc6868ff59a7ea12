"""counterpoint: agent orchestration with composable patterns, near-optimal schedules and
durable, explained runs.

The public API is what this module exports; everything else may change.
"""

from counterpoint import history
from counterpoint.agents.base import Agent, AgentKind, StepContext
from counterpoint.errors import (
    AgentConfigError,
    CannotResume,
    CounterpointError,
    ImportFormatError,
    Problem,
    RunNotFound,
    StepFailed,
    StepTimeout,
    StoreError,
    UnknownAgentKind,
    WorkflowInvalid,
)
from counterpoint.events import Event
from counterpoint.model.builder import (
    WorkflowBuilder,
    parallel,
    phase,
    phases,
    ref,
    sequence,
    step,
)
from counterpoint.model.load import load, loads
from counterpoint.model.workflow import (
    AgentSpec,
    InputSpec,
    RetryPolicy,
    Step,
    Trigger,
    Workflow,
)
from counterpoint.observe.base import RunObserver
from counterpoint.runner import approve, resume, run, run_sync, send_event, simulate
from counterpoint.scheduler.clock import RealClock, VirtualClock
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.result import RunResult, RunStatus, StepRecord
from counterpoint.store import MemoryStore, SqliteStore, Store, open_store

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentConfigError",
    "AgentKind",
    "AgentSpec",
    "CannotResume",
    "CounterpointError",
    "Event",
    "ImportFormatError",
    "InputSpec",
    "MemoryStore",
    "Problem",
    "RealClock",
    "RetryPolicy",
    "RunNotFound",
    "RunObserver",
    "RunResult",
    "RunStatus",
    "SqliteStore",
    "Step",
    "StepContext",
    "StepFailed",
    "StepRecord",
    "StepState",
    "StepTimeout",
    "Store",
    "StoreError",
    "Trigger",
    "UnknownAgentKind",
    "VirtualClock",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowInvalid",
    "approve",
    "history",
    "load",
    "loads",
    "open_store",
    "parallel",
    "phase",
    "phases",
    "ref",
    "resume",
    "run",
    "run_sync",
    "send_event",
    "sequence",
    "simulate",
    "step",
]
