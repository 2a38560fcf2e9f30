"""Databases that several threads or processes open for the first time at the same moment."""

from __future__ import annotations

import threading
from pathlib import Path

from vidx.sqlite import connect


def test_many_first_connections_at_once_all_get_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            start.wait(5)
            conn = connect(path, read_only=False)
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            conn.close()
        except BaseException as exc:  # collected: the test reports every one
            errors.append(exc)

    for _ in range(5):  # a fresh file each round: the race is at creation
        path.unlink(missing_ok=True)
        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        start.reset()
    assert errors == []
