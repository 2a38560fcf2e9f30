"""Limits at scale: rescans of unchanged files, per-video counts past one page, stored fields
that are not what they should be, cached VLM windows of another plan."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from ingest.daemon import Daemon, build_pipeline
from tests.es_store import make_elastic_store
from tests.fakes.embedder import HashEmbedder
from tests.fakes.es_server import FakeES
from tests.store.test_contract import EMB, ev
from vidx.config import Settings
from vidx.store.embedded import EmbeddedStore


def test_rescan_of_an_unchanged_library_writes_nothing_and_lists_each_folder_once(
        make_settings: Callable[..., Settings], talk_video: Path) -> None:
    s = make_settings(stable_seconds=0.0)
    folders = [s.watch_dir / f"f{i}" for i in range(5)]
    for f in folders:
        f.mkdir()
    emb = HashEmbedder()
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=lambda: emb)
    d = Daemon(s, pipeline)
    # 1,000 known files (rows as the daemon leaves them), spread over 5 folders, with sidecars
    n = 0
    for f in folders:
        for i in range(200):
            p = f / f"clip{i:03d}.mp4"
            p.write_bytes(b"x")
            if i % 10 == 0:
                p.with_suffix(".srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
            st = p.stat()
            from ingest.subtitles import sidecar_signature

            d.ledger.observe(str(p), st.st_size, st.st_mtime_ns, sidecar_signature(p))
            d.ledger.set(str(p), state="done")
            n += 1
    con = sqlite3.connect(s.ledger_path)
    before = con.execute("PRAGMA data_version").fetchone()[0], s.ledger_path.with_name("ledger.sqlite3-wal").stat()
    d.watcher.rescan(d.ledger.snapshot())
    assert d.watcher.last_scan_listings == 1 + len(folders)  # the root and each folder, once
    assert len(d.watcher.tracker) == 0  # nothing to look at again
    for path in d.watcher.poll():
        d.handle(path)
    after = con.execute("PRAGMA data_version").fetchone()[0], s.ledger_path.with_name("ledger.sqlite3-wal").stat()
    assert before[0] == after[0] and before[1].st_size == after[1].st_size  # no write at all
    assert n == 1000


def test_per_video_counts_page_past_one_page_and_past_ten_thousand_buckets() -> None:
    fake = FakeES()
    store = make_elastic_store(fake)
    store.ensure_schema(EMB.model_id, EMB.dims)
    vids = [f"{i:032x}" for i in range(25)]
    for i, v in enumerate(vids):
        store.replace_video_events(v, [ev(v, j, float(j), f"event {j}") for j in range(1 + i % 3)])
    assert store.video_event_counts(page_size=10) == {v: 1 + i % 3 for i, v in enumerate(vids)}
    pages = [c for c in fake.captured if c.path.endswith("_search") and "composite" in (c.body or "")]
    assert len(pages) == 4  # 10 + 10 + 5, then an empty page
    # a terms aggregation would have stopped at its size: the fake honours it like Elasticsearch does
    status, resp = fake.search("vidx-events", {"size": 0, "aggs": {"v": {"terms": {"field": "video_id", "size": 10}}}})
    assert status == 200 and len(resp["aggregations"]["v"]["buckets"]) == 10


def test_stored_fields_are_validated_before_a_path_is_built(app: Flask,
                                                            settings: Settings,
                                                            hash_embedder: HashEmbedder) -> None:
    store = EmbeddedStore(settings.store_path)
    e = ev("a" * 32, 0, 0.0, "hostile")
    store.replace_video_events(e.video_id, [e])
    store._conn().execute("UPDATE events SET doc = json_set(doc, '$.video_id', '../secret') WHERE 1")
    target = settings.thumbs_dir / "../secret" / f"{e.event_id}.jpg"  # outside the thumbnails folder
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\xff\xd8 not for the web")
    r = app.test_client().get(f"/media/thumb/{e.event_id}.jpg")
    assert r.status_code == 404 and r.is_json and b"not for the web" not in r.data


@pytest.mark.parametrize("change", [{"window_seconds": 24.0}, {"vlm_fps": 2.0}, {"window_overlap": 6.0}])
def test_cached_windows_are_reused_only_for_exactly_the_same_question(
        make_settings: Callable[..., Settings], chat_server: Callable[..., object],
        talk_video: Path,
        change: dict[str, float]) -> None:
    from tests.vlm.test_openai_provider import _settings, realistic

    server = chat_server(lambda a, b, n: realistic(a, b, 1))
    s = _settings(make_settings, server.url)  # type: ignore[attr-defined]
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    assert build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest).state \
        == "done"
    asked = sum(server.calls.values())  # type: ignore[attr-defined]
    again = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder,
                           force_analysis=True).process(dest)
    assert again.state == "done" and sum(server.calls.values()) == asked  # type: ignore[attr-defined]
    s2 = s.model_copy(update=change)
    build_pipeline(s2, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder,
                   force_analysis=True).process(dest)
    assert sum(server.calls.values()) > asked  # type: ignore[attr-defined]


def test_embedded_store_of_another_schema_version_stops_with_the_fix(settings: Settings) -> None:
    from vidx.store.base import SchemaMismatch

    store = EmbeddedStore(settings.store_path)
    store._conn().execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(SchemaMismatch, match="vidx reindex"):
        EmbeddedStore(settings.store_path).ensure_schema(EMB.model_id, EMB.dims)
    assert not EmbeddedStore(settings.store_path).schema_matches(EMB.model_id, EMB.dims)
