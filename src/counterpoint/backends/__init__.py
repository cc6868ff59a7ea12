"""Where steps run: the backend interface and the local and virtual backends."""

from counterpoint.backends.base import Backend, Completion, Job, Outcome
from counterpoint.backends.local import LocalBackend
from counterpoint.backends.virtual import VirtualBackend

__all__ = ["Backend", "Completion", "Job", "LocalBackend", "Outcome", "VirtualBackend"]
