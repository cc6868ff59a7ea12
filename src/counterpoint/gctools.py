"""Keep Python's garbage collector from scanning large, long-lived structures again and again.

Loading a 100,000-step workflow creates millions of objects and no garbage cycles; a run keeps
the workflow and its records alive until it ends. Left to itself, the collector re-scans all
of them many times over, which costs more than the loading or the scheduling.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["frozen_gc", "paused_gc"]


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No collections inside (for bounded work that creates no garbage cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def frozen_gc() -> Iterator[None]:
    """Objects that exist now are left out of collections until the block ends.

    Objects made inside are collected as usual. Does nothing if the program has frozen
    objects itself (``gc.freeze`` is process-wide and this would undo it).
    """
    if _frozen["depth"] or gc.get_freeze_count():  # nested, or frozen by the program
        yield
        return
    gc.freeze()
    _frozen["depth"] += 1
    try:
        yield
    finally:
        _frozen["depth"] -= 1
        gc.unfreeze()


_frozen = {"depth": 0}
