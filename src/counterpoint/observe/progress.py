"""Live progress: a rich display on a terminal, plain lines elsewhere (logs, CI)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from counterpoint.durations import format_duration
from counterpoint.observe.base import RunObserver
from counterpoint.scheduler.core import StepState
from counterpoint.scheduler.result import RunResult, StepRecord

__all__ = ["LiveProgress", "PlainProgress", "progress_for"]

_STYLE = {
    StepState.SUCCEEDED: ("✓", "green"),
    StepState.FAILED: ("✗", "red"),
    StepState.SKIPPED: ("-", "yellow"),
    StepState.CANCELLED: ("!", "yellow"),
}
MAX_RUNNING_SHOWN = 8
PLAIN_EVERY_STEP_UP_TO = 500


class _Counts(RunObserver):
    """Counts by state, kept up to date cheaply on every transition."""

    def __init__(self) -> None:
        self.streams: dict[str, tuple[int, int]] = {}  # part/stream -> (done, total)
        self.total = 0
        self.done: dict[StepState, int] = dict.fromkeys(_STYLE, 0)
        self.running: dict[str, tuple[StepRecord, float]] = {}
        self.retries = 0
        self.started = time.monotonic()
        self.workflow = ""
        self.run_id = ""

    def run_started(self, run_id: str, workflow: str, steps: list[StepRecord]) -> None:
        self.total = len(steps)
        self.workflow = workflow
        self.run_id = run_id
        self.started = time.monotonic()

    def step_started(self, record: StepRecord, attempt: int) -> None:
        self.running[record.id] = (record, time.monotonic())

    def step_retrying(self, record: StepRecord, error: str, delay: float) -> None:
        self.running.pop(record.id, None)
        self.retries += 1

    def step_finished(self, record: StepRecord) -> None:
        self.running.pop(record.id, None)
        self.done[record.status] += 1

    @property
    def finished(self) -> int:
        return sum(self.done.values())


class LiveProgress(_Counts):
    """A progress bar, counts and the running steps, redrawn ten times a second."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None

    def run_started(self, run_id: str, workflow: str, steps: list[StepRecord]) -> None:
        super().run_started(run_id, workflow, steps)
        self._live = Live(self, console=self.console, auto_refresh=False, transient=True)
        self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while self._live is not None:
            self._live.refresh()
            await asyncio.sleep(0.1)

    def step_finished(self, record: StepRecord) -> None:
        super().step_finished(record)
        if record.status is StepState.FAILED and self._live is not None:
            self._live.console.print(
                Text.assemble(("✗ ", "red"), (record.id, "bold"), f" failed: {record.error}")
            )

    def step_retrying(self, record: StepRecord, error: str, delay: float) -> None:
        super().step_retrying(record, error, delay)
        if self._live is not None:
            self._live.console.print(
                Text(
                    f"↻ {record.id} attempt {record.attempts} failed ({_first_line(error)}); "
                    f"retrying in {format_duration(delay)}",
                    style="yellow",
                )
            )

    def stream_progress(self, part: str, stream: str, done: int, total: int) -> None:
        self.streams[f"{part}/{stream}"] = (done, total)

    def event(self, time: float, step_id: str, name: str, data: Mapping[str, object]) -> None:
        if name == "pattern_adapted" and self._live is not None:
            self._live.console.print(Text(adaptation_line(data), style="cyan"))

    def run_finished(self, result: RunResult) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich__(self) -> RenderableType:
        elapsed = time.monotonic() - self.started
        head = Text.assemble(
            (self.workflow, "bold"),
            f"  {self.finished}/{self.total} steps  ",
            *[
                (f"{sym} {n}  ", style)
                for st, (sym, style) in _STYLE.items()
                if (n := self.done[st])
            ],
            (f"running {len(self.running)}  ", "cyan"),
            f"{format_duration(elapsed)}",
        )
        bar = ProgressBar(total=max(self.total, 1), completed=self.finished, width=50)
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        shown = list(self.running.values())[:MAX_RUNNING_SHOWN]
        for rec, since in shown:
            attempt = f" (attempt {rec.attempts})" if rec.attempts > 1 else ""
            table.add_row(
                Text("▸ " + rec.id, style="cyan"), rec.agent + attempt, format_duration(now - since)
            )
        more = len(self.running) - len(shown)
        parts: list[RenderableType] = [head, bar]
        if self.streams:  # each stream's own progress
            line = Text()
            for name, (done, total) in self.streams.items():
                style = "green" if done == total else "cyan"
                line.append(f"{name} {done}/{total}  ", style=style)
            parts.append(line)
        parts.append(table)
        if more > 0:
            parts.append(Text(f"  … and {more} more running", style="dim"))
        return Group(*parts)


class PlainProgress(_Counts):
    """One line per finished step for small runs; for large ones, failures and every 10 %."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self._next_report = 0

    def run_started(self, run_id: str, workflow: str, steps: list[StepRecord]) -> None:
        super().run_started(run_id, workflow, steps)
        self._next_report = max(1, self.total // 10)

    def step_retrying(self, record: StepRecord, error: str, delay: float) -> None:
        super().step_retrying(record, error, delay)
        self.console.print(
            f"retry {record.id}: attempt {record.attempts} failed "
            f"({_first_line(error)}); next in {format_duration(delay)}",
            highlight=False,
        )

    def step_finished(self, record: StepRecord) -> None:
        super().step_finished(record)
        sym = _STYLE[record.status][0]
        if self.total <= PLAIN_EVERY_STEP_UP_TO or record.status is StepState.FAILED:
            took = ""
            if record.start is not None and record.end is not None:
                took = f" {format_duration(record.end - record.start)}"
            why = f": {_first_line(record.error)}" if record.error and sym != "✓" else ""
            how = " (cached)" if record.cached else ""
            self.console.print(
                f"{sym} {record.id} {record.status.value}{how}{took}{why}",
                highlight=False,
                markup=False,
            )
        elif self.finished >= self._next_report:
            self._next_report += max(1, self.total // 10)
            self.console.print(f"… {self.finished}/{self.total} steps done", highlight=False)

    def stream_progress(self, part: str, stream: str, done: int, total: int) -> None:
        self.streams[f"{part}/{stream}"] = (done, total)
        if self.total <= PLAIN_EVERY_STEP_UP_TO or done == total:
            self.console.print(
                f"  [{part}/{stream}] {done} of {total} done", highlight=False, markup=False
            )

    def event(self, time: float, step_id: str, name: str, data: Mapping[str, object]) -> None:
        if name == "pattern_adapted":  # always: the coordination changed
            self.console.print(adaptation_line(data), highlight=False, markup=False)
        elif self.total <= PLAIN_EVERY_STEP_UP_TO:
            who = step_id or "run"
            self.console.print(f"  {who}: {name} {dict(data)}", highlight=False, markup=False)


def adaptation_line(data: Mapping[str, object]) -> str:
    """A ``pattern_adapted`` event in words."""
    at = data.get("at_s")
    when = f" at {format_duration(at)}" if isinstance(at, int | float) else ""
    return (
        f"⇄ adapted{when}: {data.get('from')} → {data.get('to')} ({data.get('trigger')}): "
        f"{data.get('reason')}"
    )


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def progress_for(console: Console) -> RunObserver:
    """Live progress on a terminal, plain lines otherwise."""
    if console.is_terminal:
        return LiveProgress(console)
    return PlainProgress(console)
