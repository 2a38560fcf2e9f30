"""The ingest ledger: one SQLite (WAL) row per watched file.

The daemon writes it; ``vidx status``, ``/api/status`` and the UI only read it.
States: ``pending`` -> ``processing`` -> ``done`` | ``failed``.  Per-window results of
long VLM analyses are kept too, so a crash resumes at the next unanalysed window.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATES = ("pending", "processing", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,
    video_id TEXT,
    sha256 TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    sidecars TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    warnings INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    analyzer TEXT,
    duration_sec REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_video ON files(video_id);
CREATE TABLE IF NOT EXISTS windows(
    video_id TEXT NOT NULL,
    analyzer_key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start_sec REAL NOT NULL,
    end_sec REAL NOT NULL,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    raw TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY(video_id, analyzer_key, idx)
);
"""


@dataclass
class FileRow:
    path: str
    video_id: str | None
    sha256: str | None
    size: int
    mtime_ns: int
    sidecars: str
    state: str
    attempts: int
    error: str | None
    warnings: int
    progress: float
    events: int
    analyzer: str | None
    duration_sec: float | None
    created_at: float
    updated_at: float

    def status_dict(self) -> dict[str, Any]:
        """The public shape used by /api/status and `vidx status --json`."""
        return {
            "video_id": self.video_id,
            "path": self.path,
            "state": self.state,
            "events": self.events,
            "error": self.error,
            "progress": round(self.progress, 3),
            "warnings": self.warnings,
            "attempts": self.attempts,
            "analyzer": self.analyzer,
            "duration_sec": self.duration_sec,
        }


@dataclass
class WindowRow:
    idx: int
    start_sec: float
    end_sec: float
    status: str  # ok | failed
    result: list[dict[str, Any]]
    raw: str | None


class Ledger:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only and not self.path.exists():
                raise FileNotFoundError(self.path)
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=30000")
            except sqlite3.DatabaseError as exc:
                raise RuntimeError(
                    f"the ledger at {self.path} cannot be opened ({exc}); move it aside to start over"
                ) from exc
            self._local.conn = conn
        return conn

    class _Tx:
        def __init__(self, ledger: Ledger) -> None:
            self.ledger = ledger

        def __enter__(self) -> sqlite3.Connection:
            self.ledger._lock.acquire()
            c = self.ledger._conn()
            c.execute("BEGIN IMMEDIATE")
            return c

        def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
            c = self.ledger._conn()
            try:
                c.execute("COMMIT" if et is None else "ROLLBACK")
            finally:
                self.ledger._lock.release()

    def _tx(self) -> Ledger._Tx:
        return Ledger._Tx(self)

    # -- files --------------------------------------------------------------------
    def get(self, path: str) -> FileRow | None:
        try:
            r = self._conn().execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        except (sqlite3.OperationalError, FileNotFoundError):
            return None
        return FileRow(**dict(r)) if r else None

    def rows(self, state: str | None = None) -> list[FileRow]:
        try:
            if state:
                cur = self._conn().execute("SELECT * FROM files WHERE state = ? ORDER BY path", (state,))
            else:
                cur = self._conn().execute("SELECT * FROM files ORDER BY path")
            return [FileRow(**dict(r)) for r in cur]
        except (sqlite3.OperationalError, FileNotFoundError):
            return []

    def iter_done_with_sha(self, sha256: str) -> Iterator[FileRow]:
        cur = self._conn().execute("SELECT * FROM files WHERE sha256 = ? AND state = 'done'", (sha256,))
        for r in cur:
            yield FileRow(**dict(r))

    def observe(self, path: str, size: int, mtime_ns: int, sidecars: str) -> bool:
        """Record a stable file; return True when it needs (re)processing."""
        now = time.time()
        with self._tx() as c:
            r = c.execute("SELECT size, mtime_ns, sidecars, state FROM files WHERE path = ?", (path,)).fetchone()
            if r is None:
                c.execute(
                    "INSERT INTO files(path, size, mtime_ns, sidecars, state, created_at, updated_at) "
                    "VALUES (?,?,?,?, 'pending', ?, ?)",
                    (path, size, mtime_ns, sidecars, now, now),
                )
                return True
            changed = (r["size"], r["mtime_ns"]) != (size, mtime_ns)
            sidecars_changed = r["sidecars"] != sidecars
            if changed or sidecars_changed:
                c.execute(
                    "UPDATE files SET size=?, mtime_ns=?, sidecars=?, state='pending', attempts=0, error=NULL, "
                    "progress=0, updated_at=? WHERE path=?",
                    (size, mtime_ns, sidecars, now, path),
                )
                return True
            return r["state"] == "pending"

    def set(self, path: str, **fields: Any) -> None:
        if not fields:
            return
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as c:
            c.execute(f"UPDATE files SET {cols} WHERE path = ?", (*fields.values(), path))

    def ensure(self, path: str, size: int, mtime_ns: int, sidecars: str) -> None:
        """Make sure a row exists (for `vidx index`, which needs no watcher)."""
        self.observe(path, size, mtime_ns, sidecars)

    def remove(self, path: str) -> FileRow | None:
        row = self.get(path)
        with self._tx() as c:
            c.execute("DELETE FROM files WHERE path = ?", (path,))
        return row

    def reap_stale(self) -> int:
        """Rows left ``processing`` by a crash go back to ``pending``."""
        with self._tx() as c:
            return c.execute(
                "UPDATE files SET state='pending', updated_at=? WHERE state='processing'", (time.time(),)
            ).rowcount

    def requeue_failed(self) -> int:
        with self._tx() as c:
            return c.execute(
                "UPDATE files SET state='pending', attempts=0, error=NULL, updated_at=? WHERE state='failed'",
                (time.time(),),
            ).rowcount

    # -- windows (resume of long analyses) -----------------------------------------
    def windows(self, video_id: str, analyzer_key: str) -> dict[int, WindowRow]:
        cur = self._conn().execute(
            "SELECT idx, start_sec, end_sec, status, result, raw FROM windows WHERE video_id=? AND analyzer_key=?",
            (video_id, analyzer_key),
        )
        return {
            r["idx"]: WindowRow(r["idx"], r["start_sec"], r["end_sec"], r["status"], json.loads(r["result"]), r["raw"])
            for r in cur
        }

    def save_window(self, video_id: str, analyzer_key: str, w: WindowRow) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO windows VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    video_id,
                    analyzer_key,
                    w.idx,
                    w.start_sec,
                    w.end_sec,
                    w.status,
                    json.dumps(w.result, ensure_ascii=False),
                    w.raw,
                    time.time(),
                ),
            )

    def clear_windows(self, video_id: str, analyzer_key: str | None = None) -> None:
        with self._tx() as c:
            if analyzer_key:
                c.execute("DELETE FROM windows WHERE video_id=? AND analyzer_key=?", (video_id, analyzer_key))
            else:
                c.execute("DELETE FROM windows WHERE video_id=?", (video_id,))

    def status(self) -> dict[str, Any]:
        return {"videos": [r.status_dict() for r in self.rows()]}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def as_dict(row: FileRow) -> dict[str, Any]:
    return asdict(row)
