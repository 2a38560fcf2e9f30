from __future__ import annotations

import threading
import time
from pathlib import Path

from ingest.watcher import StabilityTracker, Watcher, is_ignored


def test_slowly_written_file_is_not_taken_before_complete(tmp_path: Path, talk_video: Path) -> None:
    data = talk_video.read_bytes()
    dest = tmp_path / "watch" / "slow.mp4"
    dest.parent.mkdir()
    w = Watcher(dest.parent, quiet_seconds=0.6, rescan_seconds=0.2)
    w.start()
    finished = threading.Event()

    def writer() -> None:
        with open(dest, "wb") as f:
            for i in range(0, len(data), 4096):
                f.write(data[i : i + 4096])
                f.flush()
                time.sleep(0.1)  # a quiet gap shorter than the quiet period
        finished.set()

    t = threading.Thread(target=writer)
    t.start()
    taken_early = []
    taken: list[Path] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not taken:
            got = w.poll()
            if got and not finished.is_set():
                taken_early.extend(got)
            taken.extend(got)
            time.sleep(0.05)
    finally:
        t.join()
        w.stop()
    assert not taken_early
    assert taken == [dest]
    assert dest.stat().st_size == len(data)


def test_vanished_file_is_dropped_silently(tmp_path: Path) -> None:
    p = tmp_path / "gone.mp4"
    p.write_bytes(b"x")
    tr = StabilityTracker(0.0)
    tr.touch(p)
    p.unlink()
    assert tr.stable() == [] and len(tr) == 0


def test_hidden_and_temporary_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path
    for name in [".hidden.mp4", "movie.mp4.part", "x.crdownload", "~$lock.mp4", "Thumbs.db", "._x.mp4", "a.tmp"]:
        assert is_ignored(root / name, root), name
    assert is_ignored(root / "@eaDir" / "x.mp4", root)
    assert is_ignored(root / ".sync" / "x.mp4", root)
    assert not is_ignored(root / "film.mp4", root)
    assert not is_ignored(root / "sub" / "notes.txt", root)


def test_rescan_finds_a_file_events_missed(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "a.mp4").write_bytes(b"123")
    w = Watcher(root, quiet_seconds=0.0, rescan_seconds=0.01)  # never started: no fs events at all
    found: list[Path] = []
    for _ in range(5):
        found += w.poll()
        time.sleep(0.02)
    assert set(found) == {root / "a.mp4"}  # re-reports are answered by the ledger
