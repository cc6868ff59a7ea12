"""Outputs too large to travel through the driver.

A backend that runs steps elsewhere (Ray) keeps a large output where it was made and hands
the engine a :class:`LargeOutput` in its place: dependents that run there too get the value
from there, and the journal records a reference to a file the worker wrote (when the run is
durable) instead of the value. The engine fetches the value itself only when it must look
inside (a checkpoint, the policy's output rules, a reference to a part of it, an agent that
runs in the driver).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "MARK",
    "LargeOutput",
    "OutputLost",
    "all_available",
    "contains_large",
    "materialize",
    "revive",
]

MARK = "$counterpoint.large_output"
"""The key of the one-key mapping that stands for a large output in the journal."""


class OutputLost(Exception):
    """A large output is neither in the object store any more nor in a file."""


class LargeOutput:
    """A step's output kept out of the driver: ``nbytes`` of JSON with digest ``sha256``,
    reachable through ``fetch`` (the object store, while the run's Ray session lives) and
    ``path`` (a file, when the run is durable)."""

    __slots__ = ("fetch", "nbytes", "path", "ref", "sha256")

    made = 0  # how many exist or existed in this process: 0 spares the engine a search

    def __init__(
        self,
        nbytes: int,
        sha256: str,
        path: str | None = None,
        ref: object = None,
        fetch: Callable[[], object] | None = None,
    ) -> None:
        LargeOutput.made += 1
        self.nbytes = nbytes
        self.sha256 = sha256
        self.path = path
        self.ref = ref  # a Ray ObjectRef, for the backend that made it
        self.fetch = fetch

    def __repr__(self) -> str:
        where = "object store" if self.ref is not None else "file" if self.path else "lost"
        return f"<large output: {_size(self.nbytes)} ({where})>"

    __str__ = __repr__

    @property
    def available(self) -> bool:
        """Whether the value can still be had (object store or an intact file)."""
        if self.fetch is not None:
            return True
        return self.path is not None and Path(self.path).is_file()

    def value(self) -> object:
        """The output itself: from the object store if it is still there, else its file."""
        if self.fetch is not None:
            try:
                return self.fetch()
            except Exception:
                if self.path is None:
                    raise
        if self.path is None:
            raise OutputLost(
                f"a large output ({_size(self.nbytes)}) lived only in a Ray object store that is "
                "gone (the run kept no file of it: give the Ray backend a storage folder)"
            )
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            raise OutputLost(f"{self.path}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise OutputLost(f"{self.path}: changed since the step wrote it (digest differs)")
        return json.loads(data)

    def to_json(self) -> dict[str, object]:
        """What the journal keeps instead of the value."""
        return {MARK: {"bytes": self.nbytes, "sha256": self.sha256, "path": self.path}}


def revive(value: object) -> object:
    """``value`` (decoded from the journal) with each reference turned back into a
    :class:`LargeOutput` reading its file."""
    if isinstance(value, dict):
        if len(value) == 1 and MARK in value:
            ref = value[MARK]
            if isinstance(ref, dict):
                path = ref.get("path")
                return LargeOutput(
                    int(ref.get("bytes") or 0),
                    str(ref.get("sha256") or ""),
                    path if isinstance(path, str) else None,
                )
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value


def materialize(value: object) -> object:
    """``value`` with every :class:`LargeOutput` in it replaced by the output itself."""
    if not LargeOutput.made:
        return value
    return _fill(value)


def _fill(value: object) -> object:
    if isinstance(value, LargeOutput):
        return value.value()
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v) for v in value]
    return value


def contains_large(value: object) -> bool:
    """Whether ``value`` holds a :class:`LargeOutput` anywhere."""
    if not LargeOutput.made:
        return False
    if isinstance(value, LargeOutput):
        return True
    if isinstance(value, dict):
        return any(contains_large(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_large(v) for v in value)
    return False


def all_available(value: object) -> bool:
    """Whether every :class:`LargeOutput` in ``value`` can still be read."""
    if isinstance(value, LargeOutput):
        return value.available
    if isinstance(value, dict):
        return all(all_available(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(all_available(v) for v in value)
    return True


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
