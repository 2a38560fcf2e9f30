"""SQLite connections as every vidx database opens them: WAL and durable commits for the
one writer, ``mode=ro`` for readers (the UI, `vidx status`), which never write."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect(path: Path, read_only: bool, busy_timeout_ms: int = 30000) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=30.0,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        _wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


def _wal(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Switch to WAL. Two connections making a new file at the same moment can get "database is
    locked" at once, without SQLite's busy wait: ask again for up to ~5 s."""
    for i in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or i == tries - 1:
                raise
            time.sleep(0.05)
