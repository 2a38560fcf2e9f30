"""Watch folder: report a file only once it is complete.

A file is *stable* when its (size, mtime) has not changed for ``stable_seconds`` and it
is still a regular file.  Filesystem events (watchdog) make us look quickly; a periodic
full rescan catches whatever the events missed (network filesystems, a restart).
The watcher only yields paths; the pipeline does the work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.subtitles import SUB_EXTENSIONS
from vidx.media import VIDEO_EXTENSIONS

log = logging.getLogger("ingest.watcher")

TEMP_SUFFIXES = (".part", ".partial", ".crdownload", ".tmp", ".temp", ".download", ".!qb", ".swp", "~")
IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}
IGNORED_DIRS = {"@eadir", "#recycle", ".trash", "$recycle.bin"}


def is_ignored(path: Path, root: Path | None = None) -> bool:
    """Hidden, temporary and system files are never taken."""
    name = path.name
    low = name.lower()
    if name.startswith(".") or name.startswith("~$") or low in IGNORED_NAMES:
        return True
    if any(low.endswith(s) for s in TEMP_SUFFIXES):
        return True
    parts = path.relative_to(root).parts[:-1] if root is not None and path.is_relative_to(root) else ()
    return any(p.startswith(".") or p.lower() in IGNORED_DIRS for p in parts)


def is_subtitle(path: Path) -> bool:
    return path.suffix.lower() in SUB_EXTENSIONS


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class StabilityTracker:
    """Remembers candidates and says which have been quiet for long enough."""

    def __init__(self, quiet_seconds: float) -> None:
        self.quiet = quiet_seconds
        self._seen: dict[Path, _Seen] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path) -> None:
        with self._lock:
            self._seen.setdefault(path, _Seen(-1, -1, time.monotonic()))

    def __len__(self) -> int:
        return len(self._seen)

    def stable(self) -> list[Path]:
        now = time.monotonic()
        out: list[Path] = []
        with self._lock:
            for path, seen in list(self._seen.items()):
                try:
                    st = path.stat(follow_symlinks=True)
                except OSError:
                    del self._seen[path]  # vanished before it was stable: nothing to do
                    continue
                if not path.is_file():
                    del self._seen[path]
                    continue
                if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
                    continue
                if now - seen.since >= self.quiet:
                    out.append(path)
                    del self._seen[path]
        return out


class Watcher:
    """Yields stable files under ``root``: ``for path in watcher.poll(): ...``."""

    def __init__(self, root: Path, quiet_seconds: float, rescan_seconds: float, use_polling: bool = False) -> None:
        self.root = Path(root).absolute()
        self.tracker = StabilityTracker(quiet_seconds)
        self.rescan_seconds = rescan_seconds
        self.use_polling = use_polling
        self._last_rescan = 0.0
        self._observer: object | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
            from watchdog.observers.polling import PollingObserver

            tracker, root = self.tracker, self.root

            class Handler(FileSystemEventHandler):
                def on_any_event(self, event: FileSystemEvent) -> None:
                    if event.is_directory:
                        return
                    for p in (getattr(event, "dest_path", None), event.src_path):
                        if p:
                            path = Path(p if isinstance(p, str) else p.decode())
                            if not is_ignored(path, root):
                                tracker.touch(path)

            obs = PollingObserver(timeout=5) if self.use_polling else Observer()
            obs.schedule(Handler(), str(self.root), recursive=True)
            obs.daemon = True
            obs.start()
            self._observer = obs
        except Exception as exc:  # inotify limits, unsupported fs: the rescan still works
            log.warning("filesystem events unavailable (%s); relying on rescans every %ss", exc, self.rescan_seconds)

    def stop(self) -> None:
        obs = self._observer
        if obs is not None:
            obs.stop()  # type: ignore[attr-defined]
            obs.join(timeout=5)  # type: ignore[attr-defined]
            self._observer = None

    def rescan(self) -> None:
        self._last_rescan = time.monotonic()
        for path in self.scan():
            self.tracker.touch(path)

    def scan(self) -> Iterator[Path]:
        for path in sorted(self.root.rglob("*")):
            try:
                if path.is_file() and not is_ignored(path, self.root):
                    yield path
            except OSError:
                continue

    def poll(self) -> list[Path]:
        if time.monotonic() - self._last_rescan >= self.rescan_seconds:
            self.rescan()
        return self.tracker.stable()
