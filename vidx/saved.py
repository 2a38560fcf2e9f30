"""Saved searches and the notifications they cause.

Two small SQLite files, each with one writer:

* ``saved-searches.sqlite3`` — the searches people save (the web UI writes, the daemon reads);
* ``alerts.sqlite3`` — the outbox: one row per notification to send, kept until it is sent
  and retried with a growing pause while the notifier is down (the daemon writes, the web UI
  reads it for the status page).

So a notifier that is down loses nothing: a row leaves the outbox only when it was sent
(or when its saved search was deleted)."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from vidx.sqlite import connect

log = logging.getLogger("vidx.saved")

MAX_SAVED = 500
RETRY_CAP_S = 900.0

_SAVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS saved(
    id TEXT PRIMARY KEY,
    q TEXT NOT NULL,
    mode TEXT NOT NULL,
    min_score REAL,
    notify TEXT,
    created_at REAL NOT NULL
);
"""
_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sent_at, next_at);
"""


class SavedSearchIn(BaseModel):
    """What a person saves: the query with its mode and threshold, and where to say so."""

    q: str = Field(min_length=1, max_length=4000)
    mode: str = "hybrid"
    min_score: float | None = Field(None, ge=0, le=1)
    notify: str | None = Field(None, max_length=2000)

    @field_validator("q")
    @classmethod
    def _q(cls, v: str) -> str:
        v = v.replace("\x00", " ").strip()
        if not v:
            raise ValueError("the query is empty")
        return v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("keyword", "semantic", "hybrid"):
            raise ValueError("mode must be keyword, semantic or hybrid")
        return v

    @field_validator("notify")
    @classmethod
    def _notify(cls, v: str | None) -> str | None:
        v = (v or "").strip()
        if not v:
            return None
        parts = urlsplit(v)
        if not parts.scheme or "://" not in v:
            raise ValueError("notify must be a URL such as json://host/path, ntfy://topic, "
                             "mailto://user:pass@example.com or https://host/hook")
        return v


@dataclass
class SavedSearch:
    id: str
    q: str
    mode: str
    min_score: float | None
    notify: str | None
    created_at: float

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "q": self.q, "mode": self.mode, "min_score": self.min_score,
                "notify": self.notify, "notify_to": describe_target(self.notify), "created_at": self.created_at}


def describe_target(url: str | None) -> str | None:
    """Where a notification goes, without the secrets a URL may carry (tokens, passwords)."""
    if not url:
        return None
    parts = urlsplit(url)
    host, _, port = parts.netloc.rsplit("@", 1)[-1].partition(":")  # no user or password
    if not host:
        return f"{parts.scheme}://…"
    return f"{parts.scheme}://{host}" + (f":{port}" if port.isdigit() else "")


class _Db:
    def __init__(self, path: Path, schema: str, read_only: bool) -> None:
        self.path, self.schema, self.read_only = path, schema, read_only
        self._local = threading.local()
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(schema)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.read_only)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self.read_only and not self.path.exists():
            return []
        return list(self._conn().execute(sql, args))


class SavedSearches(_Db):
    """The saved searches (the web UI writes; the daemon opens it read-only)."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        super().__init__(path, _SAVED_SCHEMA, read_only)

    def all(self) -> list[SavedSearch]:
        return [SavedSearch(**dict(r)) for r in self.rows("SELECT * FROM saved ORDER BY created_at, id")]

    def get(self, search_id: str) -> SavedSearch | None:
        rs = self.rows("SELECT * FROM saved WHERE id = ?", (search_id,))
        return SavedSearch(**dict(rs[0])) if rs else None

    def add(self, s: SavedSearchIn) -> SavedSearch:
        if len(self.all()) >= MAX_SAVED:
            raise ValueError(f"at most {MAX_SAVED} saved searches: delete some first")
        row = SavedSearch(id=secrets.token_hex(8), q=s.q, mode=s.mode, min_score=s.min_score, notify=s.notify,
                          created_at=time.time())
        self._conn().execute("INSERT INTO saved VALUES (?,?,?,?,?,?)",
                             (row.id, row.q, row.mode, row.min_score, row.notify, row.created_at))
        log.info("saved search %s: %r (%s)%s", row.id, row.q, row.mode,
                 f", notifying {describe_target(row.notify)}" if row.notify else "")
        return row

    def delete(self, search_id: str) -> bool:
        return self._conn().execute("DELETE FROM saved WHERE id = ?", (search_id,)).rowcount > 0


@dataclass
class Delivery:
    id: int
    search_id: str
    video_id: str
    payload: dict[str, Any]
    attempts: int
    next_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None


class Outbox(_Db):
    """Notifications to send (the daemon writes; the web UI reads it for the status page)."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        super().__init__(path, _OUTBOX_SCHEMA, read_only)

    def add(self, search_id: str, video_id: str, payload: dict[str, Any]) -> int:
        now = time.time()
        cur = self._conn().execute(
            "INSERT INTO outbox(search_id, video_id, payload, next_at, created_at) VALUES (?,?,?,?,?)",
            (search_id, video_id, json.dumps(payload, ensure_ascii=False), now, now))
        return int(cur.lastrowid or 0)

    def _delivery(self, r: sqlite3.Row) -> Delivery:
        d = dict(r)
        d["payload"] = json.loads(d["payload"])
        return Delivery(**d)

    def due(self, now: float | None = None) -> list[Delivery]:
        now = time.time() if now is None else now
        return [self._delivery(r) for r in self.rows(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND next_at <= ? ORDER BY id", (now,))]

    def sent(self, delivery_id: int) -> None:
        self._conn().execute("UPDATE outbox SET sent_at = ?, last_error = NULL WHERE id = ?", (time.time(), delivery_id))

    def failed(self, delivery_id: int, error: str, retry_s: float) -> float:
        """Record a failed try; the next one waits ``retry_s`` doubled per attempt (capped)."""
        rs = self.rows("SELECT attempts FROM outbox WHERE id = ?", (delivery_id,))
        attempts = (int(rs[0][0]) if rs else 0) + 1
        wait = min(RETRY_CAP_S, retry_s * 2 ** (attempts - 1))
        self._conn().execute("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?",
                             (attempts, time.time() + wait, error[:500], delivery_id))
        return wait

    def drop(self, delivery_id: int) -> None:
        self._conn().execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per saved search: notifications sent, waiting, the last error and when it last sent."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows(
                "SELECT search_id, count(sent_at) AS sent, sum(sent_at IS NULL) AS waiting, max(sent_at) AS last_sent, "
                "(SELECT last_error FROM outbox o2 WHERE o2.search_id = o.search_id AND o2.sent_at IS NULL "
                " AND o2.last_error IS NOT NULL ORDER BY id DESC LIMIT 1) AS last_error "
                "FROM outbox o GROUP BY search_id"):
            out[r["search_id"]] = {"sent": int(r["sent"] or 0), "waiting": int(r["waiting"] or 0),
                                   "last_sent": r["last_sent"], "last_error": r["last_error"]}
        return out
