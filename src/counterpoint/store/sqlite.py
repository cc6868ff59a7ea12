"""The embedded store: one SQLite file in WAL mode.

Writes go through one connection in the calling thread: an ``append`` is one short
transaction that adds one row, a *frame* holding all its entries as a JSON array of
``[seq, kind, step, attempt, time, data]`` (the engine groups every transition of a loop turn
into one append: that is the group commit). Data over 1 MiB is kept once, compressed, in
``blobs``, and its entry gets the blob's hash as a seventh item. In WAL mode with
``synchronous=NORMAL`` a committed transaction survives the process being killed at any
moment; only a power cut or an OS crash may lose the last few. ``synchronous="full"`` makes
every commit wait for the disk.

The schema has a version (``PRAGMA user_version``); opening an older store migrates it, and a
store written by a newer counterpoint is refused rather than damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson

from counterpoint.errors import RunNotFound, StoreError
from counterpoint.store.base import BLOB_THRESHOLD, Entry, Posted, RunInfo
from counterpoint.store.memory import pick_run

__all__ = ["DEFAULT_DIR", "SCHEMA_VERSION", "SqliteStore", "default_path", "open_store"]

DEFAULT_DIR = ".counterpoint"
FILE_NAME = "store.db"
SCHEMA_VERSION = 3

# MIGRATIONS[v] takes a store from version v - 1 to v.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        key         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        workflow    TEXT NOT NULL,
        source      TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        definition  TEXT NOT NULL,  -- the key of its row in definitions
        inputs      TEXT NOT NULL,
        options     TEXT NOT NULL,
        status      TEXT NOT NULL,
        pattern     TEXT NOT NULL,
        created_at  REAL NOT NULL,
        finished_at REAL,
        makespan_s  REAL,
        pid         INTEGER,
        host        TEXT NOT NULL,
        version     TEXT NOT NULL,
        error       TEXT
    );
    CREATE INDEX runs_by_time ON runs (created_at);
    CREATE INDEX runs_by_workflow ON runs (workflow, created_at);
    CREATE TABLE journal (
        run     INTEGER NOT NULL,
        first   INTEGER NOT NULL,
        last    INTEGER NOT NULL,
        entries BLOB NOT NULL,
        PRIMARY KEY (run, first)
    ) WITHOUT ROWID;
    CREATE TABLE definitions (  -- workflows as runs started from them, each kept once
        key    TEXT PRIMARY KEY,
        text   TEXT NOT NULL,
        agents TEXT NOT NULL
    );
    CREATE TABLE blobs (
        hash TEXT PRIMARY KEY,
        data BLOB NOT NULL
    );
    """,
    2: """
    CREATE TABLE cache (  -- step outputs by agent, version and inputs
        key       TEXT PRIMARY KEY,
        output    BLOB NOT NULL,
        stored_at REAL NOT NULL
    );
    """,
    3: """
    CREATE TABLE inbox (  -- events other processes sent to runs
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        run     TEXT NOT NULL,
        name    TEXT NOT NULL,
        data    TEXT NOT NULL,
        source  TEXT NOT NULL,
        sent_at REAL NOT NULL
    );
    CREATE INDEX inbox_by_run ON inbox (run, id);
    """,
}

_RUN_FIELDS = (
    "id",
    "workflow",
    "source",
    "fingerprint",
    "definition",
    "inputs",
    "options",
    "status",
    "pattern",
    "created_at",
    "finished_at",
    "makespan_s",
    "pid",
    "host",
    "version",
    "error",
)
_JSON_FIELDS = {"inputs", "options"}
# what get_run reads: the run's row, with its definition's text and step -> agent map
_SELECT_RUNS = (
    "SELECT "
    + ", ".join(f"r.{f}" for f in _RUN_FIELDS if f != "definition")
    + ", d.text, d.agents FROM runs r JOIN definitions d ON d.key = r.definition"
)


def default_path(store: str | Path | None = None) -> Path:
    """The store file: ``store`` (a file, or a folder holding ``store.db``), else
    ``$COUNTERPOINT_HOME/store.db``, else ``./.counterpoint/store.db``."""
    if store is None:
        home = os.environ.get("COUNTERPOINT_HOME")
        return Path(home or DEFAULT_DIR) / FILE_NAME
    path = Path(store)
    if path.suffix in (".db", ".sqlite", ".sqlite3") or path.is_file():
        return path
    return path / FILE_NAME


def open_store(store: str | Path | None = None, **options: object) -> SqliteStore:
    """The SQLite store at ``default_path(store)``, created if needed."""
    return SqliteStore(default_path(store), **options)  # type: ignore[arg-type]


class SqliteStore:
    """Runs in one SQLite file. Open with ``open_store()`` or ``SqliteStore(path)``."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["normal", "full"] = "normal",
        max_bytes: int | None = None,
    ) -> None:
        """``busy_timeout``: how long to wait for another process's write; ``max_bytes``:
        refuse to grow the file past this size (writes then fail as on a full disk)."""
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._keys: dict[str, int] = {}
        self._last: dict[int, int] = {}  # run key -> last journaled seq
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create its folder: {exc.strerror}") from None
        with self._errors("open"):
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
                if max_bytes is not None:
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    conn.execute(f"PRAGMA max_page_count={max(1, max_bytes // page)}")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path}>"

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def durable(self) -> bool:
        return True

    # --- errors ----------------------------------------------------------------------------

    def _errors(self, doing: str) -> _Translate:
        return _Translate(self.path, doing, self.busy_timeout)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer counterpoint (store schema {version}; this "
                f"one reads up to {SCHEMA_VERSION}); upgrade counterpoint to use it"
            )
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another may have won
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- writing ---------------------------------------------------------------------------

    async def create_run(self, run: RunInfo) -> None:
        with self._errors(f"record run {run.run_id}"):
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                key = self._definition(db, run.definition, run.agents)
                cur = db.execute(
                    f"INSERT INTO runs ({', '.join(_RUN_FIELDS)}) "
                    f"VALUES ({', '.join('?' * len(_RUN_FIELDS))})",
                    _run_row(run, key),
                )
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise StoreError(f"{self.path}: a run {run.run_id!r} exists already") from None
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            assert cur.lastrowid is not None
            self._keys[run.run_id] = cur.lastrowid

    @staticmethod
    def _definition(db: sqlite3.Connection, text: str, agents: dict[str, str]) -> str:
        """Keep a definition once, however many runs start from it; returns its key."""
        agents_json = json.dumps(agents, separators=(",", ":"))
        key = hashlib.sha256(f"{text}\0{agents_json}".encode()).hexdigest()
        db.execute("INSERT OR IGNORE INTO definitions VALUES (?, ?, ?)", (key, text, agents_json))
        return key

    async def update_run(self, run_id: str, **fields: object) -> None:
        unknown = [f for f in fields if (f not in _RUN_FIELDS and f != "agents") or f == "id"]
        if unknown:
            raise StoreError(f"cannot update {', '.join(unknown)} of a run")
        key = self._key(run_id)
        if not fields:
            return
        if "definition" in fields or "agents" in fields:  # a new definition row
            run = await self.get_run(run_id)
            text = fields.pop("definition", run.definition)
            agents = fields.pop("agents", run.agents)
            with self._errors(f"update run {run_id}"):
                fields["definition"] = self._definition(self._db(), str(text), agents)  # type: ignore[arg-type]
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
        with self._errors(f"update run {run_id}"):
            self._db().execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE key = ?",
                [*values, key],
            )

    async def append(self, run_id: str, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        key = self._key(run_id)
        previous = entries[0].seq - 1
        for e in entries:
            if e.seq <= previous:
                raise StoreError(
                    f"{self.path}: run {run_id}: journal entry {e.seq} is not after {previous}"
                )
            previous = e.seq
        blobs: list[tuple[str, bytes]] = []
        frame: Sequence[Sequence[object]] = entries
        if any(e.data is not None and len(e.data) > BLOB_THRESHOLD for e in entries):
            frame = []
            for e in entries:
                if e.data is not None and len(e.data) > BLOB_THRESHOLD:
                    raw = e.data.encode()
                    digest = hashlib.sha256(raw).hexdigest()
                    blobs.append((digest, zlib.compress(raw, 1)))
                    frame.append([*e[:5], None, digest])
                else:
                    frame.append(e)
        try:
            text = orjson.dumps(frame, default=tuple)  # entries are named tuples
        except TypeError as exc:  # text that is not valid Unicode
            raise StoreError(f"{self.path}: run {run_id}: cannot journal: {exc}") from None
        with self._errors(f"journal run {run_id}"):
            db = self._db()
            last = self._last.get(key)
            if last is None:
                row = db.execute(
                    "SELECT last FROM journal WHERE run = ? ORDER BY first DESC LIMIT 1", (key,)
                ).fetchone()
                last = row[0] if row else 0
            if entries[0].seq <= last:
                raise StoreError(
                    f"{self.path}: run {run_id}: journal entry {entries[0].seq} is not after "
                    f"{last} (is another process writing this run?)"
                )
            row = (key, entries[0].seq, entries[-1].seq, text)
            if not blobs:  # one statement: its own transaction
                db.execute("INSERT INTO journal VALUES (?, ?, ?, ?)", row)
            else:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?)", blobs)
                    db.execute("INSERT INTO journal VALUES (?, ?, ?, ?)", row)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            self._last[key] = entries[-1].seq

    # --- reading ---------------------------------------------------------------------------

    def _key(self, run_id: str) -> int:
        key = self._keys.get(run_id)
        if key is None:
            with self._errors("read runs"):
                row = self._db().execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run {run_id!r} in {self.path}")
            key = self._keys[run_id] = row[0]
        return key

    def _resolve(self, run_id: str) -> str:
        with self._errors("read runs"):
            db = self._db()
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                return run_id
            # ids starting with run_id: a range on the unique index, case-sensitive
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id",
                    (run_id, run_id + "\U0010ffff"),
                )
            ]
        return pick_run(run_id, ids, str(self.path))

    async def get_run(self, run_id: str) -> RunInfo:
        full = self._resolve(run_id)
        with self._errors(f"read run {full}"):
            row = self._db().execute(f"{_SELECT_RUNS} WHERE r.id = ?", (full,)).fetchone()
        if row is None:  # removed in between
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        return _run_info(row)

    async def list_runs(self, *, limit: int = 50, workflow: str | None = None) -> list[RunInfo]:
        where, params = ("WHERE r.workflow = ?", [workflow]) if workflow is not None else ("", [])
        with self._errors("list runs"):
            rows = (
                self._db()
                .execute(
                    f"{_SELECT_RUNS} {where} ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
                    [*params, limit],
                )
                .fetchall()
            )
        return [_run_info(r) for r in rows]

    async def entries(self, run_id: str, *, after: int = 0) -> list[Entry]:
        key = self._key(self._resolve(run_id))
        out: list[Entry] = []
        with self._errors(f"read the journal of run {run_id}"):
            db = self._db()
            frames = db.execute(
                "SELECT entries FROM journal WHERE run = ? AND last > ? ORDER BY first",
                (key, after),
            ).fetchall()
            for (text,) in frames:
                for item in orjson.loads(text):
                    if item[0] <= after:
                        continue
                    if len(item) == 7:
                        item[5] = self._blob(db, run_id, item[0], item[6])
                    out.append(Entry(*item[:6]))
        return out

    def _blob(self, db: sqlite3.Connection, run_id: str, seq: int, digest: str) -> str:
        found = db.execute("SELECT data FROM blobs WHERE hash = ?", (digest,)).fetchone()
        if found is None:
            raise StoreError(
                f"{self.path}: run {run_id}, entry {seq}: its blob {digest} is missing"
            )
        return zlib.decompress(found[0]).decode()

    async def cache_get(self, key: str) -> tuple[str, float] | None:
        with self._errors("read the cache"):
            row = (
                self._db()
                .execute("SELECT output, stored_at FROM cache WHERE key = ?", (key,))
                .fetchone()
            )
        if row is None:
            return None
        return zlib.decompress(row[0]).decode(), float(row[1])

    async def cache_put(self, key: str, output: str, stored_at: float) -> None:
        data = zlib.compress(output.encode(), 1)
        with self._errors("write the cache"):
            self._db().execute(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, data, stored_at)
            )

    async def post(self, run_id: str, name: str, data: str, source: str, sent_at: float) -> int:
        run = await self.get_run(run_id)  # it must exist (a prefix is fine)
        with self._errors(f"send an event to run {run.run_id}"):
            cur = self._db().execute(
                "INSERT INTO inbox (run, name, data, source, sent_at) VALUES (?, ?, ?, ?, ?)",
                (run.run_id, name, data, source, sent_at),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def inbox(self, run_id: str, after: int = 0) -> list[Posted]:
        with self._errors(f"read the inbox of run {run_id}"):
            rows = (
                self._db()
                .execute(
                    "SELECT id, name, data, source, sent_at FROM inbox WHERE run = ? AND id > ? "
                    "ORDER BY id",
                    (run_id, after),
                )
                .fetchall()
            )
        return [Posted(*row) for row in rows]

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``ok`` or what is wrong."""
        with self._errors("check"):
            rows = self._db().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with self._errors("close"):
                conn.close()


def _run_row(run: RunInfo, definition_key: str) -> list[object]:
    values: list[object] = []
    for name in _RUN_FIELDS:
        if name == "definition":
            values.append(definition_key)
            continue
        value = getattr(run, "run_id" if name == "id" else name)
        values.append(json.dumps(value) if name in _JSON_FIELDS else value)
    return values


def _run_info(row: Sequence[object]) -> RunInfo:
    names = [f for f in _RUN_FIELDS if f != "definition"]
    fields = dict(zip([*names, "definition", "agents"], row, strict=True))
    for name in (*_JSON_FIELDS, "agents"):
        fields[name] = json.loads(str(fields[name]))
    fields["run_id"] = fields.pop("id")
    return RunInfo(**fields)  # type: ignore[arg-type]


class _Translate:
    """Turns sqlite3's errors into ``StoreError`` messages that say what to do."""

    def __init__(self, path: Path, doing: str, busy_timeout: float) -> None:
        self.path = path
        self.doing = doing
        self.busy_timeout = busy_timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if not isinstance(exc, sqlite3.Error):
            return
        text = str(exc)
        lower = text.lower()
        where = f"{self.path}: cannot {self.doing}"
        if "locked" in lower or "busy" in lower:
            message = (
                f"{where}: the store is locked by another process (waited "
                f"{self.busy_timeout:g}s); try again when it is done"
            )
        elif "full" in lower:
            message = (
                f"{where}: the disk (or the store's size limit) is full; nothing journaled "
                "before is lost: free some space, then `counterpoint resume` the run"
            )
        elif "not a database" in lower or "malformed" in lower or "corrupt" in lower:
            message = (
                f"{where}: the file is not a counterpoint store or is damaged ({text}); "
                "move it aside to start a new store"
            )
        elif "unable to open" in lower or "readonly" in lower or "read-only" in lower:
            message = f"{where}: {text} (check the folder exists and is writable)"
        else:
            message = f"{where}: {text}"
        raise StoreError(message) from exc
