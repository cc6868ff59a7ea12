"""The engine's side of the journal: transitions gathered in memory, committed in groups.

The engine adds entries as things happen and calls ``commit`` once per turn of its loop:
before it starts steps (so a success is durable before any dependent starts, and an attempt
is journaled before its agent runs) and before it waits. One turn's entries go in one
transaction: that is the group commit that keeps durability cheap.
"""

from __future__ import annotations

import json
import time

from counterpoint.outputs import LargeOutput
from counterpoint.policy.redact import Redactor
from counterpoint.store.base import Entry, Store

__all__ = ["Journal", "OutputNotStorable", "encode_output"]


class OutputNotStorable(ValueError):
    """A step's output is not JSON, so a durable store cannot keep it."""


def encode_output(value: object) -> str:
    """The output as JSON text; ``OutputNotStorable`` says why it cannot be."""
    if value is None:
        return "null"
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=_reference)
    except (TypeError, ValueError, RecursionError) as exc:
        raise OutputNotStorable(
            f"the output cannot be stored: {exc} (outputs must be JSON: text, numbers, "
            "true/false, null, lists, and mappings with text keys)"
        ) from None
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise OutputNotStorable(
                f"the output cannot be stored: its text is not valid Unicode ({exc.reason} at "
                f"{exc.start}); decode bytes with errors='replace' first"
            ) from None
    return text


def _reference(value: object) -> object:
    if isinstance(value, LargeOutput):  # kept elsewhere: the journal holds where
        return value.to_json()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Journal:
    """Entries of one run waiting to be committed to its store."""

    __slots__ = ("broken", "pending", "redactor", "run_id", "seq", "store")

    def __init__(
        self, store: Store, run_id: str, *, seq: int = 0, redactor: Redactor | None = None
    ) -> None:
        self.redactor = redactor if redactor else None  # secrets kept out of the entries
        self.store = store
        self.run_id = run_id
        self.seq = seq  # the last number given
        self.pending: list[Entry] = []
        self.broken = False  # a commit failed: nothing more is written

    def __repr__(self) -> str:
        return f"<Journal {self.run_id} seq={self.seq} pending={len(self.pending)}>"

    def add(
        self,
        kind: str,
        step: str | None,
        attempt: int = 0,
        data: str | None = None,
        when: float | None = None,
    ) -> None:
        """One entry; ``when`` (wall-clock seconds) defaults to now."""
        self.seq += 1
        self.pending.append(
            Entry(self.seq, kind, step, attempt, time.time() if when is None else when, data)
        )

    def event(self, step: str | None, kind: str, data: object, attempt: int = 0) -> None:
        """An entry whose data is any value (events): what is not JSON is written as text."""
        text = json.dumps(data, ensure_ascii=False, default=repr)
        if not text.isascii():  # text that is not valid Unicode: keep what can be kept
            text = text.encode("utf-8", "replace").decode()
        self.add(kind, step, attempt, text)

    async def commit(self) -> None:
        """Make every pending entry durable (raises ``StoreError``; then ``broken``)."""
        if not self.pending or self.broken:
            return
        batch, self.pending = self.pending, []
        redactor = self.redactor
        if redactor is not None:
            batch = [e._replace(data=redactor.text(e.data)) if e.data else e for e in batch]
        try:
            await self.store.append(self.run_id, batch)
        except BaseException:
            self.broken = True
            raise
