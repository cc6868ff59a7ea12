"""Policies over what runs and what it writes: secrets kept out of the journal and output."""

from counterpoint.policy.redact import REDACTED, RedactingWriter, Redactor

__all__ = ["REDACTED", "RedactingWriter", "Redactor"]
