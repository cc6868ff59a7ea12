"""The ``counterpoint`` command line.

Exit codes: 0 the run succeeded (or the file is valid), 1 the workflow failed, 2 invalid
input (the workflow file, options or inputs), 130 interrupted. The commands live in the
modules beside this one, by what they are for; importing them registers them on ``app``.
"""

from __future__ import annotations

import importlib
import sys

from counterpoint.cli.common import EXIT_INVALID, app, err
from counterpoint.errors import CounterpointError

__all__ = ["app", "main"]

# importing a module registers its commands; this order is the order of `--help`
for _module in ("running", "inspecting", "events", "planning"):
    importlib.import_module(f"counterpoint.cli.{_module}")


def main() -> None:
    """Entry point of the ``counterpoint`` command."""
    try:
        app()
    except CounterpointError as exc:  # a bug or a broken plugin: say it, without a traceback
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INVALID)
