"""Durable runs: the store interface, the memory and SQLite stores, the journal, replay."""

from counterpoint.store.base import BLOB_THRESHOLD, Entry, Posted, RunInfo, Store
from counterpoint.store.memory import MemoryStore
from counterpoint.store.replay import StepReplay, replay
from counterpoint.store.sqlite import SCHEMA_VERSION, SqliteStore, default_path, open_store

__all__ = [
    "BLOB_THRESHOLD",
    "SCHEMA_VERSION",
    "Entry",
    "MemoryStore",
    "Posted",
    "RunInfo",
    "SqliteStore",
    "StepReplay",
    "Store",
    "default_path",
    "open_store",
    "replay",
]
