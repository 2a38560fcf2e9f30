"""The daemon end to end with the real watcher, decoder and analyzer (hash embedder)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ingest.daemon import Daemon, build_pipeline
from tests.fakes.embedder import HashEmbedder
from tests.media import make_video, write_srt
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.store.embedded import EmbeddedStore


def _daemon(settings: Settings) -> Daemon:
    emb = HashEmbedder()
    store = EmbeddedStore(settings.store_path)
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    d = Daemon(settings, pipeline)
    d.recover()
    d.watcher.start()
    return d


def _run_until(d: Daemon, cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d.run_once()
        d._retry_pending()
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; ledger: {d.ledger.status()}")


def _states(ledger: Ledger) -> dict[str, tuple[str, str | None]]:
    return {Path(r.path).name: (r.state, r.error) for r in ledger.rows()}


def test_corrupt_files_fail_clearly_other_files_are_ignored(settings: Settings, talk_video: Path) -> None:
    w = settings.watch_dir
    (w / "notes.txt").write_text("not a video at all\n")
    (w / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    half = talk_video.read_bytes()
    (w / "half.mp4").write_bytes(half[: len(half) // 2])  # a copy that stopped half way
    d = _daemon(settings)
    try:
        _run_until(d, lambda: len(d.ledger.rows()) == 2 and all(r.state == "failed" for r in d.ledger.rows()))
        shutil.copy(talk_video, w / "good.mp4")
        _run_until(d, lambda: _states(d.ledger).get("good.mp4", ("",))[0] == "done")
    finally:
        d.watcher.stop()
    st = _states(d.ledger)
    assert "notes.txt" not in st  # not a video: ignored, never a failed row
    assert st["broken.mp4"][0] == "failed" and st["broken.mp4"][1]
    assert st["half.mp4"][0] == "failed" and st["half.mp4"][1]
    assert st["good.mp4"][0] == "done"
    good = next(r for r in d.ledger.rows() if r.path.endswith("good.mp4"))
    assert good.events >= 4 and good.progress == 1.0
    # nothing lost: the sources are untouched
    assert (w / "half.mp4").stat().st_size == len(half) // 2


def test_half_copied_file_is_indexed_once_the_copy_completes(settings: Settings, talk_video: Path) -> None:
    data = talk_video.read_bytes()
    dest = settings.watch_dir / "late.mp4"
    dest.write_bytes(data[: len(data) // 3])
    d = _daemon(settings)
    try:
        _run_until(d, lambda: _states(d.ledger).get("late.mp4", ("",))[0] == "failed")
        dest.write_bytes(data)  # the copy resumes and finishes
        _run_until(d, lambda: _states(d.ledger)["late.mp4"][0] == "done")
    finally:
        d.watcher.stop()


def test_subtitles_arriving_later_reenrich_the_video(settings: Settings, talk_video: Path) -> None:
    dest = settings.watch_dir / "film.mp4"
    shutil.copy(talk_video, dest)
    d = _daemon(settings)
    store = d.pipeline.store
    try:
        _run_until(d, lambda: _states(d.ledger).get("film.mp4", ("",))[0] == "done")
        assert store.search_keyword("lighthouse", 5).total == 0
        write_srt(settings.watch_dir / "film.en.srt", [(26.0, 29.0, "The lighthouse keeper climbed the stairs.")])
        _run_until(d, lambda: store.search_keyword("lighthouse", 5).total > 0)
    finally:
        d.watcher.stop()
    hits = store.search_keyword("lighthouse keeper", 5).hits
    assert any(h.event.source == "subtitle" and h.event.start_sec == 26.0 for h in hits)
    row = d.ledger.rows()[0]
    assert row.state == "done" and store.count(row.video_id) == row.events


def test_hostile_filename_is_indexed(settings: Settings) -> None:
    name = '<script>alert(1)<\\script> $(rm -rf ~); "quote" 日本語 ‮txt.mp4'
    path = settings.watch_dir / name
    make_video(path, scenes=[(2.0, (10, 10, 10)), (2.0, (240, 240, 240))], fps=5)
    d = _daemon(settings)
    try:
        _run_until(d, lambda: bool(d.ledger.rows()) and d.ledger.rows()[0].state == "done")
    finally:
        d.watcher.stop()
    assert d.ledger.rows()[0].path.endswith(name)


def test_deleted_video_loses_its_events(make_settings: Callable[..., Settings], talk_video: Path) -> None:
    settings = make_settings(forget_after_seconds=0)
    dest = settings.watch_dir / "temp.mp4"
    shutil.copy(talk_video, dest)
    d = _daemon(settings)
    try:
        _run_until(d, lambda: _states(d.ledger).get("temp.mp4", ("",))[0] == "done")
        vid = d.ledger.rows()[0].video_id
        assert d.pipeline.store.count(vid) > 0
        dest.unlink()
        d._forget_deleted()
    finally:
        d.watcher.stop()
    assert d.ledger.rows() == []
    assert d.pipeline.store.count(vid) == 0


def test_deleting_one_of_two_copies_keeps_the_events_playable(make_settings: Callable[..., Settings],
                                                              talk_video: Path) -> None:
    settings = make_settings(forget_after_seconds=0)
    a, b = settings.watch_dir / "a.mp4", settings.watch_dir / "b.mp4"
    for dest in (a, b):
        shutil.copy(talk_video, dest)
        shutil.copy(talk_video.with_suffix(".srt"), dest.with_suffix(".srt"))
    d = _daemon(settings)
    try:
        _run_until(d, lambda: {n: st for n, (st, _) in _states(d.ledger).items()} == {"a.mp4": "done",
                                                                                       "b.mp4": "done"})
        vid = d.ledger.rows()[0].video_id
        n = d.pipeline.store.count(vid)
        hit = d.pipeline.store.search_keyword("lighthouse", 1).hits[0].event
        gone = Path(hit.video_path)  # the copy the events point at
        keep = b if gone == a else a
        gone.unlink()
        d._forget_deleted()
        assert _states(d.ledger) == {keep.name: ("done", None)}  # nothing analysed again
    finally:
        d.watcher.stop()
    assert d.pipeline.store.count(vid) == n  # stored once, not lost
    assert d.pipeline.store.search_keyword("lighthouse", 1).hits[0].event.video_path == str(keep)


def test_interrupted_processing_is_reaped_at_start(settings: Settings, talk_video: Path) -> None:
    dest = settings.watch_dir / "crash.mp4"
    shutil.copy(talk_video, dest)
    ledger = Ledger(settings.ledger_path)
    st = dest.stat()
    ledger.observe(str(dest), st.st_size, st.st_mtime_ns, "")
    ledger.set(str(dest), state="processing", progress=0.4)
    d = _daemon(settings)  # recover() runs first
    assert d.ledger.rows()[0].state == "pending"
    try:
        _run_until(d, lambda: d.ledger.rows()[0].state == "done")
    finally:
        d.watcher.stop()


def test_video_id_and_links_survive_a_subtitle_added_changed_or_removed(settings: Settings,
                                                                          talk_video: Path) -> None:
    """Defect 7: a sidecar that arrives, changes or goes keeps the video's id (links and saved
    clips keep working); the same bytes with other subtitles at another path stay two videos."""
    from search_ui import create_app

    emb = HashEmbedder()
    store = EmbeddedStore(settings.store_path)
    pipeline = build_pipeline(settings, store=store, embedder_factory=lambda: emb)
    client = create_app(settings, embedder_factory=lambda: emb).test_client()
    dest = settings.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    assert pipeline.process(dest).state == "done"
    vid = pipeline.ledger.get(str(dest)).video_id
    assert client.get(f"/videos/{vid}").status_code == 200

    def search(q: str) -> list[dict]:
        return client.get("/api/search", query_string={"q": q, "mode": "keyword"}).get_json()["hits"]

    srt = dest.with_suffix(".srt")
    for cues in ([(1.0, 3.0, "the lighthouse keeper waves")],  # added
                 [(1.0, 3.0, "the harbour master waves")]):  # changed
        write_srt(srt, cues)
        assert pipeline.process(dest).state == "done"
        assert pipeline.ledger.get(str(dest)).video_id == vid
        assert client.get(f"/videos/{vid}").status_code == 200
        word = cues[0][2].split()[1]
        assert {h["video_id"] for h in search(word)} == {vid}
    assert search("lighthouse") == []  # the old line went with the old subtitles
    srt.unlink()  # removed
    assert pipeline.process(dest).state == "done"
    assert pipeline.ledger.get(str(dest)).video_id == vid and search("harbour") == []

    copy = settings.watch_dir / "copy.mp4"  # the same bytes with other subtitles: another video
    shutil.copy(talk_video, copy)
    write_srt(copy.with_suffix(".srt"), [(1.0, 3.0, "a copy with its own subtitles")])
    assert pipeline.process(copy).state == "done"
    other = pipeline.ledger.get(str(copy)).video_id
    assert other != vid and {h["video_id"] for h in search("own subtitles")} == {other}
    assert client.get(f"/videos/{vid}").status_code == 200
    again = settings.watch_dir / "again.mp4"  # same bytes, same (no) subtitles as talk.mp4: the same video
    shutil.copy(talk_video, again)
    assert pipeline.process(again).state == "done"
    assert pipeline.ledger.get(str(again)).video_id == vid


def test_idle_upkeep_merges_the_split_full_text_index(settings: Settings) -> None:
    from vidx.schema import Event, event_id_for
    from vidx.store import embedded as embedded_mod

    d = _daemon(settings)
    try:
        store = d.pipeline.store
        assert isinstance(store, EmbeddedStore)
        for v in range(embedded_mod.OPTIMIZE_SEGMENTS + 2):
            vid = f"{v:032x}"
            store.replace_video_events(vid, [Event(event_id=event_id_for(vid, "t", 0, 1, 0), video_id=vid,
                                                   video_path=f"/v/{v}.mp4", start_sec=0.0, end_sec=1.0,
                                                   dialogue=f"harbour crane {v}")])

        def segments() -> int:
            return int(store._conn().execute("SELECT count(DISTINCT segid) FROM events_fts_idx").fetchone()[0])

        assert segments() >= embedded_mod.OPTIMIZE_SEGMENTS
        d._tidy_index()  # what the work loop runs between videos
        assert segments() == 1
    finally:
        d.watcher.stop()
