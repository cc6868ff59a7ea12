"""``kind: python``: a function named ``module:function``, or a callable given from Python.

The function takes the step context. Coroutine functions run on the event loop; plain
functions run in a worker thread so that they never block other steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from counterpoint.agents.base import Agent, StepContext
from counterpoint.errors import AgentConfigError
from counterpoint.model.workflow import AgentSpec

__all__ = ["PYTHON", "import_function"]


def import_function(target: str, base_dir: Path | None = None) -> Callable[..., object]:
    """Import ``module:function`` (dots allowed on both sides); raises ``AgentConfigError``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise AgentConfigError(f"expected 'module:function', got {target!r}")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.append(str(base_dir))
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentConfigError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself is broken: say how, without a traceback
        raise AgentConfigError(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AgentConfigError(f"module {module_name!r} has no {attr!r}") from None
    if not callable(obj):
        raise AgentConfigError(f"{target!r} is not callable")
    return obj


class PythonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    function: str | Callable[..., object]

    @field_validator("function")
    @classmethod
    def _importable(
        cls, value: str | Callable[..., object], info: ValidationInfo
    ) -> str | Callable[..., object]:
        if isinstance(value, str):
            base_dir = (info.context or {}).get("base_dir")
            try:
                import_function(value, base_dir)
            except AgentConfigError as exc:
                raise ValueError(str(exc)) from None
        return value


class _AsyncFunction:
    __slots__ = ("fn",)
    portable = True  # may run in another process (the Ray backend)

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn = fn

    async def __call__(self, ctx: StepContext) -> object:
        result = self.fn(ctx)
        assert inspect.isawaitable(result)
        return await result


class _SyncFunction:
    __slots__ = ("fn",)
    portable = True
    blocking = True  # elsewhere, ``fn`` may be called in the thread that runs the step

    def __init__(self, fn: Callable[..., object]) -> None:
        self.fn = fn

    async def __call__(self, ctx: StepContext) -> object:
        # the thread hands what it publishes or charges to the event loop, in order
        loop = asyncio.get_running_loop()
        charge = ctx._charge
        ctx = dataclasses.replace(
            ctx,
            _emit=partial(_in_loop, loop, ctx._emit),
            _charge=partial(_in_loop, loop, charge) if charge is not None else None,
        )
        return await asyncio.to_thread(self.fn, ctx)


def _in_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: object) -> None:
    """``fn(*args)`` on ``loop``'s thread: soon, if called from another thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
    else:
        loop.call_soon_threadsafe(fn, *args)


class PythonKind:
    """Runs a Python function with the step context as its one argument."""

    options = PythonOptions

    def build(self, spec: AgentSpec, options: BaseModel, base_dir: Path) -> Agent:
        assert isinstance(options, PythonOptions)
        fn = options.function
        if isinstance(fn, str):
            fn = import_function(fn, base_dir)
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        ):
            return _AsyncFunction(fn)
        return _SyncFunction(fn)


PYTHON = PythonKind()
