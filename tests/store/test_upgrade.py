"""A data directory made by the previous vidx (no word counts, no table of videos) is upgraded in
place from its stored events, without analysing anything again, and answers every query as a
store built afresh does."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from tests.store.test_scale import EMB, library
from vidx.search import SearchService, parse_query
from vidx.store.embedded import EmbeddedStore

OLD_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events(rowid INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    video_id TEXT NOT NULL, start_sec REAL NOT NULL, doc TEXT NOT NULL, vec BLOB);
CREATE INDEX events_video ON events(video_id, start_sec);
CREATE TABLE deletions(seq INTEGER PRIMARY KEY AUTOINCREMENT, row INTEGER NOT NULL);
CREATE VIRTUAL TABLE events_fts USING fts5(description, dialogue, ocr_text, meta,
    tokenize = 'porter unicode61 remove_diacritics 2');
"""

QUERIES = [("budget", "keyword"), ("budget video:b.mp4", "hybrid"), ("person:Tom", "keyword"),
           ("harbor river", "semantic"), ('"budget and the harbor" -garden', "hybrid"), ("budjet lang:de", "keyword")]


def old_store(path: Path) -> None:
    """What the previous release wrote: the same rows, without the new column and table."""
    from vidx.store.embedded import _fts_row

    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", "2"), ("embedding_model", EMB.model_id),
                                                       ("dims", str(EMB.dims))])
    for vid, events in library().items():
        for e in events:
            vec = np.asarray(e.embedding, dtype=np.float32).tobytes()
            cur = conn.execute("INSERT INTO events(event_id, video_id, start_sec, doc, vec) VALUES (?,?,?,?,?)",
                               (e.event_id, vid, e.start_sec, json.dumps(e.doc(with_embedding=False)), vec))
            conn.execute("INSERT INTO events_fts(rowid, description, dialogue, ocr_text, meta) VALUES (?,?,?,?,?)",
                         (cur.lastrowid, *_fts_row(e)))
    conn.commit()
    conn.close()


def answers(store: EmbeddedStore) -> list[dict[str, object]]:
    svc = SearchService(store, lambda: EMB)
    out = []
    for q, mode in QUERIES:
        r = svc.search(parse_query({"q": q, "mode": mode, "size": "50"}))
        out.append({"total": r["total"], "ids": [h["event_id"] for h in r["hits"]],
                    "scores": [h["score"] for h in r["hits"]], "facets": r["facets"]})
    return out


def test_an_old_store_is_upgraded_in_place_and_answers_like_a_new_one(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    old_store(old)
    # a reader (the UI) opening it before the daemon has upgraded it still answers
    before = answers(EmbeddedStore(old, read_only=True))
    migrated = EmbeddedStore(old)  # the daemon opens it: the upgrade runs
    cols = {r[1] for r in sqlite3.connect(old).execute("PRAGMA table_info(events)")}
    assert "length" in cols
    assert sqlite3.connect(old).execute("SELECT count(*) FROM videos").fetchone()[0] == 3
    # the float32 vectors moved to the vectors table as float16 (half the bytes, pages shared)
    db = sqlite3.connect(old)
    assert db.execute("SELECT count(*) FROM events WHERE vec IS NOT NULL").fetchone()[0] == 0
    assert db.execute("SELECT count(*), min(length(vec)), max(length(vec)) FROM vectors").fetchone() == \
        (db.execute("SELECT count(*) FROM events").fetchone()[0], EMB.dims * 2, EMB.dims * 2)
    fresh = EmbeddedStore(tmp_path / "new.sqlite3")
    fresh.ensure_schema(EMB.model_id, EMB.dims)
    for vid, events in library().items():
        fresh.replace_video_events(vid, events)
    want = answers(fresh)
    assert answers(migrated) == want
    assert before == want
    assert answers(EmbeddedStore(old, read_only=True)) == want
