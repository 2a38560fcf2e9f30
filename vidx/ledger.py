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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidx.sqlite import connect

STATES = ("pending", "processing", "done", "failed")


class LedgerError(RuntimeError):
    """The ledger cannot be read or written. Never treated as "no rows": callers that act on
    the ledger's contents (forgetting files, removing orphans) must stop instead."""

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
    updated_at REAL NOT NULL,
    missing_since REAL,
    message TEXT,
    note TEXT,
    subs_digest TEXT,
    started_at REAL,
    finished_at REAL,
    seconds_spent REAL
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_video ON files(video_id);
CREATE INDEX IF NOT EXISTS files_sha ON files(sha256);
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
    inputs TEXT NOT NULL DEFAULT '',
    PRIMARY KEY(video_id, analyzer_key, idx)
);
"""


def iso_time(ts: float | None) -> str | None:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


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
    missing_since: float | None = None
    message: str | None = None  # what the video is doing now ("speech 01:20 of 03:00, ETA 00:40")
    note: str | None = None  # worth knowing about the last run (e.g. why there is no speech)
    subs_digest: str | None = None  # the subtitle sidecars' bytes when it was last analysed ('' for none)
    started_at: float | None = None  # when its last analysis started
    finished_at: float | None = None  # ... and when it was indexed
    seconds_spent: float | None = None  # how long that analysis took

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
            "missing_since": self.missing_since,
            "message": self.message if self.state == "processing" else None,
            "note": self.note,
            "size_bytes": self.size,
            "added_at": iso_time(self.created_at),
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(self.finished_at) if self.state == "done" else None,
            "seconds_spent": round(self.seconds_spent, 1) if self.seconds_spent is not None else None,
        }


@dataclass
class WindowRow:
    idx: int
    start_sec: float
    end_sec: float
    status: str  # ok | failed
    result: list[dict[str, Any]]
    raw: str | None
    inputs: str = ""  # hash of the window's prompt: a cached answer is reused only for the same question


class Ledger:
    def __init__(self, path: Path, read_only: bool = False, busy_timeout_ms: int = 30000) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                conn = self._conn()
                conn.executescript(_SCHEMA)
                cols = {r[1] for r in conn.execute("PRAGMA table_info(files)")}
                for col, kind in (("missing_since", "REAL"), ("message", "TEXT"), ("note", "TEXT"),
                                  ("subs_digest", "TEXT"), ("started_at", "REAL"), ("finished_at", "REAL"),
                                  ("seconds_spent", "REAL")):
                    if col not in cols:  # a ledger made by an older vidx
                        conn.execute(f"ALTER TABLE files ADD COLUMN {col} {kind}")
                if "inputs" not in {r[1] for r in conn.execute("PRAGMA table_info(windows)")}:
                    conn.execute("ALTER TABLE windows ADD COLUMN inputs TEXT NOT NULL DEFAULT ''")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only and not self.path.exists():
                raise FileNotFoundError(self.path)
            try:
                conn = connect(self.path, self.read_only, self.busy_timeout_ms)  # readers never write
                conn.row_factory = sqlite3.Row
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
            if self.ledger.read_only:
                raise LedgerError(f"the ledger at {self.ledger.path} is open read-only")
            self.ledger._lock.acquire()
            try:
                c = self.ledger._conn()
                c.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                # never keep the lock when the transaction could not start ("database is locked"):
                # every later write would block forever
                self.ledger._lock.release()
                if isinstance(exc, sqlite3.Error):
                    raise LedgerError(f"the ledger at {self.ledger.path} cannot be written: {exc}") from exc
                raise
            return c

        def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
            try:
                c = self.ledger._conn()
                try:
                    c.execute("COMMIT" if et is None else "ROLLBACK")
                except sqlite3.Error as exc:
                    if et is None:
                        try:
                            c.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                        raise LedgerError(f"the ledger at {self.ledger.path} cannot be written: {exc}") from exc
            finally:
                self.ledger._lock.release()

    def _tx(self) -> Ledger._Tx:
        return Ledger._Tx(self)

    # -- files --------------------------------------------------------------------
    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return list(self._conn().execute(sql, args))
        except sqlite3.Error as exc:
            raise LedgerError(f"the ledger at {self.path} cannot be read: {exc}") from exc

    def exists(self) -> bool:
        return self.path.exists()

    def get(self, path: str) -> FileRow | None:
        if self.read_only and not self.path.exists():
            return None
        rows = self._read("SELECT * FROM files WHERE path = ?", (path,))
        return FileRow(**dict(rows[0])) if rows else None

    def rows(self, state: str | None = None) -> list[FileRow]:
        """Every row (or those in ``state``). A ledger that does not exist yet has none; one
        that cannot be read raises :class:`LedgerError`, never an empty list."""
        if self.read_only and not self.path.exists():
            return []
        if state:
            rs = self._read("SELECT * FROM files WHERE state = ? ORDER BY path", (state,))
        else:
            rs = self._read("SELECT * FROM files ORDER BY path")
        return [FileRow(**dict(r)) for r in rs]

    def summary(self) -> dict[str, int]:
        """Files per state, in one aggregate query (the page shows it on every view)."""
        if self.read_only and not self.path.exists():
            return {}
        return {str(r[0]): int(r[1]) for r in self._read("SELECT state, count(*) FROM files GROUP BY state")}

    def names_for(self, video_ids: list[str]) -> dict[str, str]:
        """File names of the given videos only."""
        ids = sorted(set(video_ids))[:500]
        if not ids or (self.read_only and not self.path.exists()):
            return {}
        rs = self._read(f"SELECT video_id, path FROM files WHERE video_id IN ({','.join('?' * len(ids))})",
                        tuple(ids))
        return {str(r[0]): str(r[1]).rsplit("/", 1)[-1] for r in rs}

    def rows_for_content(self, sha256: str) -> list[FileRow]:
        """Every file holding these bytes (``sha256`` of the file alone)."""
        return [FileRow(**dict(r)) for r in self._read("SELECT * FROM files WHERE sha256 = ?", (sha256,))]

    def rows_for_video(self, video_id: str) -> list[FileRow]:
        return [FileRow(**dict(r)) for r in self._read("SELECT * FROM files WHERE video_id = ?", (video_id,))]

    def snapshot(self) -> dict[str, tuple[int, int, str, str]]:
        """path -> (size, mtime_ns, sidecars, state) for every row, in one read (rescans)."""
        if self.read_only and not self.path.exists():
            return {}
        return {r["path"]: (r["size"], r["mtime_ns"], r["sidecars"], r["state"])
                for r in self._read("SELECT path, size, mtime_ns, sidecars, state FROM files")}

    # -- meta (lifecycle facts the daemon shares with read-only readers) ---------------
    def meta(self, key: str) -> str | None:
        if self.read_only and not self.path.exists():
            return None
        try:
            rs = list(self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a ledger written by an older vidx
                return None
            raise LedgerError(f"the ledger at {self.path} cannot be read: {exc}") from exc
        return str(rs[0][0]) if rs else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self._tx() as c:
            if value is None:
                c.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def observe(self, path: str, size: int, mtime_ns: int, sidecars: str) -> bool:
        """Record a stable file; return True when it needs (re)processing. An unchanged file
        costs one read and no write."""
        rs = self._read("SELECT size, mtime_ns, sidecars, state, missing_since FROM files WHERE path = ?", (path,))
        if rs:
            r0 = rs[0]
            if (r0["size"], r0["mtime_ns"], r0["sidecars"]) == (size, mtime_ns, sidecars) \
                    and r0["missing_since"] is None:
                return bool(r0["state"] == "pending")
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE files SET missing_since = NULL WHERE path = ? AND missing_since IS NOT NULL", (path,))
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
        cur = self._read(
            "SELECT idx, start_sec, end_sec, status, result, raw, inputs FROM windows "
            "WHERE video_id=? AND analyzer_key=?",
            (video_id, analyzer_key),
        )
        return {
            r["idx"]: WindowRow(r["idx"], r["start_sec"], r["end_sec"], r["status"], json.loads(r["result"]), r["raw"],
                                r["inputs"])
            for r in cur
        }

    def save_window(self, video_id: str, analyzer_key: str, w: WindowRow) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO windows(video_id, analyzer_key, idx, start_sec, end_sec, status, result, raw, "
                "updated_at, inputs) VALUES (?,?,?,?,?,?,?,?,?,?)",
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
                    w.inputs,
                ),
            )

    def clear_windows(self, video_id: str, analyzer_key: str | None = None) -> None:
        with self._tx() as c:
            if analyzer_key:
                c.execute("DELETE FROM windows WHERE video_id=? AND analyzer_key=?", (video_id, analyzer_key))
            else:
                c.execute("DELETE FROM windows WHERE video_id=?", (video_id,))

    def status(self) -> dict[str, Any]:
        brake = self.meta("brake")
        paused: dict[str, Any] | None = None
        if brake:
            try:
                paused = dict(json.loads(brake))
            except ValueError:
                paused = {"reason": brake}
        return {"videos": [r.status_dict() for r in self.rows()], "forgetting_paused": paused}

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def as_dict(row: FileRow) -> dict[str, Any]:
    return asdict(row)
