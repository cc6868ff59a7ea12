"""The Standard Task Graph format (Tobita & Kasahara, 2002).

First line ``n``; then ``n + 2`` lines ``id time n_preds pred...`` with ids ``0 .. n+1`` in
topological order, where ``0`` and ``n + 1`` are zero-time dummy entry and exit tasks; then
``#`` comment lines. Real tasks become steps ``t1 .. tn``; the dummies are dropped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from counterpoint.errors import ImportFormatError
from counterpoint.importers.common import placeholder, seconds

__all__ = ["optimal_values", "read"]


def read(path: Path) -> dict[str, Any]:
    """Workflow data for the STG file at ``path``."""
    file = str(path)
    rows: list[tuple[int, list[int]]] = []  # (line number, numbers)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(file, None, f"cannot read an STG file: {exc}") from None
    for lineno, raw in enumerate(text.splitlines(), 1):
        body = raw.strip()
        if not body or body.startswith("#"):
            continue
        try:
            rows.append((lineno, [int(x) for x in body.split()]))
        except ValueError:
            raise ImportFormatError(
                file, lineno, f"expected whole numbers, got {body[:40]!r}"
            ) from None
    if not rows or len(rows[0][1]) != 1 or rows[0][1][0] < 1:
        first = rows[0][0] if rows else None
        raise ImportFormatError(file, first, "the first line should be the number of tasks")
    n = rows[0][1][0]
    tasks = rows[1:]
    if len(tasks) != n + 2:
        line = tasks[-1][0] if tasks else rows[0][0]
        raise ImportFormatError(
            file,
            line,
            f"expected {n + 2} task lines (n = {n} plus entry and exit), got {len(tasks)}",
        )
    steps: list[dict[str, Any]] = []
    for expected_id, (lineno, numbers) in enumerate(tasks):
        if len(numbers) < 3 or numbers[0] != expected_id or len(numbers) != 3 + numbers[2]:
            raise ImportFormatError(
                file,
                lineno,
                f"expected 'id time n_preds pred...' for task {expected_id}, got "
                f"{' '.join(map(str, numbers))!r}",
            )
        task_id, time, _, *preds = numbers
        for p in preds:
            if not 0 <= p < task_id:
                raise ImportFormatError(
                    file, lineno, f"task {task_id} needs task {p}, which does not come before it"
                )
        if time < 0:
            raise ImportFormatError(file, lineno, f"task {task_id} has a negative time {time}")
        if task_id in (0, n + 1):
            continue  # the dummy entry and exit tasks
        step: dict[str, Any] = {"id": f"t{task_id}", "agent": "task"}
        needs = [f"t{p}" for p in preds if p != 0]
        if needs:
            step["needs"] = needs
        step["estimate"] = seconds(time)
        steps.append(step)
    return {
        "name": path.stem,
        "description": f"Standard Task Graph {path.name}: {n} tasks (imported)",
        "agents": {"task": placeholder("an STG task")},
        "steps": steps,
    }


def optimal_values(root: Path) -> dict[tuple[str, int], float]:
    """Best known makespans from ``root/Optimal_values/*.csv``: ``(path, P) -> makespan``.

    ``path`` is relative to ``root`` (``50/rand0000.stg``). A row with two values gives a
    lower bound and the best known schedule; the best known one is returned.
    """
    out: dict[tuple[str, int], float] = {}
    for table in sorted((root / "Optimal_values").glob("*.csv")):
        with table.open(newline="") as f:
            for lineno, row in enumerate(csv.reader(f), 1):
                if not row:
                    continue
                try:
                    out[row[0].strip(), int(row[1])] = float(row[-1])
                except (IndexError, ValueError):
                    raise ImportFormatError(
                        str(table), lineno, "expected 'path,P,value[,value2]'"
                    ) from None
    return out
