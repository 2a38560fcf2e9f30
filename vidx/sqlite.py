"""SQLite connections as every vidx database opens them: WAL and durable commits for the
one writer, ``mode=ro`` for readers (the UI, `vidx status`), which never write."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, read_only: bool, busy_timeout_ms: int = 30000) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=30.0,
                               isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn
