"""Backends by name, for the command line and for resuming a run where it started."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from counterpoint.backends.base import Backend
from counterpoint.errors import CounterpointError
from counterpoint.scheduler.clock import Clock

__all__ = [
    "BACKENDS",
    "BackendFactory",
    "BackendUnavailable",
    "backend_from_spec",
    "make_backend",
]

BACKENDS = ("local", "ray")

BackendFactory = Callable[[Clock], Backend]


class BackendUnavailable(CounterpointError):
    """The backend asked for cannot run here (not installed, cluster unreachable, too small)."""


def make_backend(
    name: str, *, address: str | None = None, storage: Path | None = None
) -> BackendFactory | None:
    """A factory for the backend called ``name`` (``None``: the default, local tasks)."""
    if name == "local":
        return None
    if name == "ray":
        try:
            from counterpoint.backends.ray import RayBackend
        except ImportError as exc:
            raise BackendUnavailable(
                f"the ray backend needs Ray, which is not installed ({exc}): "
                "pip install 'counterpoint[ray]'"
            ) from None
        return RayBackend.factory(address=address, storage=storage)
    raise BackendUnavailable(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")


def backend_from_spec(spec: object) -> BackendFactory | None:
    """The backend a run was journaled with (its factory's ``spec``), to resume it there."""
    if not isinstance(spec, Mapping) or spec.get("kind") in (None, "local"):
        return None
    address = spec.get("address")
    storage = spec.get("storage")
    return make_backend(
        str(spec["kind"]),
        address=address if isinstance(address, str) else None,
        storage=Path(storage) if isinstance(storage, str) else None,
    )
