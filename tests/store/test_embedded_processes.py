"""The embedded store with real processes: a reader sees the writer's commits, and a
kill -9 in the middle of writing leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from tests.conftest import ROOT
from tests.fakes.embedder import HashEmbedder
from tests.store.test_contract import ev
from vidx.store.embedded import EmbeddedStore

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.store.test_contract import ev, EMB
    from vidx.store.embedded import EmbeddedStore
    s = EmbeddedStore({db!r})
    s.ensure_schema(EMB.model_id, EMB.dims)
    i = 0
    while True:
        vid = "%032x" % (i % 50)
        s.replace_video_events(vid, [ev(vid, j, j * 3.0, f"event {{i}} {{j}} of a long run") for j in range(20)])
        print(i, flush=True)
        i += 1
    """
)


def test_reader_process_sees_writer_commits(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    emb = HashEmbedder()
    writer = EmbeddedStore(db)
    writer.ensure_schema(emb.model_id, emb.dims)
    reader = EmbeddedStore(db, read_only=True)  # another connection, its own vector cache
    assert reader.search_knn(emb.embed_query("harbour"), 5).hits == []
    vid = "c" * 32
    writer.replace_video_events(vid, [ev(vid, 0, 0, "a ship enters the harbour")])
    assert reader.search_keyword("harbour", 5).total == 1
    assert reader.search_knn(emb.embed_query("ship harbour"), 5).hits[0].event.video_id == vid
    writer.replace_video_events(vid, [ev(vid, 1, 4, "the ship leaves")])
    hits = reader.search_knn(emb.embed_query("a ship enters the harbour"), 5).hits
    assert [h.event.start_sec for h in hits] == [4]

    # and a separate OS process reads it too
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r});"
        "from vidx.store.embedded import EmbeddedStore;"
        f"print(EmbeddedStore({str(db)!r}, read_only=True).search_keyword('ship leaves', 5).total)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1", out.stderr


def test_kill_9_mid_write_leaves_a_consistent_store(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), db=str(db))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    done = 0
    while done < 30 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        done = int(line) + 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert done >= 30, proc.stderr.read() if proc.stderr else ""

    store = EmbeddedStore(db)
    conn = store._conn()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("INSERT INTO events_fts(events_fts) VALUES('integrity-check')") is not None
    counts = store.video_event_counts()
    # every video holds exactly one complete write: never a mix, never a partial batch
    assert counts and all(n == 20 for n in counts.values())
    n_events = store.count()
    n_fts = conn.execute("SELECT count(*) FROM events_fts").fetchone()[0]
    assert n_fts == n_events
    emb = HashEmbedder()
    hits = store.search_knn(emb.embed_query("event of a long run"), n_events + 5).hits
    assert len(hits) == n_events
    assert np.isfinite([h.score for h in hits]).all()
