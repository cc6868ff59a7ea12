"""Keeping secrets out of everything a run writes or shows.

A secret is the value of an environment variable or a run's input whose name contains KEY,
TOKEN, SECRET or PASSWORD (any case; values shorter than ``MIN_SECRET`` characters are left
alone, so that a flag such as ``USE_KEYRING=1`` does not blank every ``1``), or any text
matching one of the workflow's ``policy: {redact: [...]}`` patterns (regular expressions).
A secret input is not kept: a resumed run is given it again. Each is replaced by
``[redacted]`` in the journal (entries, the stored definition and inputs, the run's error),
in the CLI's JSON and progress lines, and in agents' log records.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

__all__ = ["MIN_SECRET", "REDACTED", "SECRET_NAME", "RedactingWriter", "Redactor"]

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
MIN_SECRET = 8
REDACTED = "[redacted]"


class Redactor:
    """Replaces secrets in text and in JSON-like values."""

    __slots__ = ("_re",)

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for v in values:
            if len(v) >= MIN_SECRET:
                forms.add(v)
                forms.add(json.dumps(v)[1:-1])  # as it appears inside JSON text
        parts = [re.escape(v) for v in sorted(forms, key=len, reverse=True)]
        parts += [f"(?:{p})" for p in patterns]
        self._re = re.compile("|".join(parts)) if parts else None

    @classmethod
    def from_environment(
        cls, patterns: Iterable[str] = (), env: Mapping[str, str] | None = None
    ) -> Redactor:
        """Secrets from the environment's KEY/TOKEN/SECRET/PASSWORD variables, and
        ``patterns``."""
        env = os.environ if env is None else env
        return cls((v for k, v in env.items() if SECRET_NAME.search(k)), patterns)

    @classmethod
    def for_run(cls, patterns: Iterable[str], inputs: Mapping[str, object]) -> Redactor:
        """The environment's secrets, the run's inputs whose names say they are secrets, and
        ``patterns``."""
        secret_inputs = [
            v for k, v in inputs.items() if SECRET_NAME.search(k) and isinstance(v, str)
        ]
        env = [v for k, v in os.environ.items() if SECRET_NAME.search(k)]
        return cls([*env, *secret_inputs], patterns)

    def __bool__(self) -> bool:
        return self._re is not None

    def __repr__(self) -> str:
        return f"<Redactor {'on' if self._re is not None else 'off'}>"

    def text(self, s: str) -> str:
        return self._re.sub(REDACTED, s) if self._re is not None and s else s

    def value(self, v: object) -> object:
        """``v`` with every string in it redacted (mappings' keys too)."""
        if self._re is None:
            return v
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, Mapping):
            return {self.text(str(k)): self.value(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [self.value(x) for x in v]
        return v

    def log_filter(self) -> logging.Filter:
        """A filter that redacts the records of a logger it is added to."""
        redactor = self

        class _Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.msg = redactor.text(record.getMessage())
                record.args = ()
                return True

        return _Redact()


class RedactingWriter(io.TextIOBase):
    """A text stream that redacts what is written to it before passing it on: to
    ``sys.stdout`` or ``sys.stderr`` as they are at the time of writing (``stream``), so
    that a test harness that swaps them still sees the output. ``redactor`` may be replaced
    once a workflow's patterns are known."""

    def __init__(self, stream: str, redactor: Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    @property
    def target(self) -> TextIO:
        target: TextIO = getattr(sys, self.stream)
        # a live display redirects sys.stdout to itself: write to what it stands in for
        while hasattr(target, "rich_proxied_file"):
            target = target.rich_proxied_file
        return target

    def write(self, s: str) -> int:
        self.target.write(self.redactor.text(s))
        return len(s)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8") or "utf-8"
