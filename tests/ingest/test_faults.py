"""Faults of a file's lifecycle: each asserts that nothing is lost and `vidx verify` is clean.

The real watcher, decoder, analyzer, ledger and embedded store; a hash embedder (the seam)."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.daemon import Daemon, build_pipeline
from tests.fakes.embedder import HashEmbedder
from tests.ingest.test_daemon import _run_until
from tests.media import make_video, write_srt
from vidx.config import Settings
from vidx.ledger import Ledger, LedgerError
from vidx.store.embedded import EmbeddedStore
from vidx.verify import verify

SMALL = [(1.0, (200, 30, 30)), (1.0, (30, 50, 200))]


class CountingAnalyzer:
    """Wraps the real analyzer and counts the videos it analyses."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.version = inner.name, inner.version

    def analyze(self, job: Any, progress: Any) -> Any:
        self.calls += 1
        return self.inner.analyze(job, progress)


def daemon(settings: Settings) -> Daemon:
    emb = HashEmbedder()
    pipeline = build_pipeline(settings, store=EmbeddedStore(settings.store_path), embedder_factory=lambda: emb)
    pipeline.analyzer = CountingAnalyzer(pipeline.analyzer)
    d = Daemon(settings, pipeline)
    d.recover()
    return d


run_until = _run_until


def states(d: Daemon) -> dict[str, str]:
    return {Path(r.path).name: r.state for r in d.ledger.rows()}


def library(watch: Path, n: int, src: Path) -> list[Path]:
    """n videos with distinct bytes (a trailing byte each: other content hashes)."""
    out = []
    for i in range(n):
        p = watch / f"v{i:02d}.mp4"
        p.write_bytes(src.read_bytes() + bytes([i]))
        out.append(p)
    return out


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("small") / "small.mp4", scenes=SMALL, fps=5, size=(64, 36))


def clean(d: Daemon) -> bool:
    return verify(d.ledger, d.pipeline.store).ok


def test_watch_folder_away_for_several_cycles_forgets_nothing(make_settings: Callable[..., Settings],
                                                              small_video: Path) -> None:
    s = make_settings(forget_after_seconds=0)
    files = library(s.watch_dir, 3, small_video)
    d = daemon(s)
    run_until(d, lambda: set(states(d).values()) == {"done"} and len(states(d)) == 3)
    events = d.pipeline.store.count()
    calls = d.pipeline.analyzer.calls  # type: ignore[attr-defined]
    away = s.watch_dir.with_name("watch-unmounted")
    s.watch_dir.rename(away)  # the share is gone
    for _ in range(3):
        report = d._forget_deleted()
        assert report is not None and report.forgotten == [] and "missing" in (report.brake or "")
    assert d.ledger.status()["forgetting_paused"]["reason"].startswith("the watch folder")
    assert d.pipeline.store.count() == events
    away.rename(s.watch_dir)  # the share is back
    report = d._forget_deleted()
    assert report is not None and report.brake is None and d.ledger.status()["forgetting_paused"] is None
    run_until(d, lambda: True)
    for _ in range(3):  # rescans of the returned files: nothing is analysed again
        d.watcher._last_rescan = 0
        run_until(d, lambda: True)
        time.sleep(0.4)
        run_until(d, lambda: True)
    assert d.pipeline.analyzer.calls == calls  # type: ignore[attr-defined]
    print(f"[figure] folder away: events {events} -> {d.pipeline.store.count()}, analyses {calls} -> "
          f"{d.pipeline.analyzer.calls}")  # type: ignore[attr-defined]
    assert d.pipeline.store.count() == events and len(files) == 3 and clean(d)


def test_a_share_mounted_elsewhere_is_braked_by_device_id(make_settings: Callable[..., Settings],
                                                          small_video: Path) -> None:
    s = make_settings(forget_after_seconds=0)
    library(s.watch_dir, 1, small_video)
    d = daemon(s)
    run_until(d, lambda: states(d) == {"v00.mp4": "done"})
    d.ledger.set_meta("watch_root_dev", "999999")  # as recorded when the share was mounted
    (s.watch_dir / "v00.mp4").rename(s.watch_dir.parent / "v00.mp4")  # an empty mount point
    report = d._forget_deleted()
    assert report is not None and "another filesystem" in (report.brake or "")
    assert d.pipeline.store.count() > 0


def test_many_files_vanishing_at_once_hold_the_brake(make_settings: Callable[..., Settings],
                                                     small_video: Path) -> None:
    s = make_settings(forget_after_seconds=0)
    files = library(s.watch_dir, 10, small_video)
    d = daemon(s)
    run_until(d, lambda: len(states(d)) == 10 and set(states(d).values()) == {"done"}, timeout=120)
    events = d.pipeline.store.count()
    aside = s.watch_dir.parent / "aside"
    aside.mkdir()
    for p in files[:3]:  # 30 % at once
        p.rename(aside / p.name)
    report = d._forget_deleted()
    assert report is not None and report.forgotten == []
    print(f"[figure] 30% vanished: events {events} -> {d.pipeline.store.count()}; {report.brake}")
    reason = d.ledger.status()["forgetting_paused"]["reason"]
    assert "3 of 10" in reason and "VIDX_VANISH_BRAKE" in reason
    assert d.pipeline.store.count() == events and len(d.ledger.rows()) == 10
    for p in files[:3]:
        (aside / p.name).rename(p)
    report = d._forget_deleted()
    assert report is not None and report.brake is None and report.forgotten == []
    assert d.pipeline.store.count() == events and clean(d)


def test_one_deleted_file_is_forgotten_after_the_grace_period(make_settings: Callable[..., Settings],
                                                              small_video: Path) -> None:
    s = make_settings(forget_after_seconds=3600)
    files = library(s.watch_dir, 3, small_video)
    d = daemon(s)
    run_until(d, lambda: len(states(d)) == 3 and set(states(d).values()) == {"done"})
    now = [time.time()]
    d.lifecycle.clock = lambda: now[0]
    vid = d.ledger.get(str(files[0]))
    assert vid is not None and vid.video_id
    files[0].unlink()
    assert d._forget_deleted().forgotten == []  # type: ignore[union-attr]
    assert d.pipeline.store.count(vid.video_id) > 0  # still there within the grace period
    now[0] += 3599
    assert d._forget_deleted().forgotten == []  # type: ignore[union-attr]
    now[0] += 2
    assert d._forget_deleted().forgotten == [str(files[0])]  # type: ignore[union-attr]
    assert d.pipeline.store.count(vid.video_id) == 0
    assert not (s.thumbs_dir / vid.video_id).exists()
    assert clean(d)


def test_content_replaced_in_place_replaces_what_is_found(settings: Settings, talk_video: Path) -> None:
    dest = settings.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    write_srt(dest.with_suffix(".srt"), [(1.0, 3.0, "The lighthouse keeper waves.")])
    d = daemon(settings)
    run_until(d, lambda: states(d) == {"talk.mp4": "done"})
    old = d.ledger.rows()[0].video_id
    assert old and d.pipeline.store.search_keyword("lighthouse", 5).hits
    d.ledger.save_window(old, "k", __import__("vidx.ledger", fromlist=["WindowRow"]).WindowRow(0, 0, 1, "ok", [], None))
    make_video(dest, scenes=[(3.0, (10, 200, 10))], fps=5)  # new content, same name
    write_srt(dest.with_suffix(".srt"), [(1.0, 2.0, "A zebra crosses the road.")])
    run_until(d, lambda: (r := d.ledger.rows()[0]).state == "done" and r.video_id != old)
    assert d.pipeline.store.search_keyword("lighthouse", 5).hits == []
    assert d.pipeline.store.search_keyword("zebra", 5).hits
    assert d.pipeline.store.count(old) == 0
    assert not (settings.thumbs_dir / old).exists() and d.ledger.windows(old, "k") == {}
    assert clean(d)


def test_a_renamed_file_is_not_analysed_again(make_settings: Callable[..., Settings], small_video: Path) -> None:
    s = make_settings(forget_after_seconds=0)
    (src,) = library(s.watch_dir, 1, small_video)
    d = daemon(s)
    run_until(d, lambda: states(d) == {"v00.mp4": "done"})
    n = d.pipeline.store.count()
    src.rename(s.watch_dir / "renamed.mp4")
    run_until(d, lambda: states(d).get("renamed.mp4") == "done")
    d._forget_deleted()
    assert states(d) == {"renamed.mp4": "done"}
    assert d.pipeline.analyzer.calls == 1  # type: ignore[attr-defined]
    hits = d.pipeline.store.search_knn(HashEmbedder().embed_query("scene"), 10).hits
    assert d.pipeline.store.count() == n and {h.event.video_path for h in hits} == {str(s.watch_dir / "renamed.mp4")}
    assert clean(d)


def test_database_is_locked_never_hangs_the_ledger(settings: Settings) -> None:
    ledger = Ledger(settings.ledger_path, busy_timeout_ms=200)
    ledger.observe("/x.mp4", 1, 1, "")
    other = sqlite3.connect(settings.ledger_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # `vidx index` (or anything) holds the write lock
    t0 = time.monotonic()
    with pytest.raises(LedgerError, match="locked"):
        ledger.set("/x.mp4", state="done")
    assert time.monotonic() - t0 < 5
    other.execute("ROLLBACK")
    done = threading.Event()

    def write() -> None:
        ledger.set("/x.mp4", state="done")  # would block forever if the lock had leaked
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(5)
    assert ledger.get("/x.mp4").state == "done"  # type: ignore[union-attr]


def test_an_unreadable_ledger_is_never_empty(settings: Settings) -> None:
    settings.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    settings.ledger_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises((LedgerError, RuntimeError)):
        Ledger(settings.ledger_path, read_only=True).rows()


def test_a_hanging_decoder_fails_that_video_and_the_daemon_goes_on(make_settings: Callable[..., Settings],
                                                                   small_video: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_settings(stall_seconds=1.0)
    release = threading.Event()
    import ingest.analyzers.basic as basic

    real = basic.iter_samples

    def hanging(path: Path, *a: Any, **k: Any) -> Iterator[Any]:
        if path.name == "hang.mp4":
            release.wait(60)  # a decoder stuck in a read
        yield from real(path, *a, **k)

    monkeypatch.setattr(basic, "iter_samples", hanging)
    shutil.copy(small_video, s.watch_dir / "hang.mp4")
    d = daemon(s)
    try:
        t0 = time.monotonic()
        run_until(d, lambda: states(d).get("hang.mp4") == "failed")
        print(f"[figure] hanging decoder failed after {time.monotonic() - t0:.1f}s (stall limit 1s)")
        assert time.monotonic() - t0 < 20
        row = d.ledger.get(str(s.watch_dir / "hang.mp4"))
        assert row is not None and "no progress" in (row.error or "")
        (s.watch_dir / "ok.mp4").write_bytes(small_video.read_bytes() + b"\1")
        run_until(d, lambda: states(d).get("ok.mp4") == "done")
    finally:
        release.set()


def test_a_truncated_file_is_done_with_a_warning_naming_the_second(settings: Settings, tmp_path: Path) -> None:
    full = make_video(tmp_path / "full.mp4", fps=10, options={"movflags": "faststart"})  # 32 s, index first
    data = full.read_bytes()
    dest = settings.watch_dir / "cut.mp4"
    dest.write_bytes(data[: int(len(data) * 0.6)])
    d = daemon(settings)
    run_until(d, lambda: states(d).get("cut.mp4") in ("done", "failed"))
    row = d.ledger.get(str(dest))
    assert row is not None and row.state == "done" and row.warnings == 1
    import re

    m = re.search(r"indexed up to (\d+(?:\.\d)?)s", row.error or "")
    assert m, row.error
    print(f"[figure] truncated at 60%: {row.error}")
    assert 10 <= float(m.group(1)) <= 25
    ends = [h.event.end_sec for h in d.pipeline.store.search_knn(HashEmbedder().embed_query("x"), 50).hits]
    assert max(ends) <= float(m.group(1)) + 1  # no event claims the part that is not there


def test_a_stream_starting_at_1_4s_gives_the_right_pictures(settings: Settings, tmp_path: Path) -> None:
    from vidx.media import frame_at, make_clip

    src = make_video(settings.watch_dir / "rec.ts", scenes=[(2.0, (200, 30, 30)), (2.0, (30, 50, 200))], fps=10,
                     container="mpegts", audio="aac", start_offset=1.4)
    d = daemon(settings)
    run_until(d, lambda: states(d).get("rec.ts") == "done")
    hits = d.pipeline.store.search_knn(HashEmbedder().embed_query("scene"), 10).hits
    starts = sorted(h.event.start_sec for h in hits)
    assert starts[0] == 0.0 and any(abs(t - 2.0) <= 0.3 for t in starts)  # the cut at 2 s, not 3.4 s
    red, blue = frame_at(src, 1.5), frame_at(src, 2.5)
    assert red is not None and blue is not None
    assert red[5, 5, 0] > 150 and blue[5, 5, 2] > 150
    clip = make_clip(src, 2.2, 3.5, tmp_path / "c.mp4")
    import av

    with av.open(str(clip)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert first[5, 5, 2] > 150 and first[5, 5, 0] < 100  # blue: the event's first picture
    assert clean(d)


def test_an_avi_source_gets_a_clip_with_audio_starting_at_the_event(tmp_path: Path) -> None:
    import av

    from vidx.media import frame_at, make_clip

    src = make_video(tmp_path / "old.avi", scenes=[(2.0, (200, 30, 30)), (2.0, (30, 50, 200))], fps=10,
                     codec="mpeg4", container="avi", audio="mp3")
    clip = make_clip(src, 2.2, 3.6, tmp_path / "clip.mp4")
    with av.open(str(clip)) as c:
        kinds = {s.type: s.codec_context.name for s in c.streams}
        first = next(c.decode(video=0))
        assert kinds == {"video": "h264", "audio": "aac"}
        assert abs(float(first.time or 0)) < 1e-6  # the clip's time starts at the event
        pic = first.to_ndarray(format="rgb24")
    want = frame_at(src, 2.2, width=None)
    assert want is not None
    assert np.abs(pic[5:20, 5:20].astype(int) - want[5:20, 5:20].astype(int)).mean() < 20
    with av.open(str(clip)) as c:
        assert sum(f.samples for f in c.decode(audio=0)) > 48000  # over a second of sound


def test_a_second_writer_gets_a_clear_error(settings: Settings) -> None:
    from vidx.writelock import WriterBusy, WriterLock

    with WriterLock(settings.data_dir, "run"):
        with pytest.raises(WriterBusy, match=r"`vidx run` \(pid \d+\) is already writing"):
            WriterLock(settings.data_dir, "index").acquire()
    with WriterLock(settings.data_dir, "index"):  # released when the first writer ends
        pass


def test_heartbeat_says_whether_the_daemon_loop_is_alive(settings: Settings,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from vidx import cli

    def check() -> int:
        return cli.cmd_status(cli.build_parser().parse_args(["status", "--check"]), settings)

    assert check() == 1  # no daemon has run
    d = daemon(settings)
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while not d.heartbeat_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert check() == 0
    finally:
        d.stop()
        t.join(10)
    old = time.time() - 600
    os.utime(d.heartbeat_path, (old, old))  # a loop that stopped moving ten minutes ago
    assert check() == 1
    assert "has not reported" in capsys.readouterr().err


def test_same_bytes_with_other_subtitles_are_two_videos(settings: Settings, small_video: Path) -> None:
    a, b = settings.watch_dir / "film.mp4", settings.watch_dir / "film-zh.mp4"
    for p, text in ((a, "The ferry leaves at noon."), (b, "我们明天早上在火车站见面。")):
        shutil.copy(small_video, p)
        write_srt(p.with_suffix(".srt"), [(0.2, 1.5, text)])
    d = daemon(settings)
    run_until(d, lambda: states(d) == {"film.mp4": "done", "film-zh.mp4": "done"})
    assert d.pipeline.analyzer.calls == 2  # type: ignore[attr-defined]
    assert d.pipeline.store.search_keyword("ferry", 5).hits[0].event.video_path == str(a)
    assert d.pipeline.store.search_keyword("火车站", 5).hits[0].event.video_path == str(b)
    assert clean(d)


def test_tiny_pictures_from_the_planes_match_a_full_conversion(tmp_path: Path) -> None:
    import av

    from ingest.sampling import tiny_rgb

    src = make_video(tmp_path / "c.mp4", scenes=[(1.0, (200, 30, 30)), (1.0, (30, 160, 40)), (1.0, (30, 50, 200))],
                     fps=5, size=(640, 360))
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            ours = tiny_rgb(f).astype(int)
            ref = f.to_ndarray(format="rgb24", width=32, height=18).astype(int)
            assert ours.shape == ref.shape == (18, 32, 3)
            assert np.abs(ours - ref).mean() < 6
