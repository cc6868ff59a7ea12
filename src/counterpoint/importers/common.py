"""What the importers share: duration text and the placeholder agents."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["agent_name", "placeholder", "seconds"]


def seconds(value: float) -> str:
    """A duration as the workflow format writes it: ``9s``, ``534.058s``."""
    if value == int(value):
        return f"{int(value)}s"
    return f"{value!r}s"


def placeholder(what: str) -> dict[str, Any]:
    """A ``sleep`` agent standing in for ``what``: it sleeps for the estimate of its step."""
    return {
        "kind": "sleep",
        "description": f"placeholder for {what}: sleeps for the estimate of its step",
    }


_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


def agent_name(text: str) -> str:
    """A usable agent or step name from free text (``mProject``, ``split-fasta``)."""
    name = _UNSAFE.sub("_", text).strip("_") or "task"
    return name if not name[0].isdigit() else f"t{name}"
