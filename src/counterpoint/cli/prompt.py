"""Asking on the terminal: a run started from a terminal answers its approval steps there
too (the first answer wins, from here or from ``counterpoint approve``)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from rich.console import Console

from counterpoint.events import Event
from counterpoint.scheduler.engine import Engine

__all__ = ["TerminalApprovals"]


class TerminalApprovals:
    """Asks, one approval step at a time, in a thread that reads lines (a daemon: a question
    left unanswered when the run ends does not hold the process)."""

    def __init__(self, engine: Engine, console: Console, read_line: Callable[[], str] = input):
        self.engine = engine
        self.console = console
        self.read_line = read_line
        self.loop = asyncio.get_running_loop()
        self.asks: queue.Queue[Event] = queue.Queue()
        self.thread = threading.Thread(target=self._answer, name="approvals", daemon=True)
        self.thread.start()
        engine.bus.subscribe("approval-requested", self.asks.put)
        engine.bus.subscribe("escalated", self.asks.put)

    def _answer(self) -> None:
        while True:
            event = self.asks.get()
            step = event.source
            if event.name == "escalated":
                prompt = f"step {step!r} failed: {event.data.get('error')}. Run it again?"
            else:
                prompt = str(event.data.get("prompt") or f"approve step {step!r}?")
            self.console.print(
                f"\n[bold]{prompt}[/bold] [dim](step {step}; y = approve, n = reject, then an "
                f"optional comment; or `counterpoint approve {self.engine.run_id} {step}`)"
                "[/dim]"
            )
            try:
                line = self.read_line().strip()
            except (EOFError, OSError):
                return  # no terminal after all: approvals come from elsewhere
            answer, _, comment = line.partition(" ")
            approved = answer.lower() in ("y", "yes")
            if not approved and answer.lower() not in ("n", "no"):
                self.asks.put(event)  # not an answer: ask again
                continue
            data = {"step": step, "approved": approved, "comment": comment.strip() or None}
            self.loop.call_soon_threadsafe(self.engine.send, "approval_given", data, "terminal")
