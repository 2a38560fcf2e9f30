"""Watch folder: report a file only once it is complete.

A file is *stable* when its (size, mtime) has not changed for ``stable_seconds`` and it
is still a regular file.  Filesystem events (watchdog) make us look quickly; a periodic
full rescan catches whatever the events missed (network filesystems, a restart).
The watcher only yields paths; the pipeline does the work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.subtitles import SUB_EXTENSIONS, sidecar_signature
from vidx.media import VIDEO_EXTENSIONS

# (ledger snapshot, path, size, mtime_ns, sidecar signature) -> already known exactly like this
Unchanged = Callable[[dict[str, tuple[int, int, str, str]], Path, int, int, str], bool]

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

    def __init__(self, root: Path, quiet_seconds: float, rescan_seconds: float, use_polling: bool = False,
                 unchanged: Unchanged | None = None) -> None:
        self.root = Path(root).absolute()
        self.tracker = StabilityTracker(quiet_seconds)
        self.rescan_seconds = rescan_seconds
        self.use_polling = use_polling
        self.unchanged = unchanged
        self._last_rescan = 0.0
        self._observer: object | None = None
        self.last_scan_listings = 0  # folders listed by the last rescan (each exactly once)

    def inside(self, path: Path) -> bool:
        """Is the file, links resolved, inside the watch folder? Links that lead out are not followed."""
        try:
            return Path(path).resolve().is_relative_to(self.root.resolve())
        except (OSError, RuntimeError):
            return False

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
                            if not is_ignored(path, root) and (is_video_name(path) or is_subtitle(path)):
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

    def rescan_due(self) -> bool:
        return time.monotonic() - self._last_rescan >= self.rescan_seconds

    def rescan(self, snapshot: dict[str, tuple[int, int, str, str]] | None = None) -> None:
        """Look at every file once; files the ledger ``snapshot`` already knows exactly as they
        are (size, mtime, subtitles) are skipped, so a rescan of an unchanged library writes nothing."""
        self._last_rescan = time.monotonic()
        for path, st, siblings in self.scan_entries():
            if snapshot is not None and self.unchanged is not None:
                if is_subtitle(path):
                    continue  # a changed sidecar changes its video's signature: the video is looked at
                if is_video_name(path) and self.unchanged(snapshot, path, st.st_size, st.st_mtime_ns,
                                                          sidecar_signature(path, siblings)):
                    continue
            if is_video_name(path) or is_subtitle(path):
                self.tracker.touch(path)

    def scan(self) -> Iterator[Path]:
        for path, _, _ in self.scan_entries():
            yield path

    def scan_entries(self) -> Iterator[tuple[Path, os.stat_result, list[Path]]]:
        """(file, stat, the folder's listing) for every candidate file, listing each folder once.
        Links to files are followed only when they stay inside the watch folder; linked folders
        are never entered."""
        root = self.root.resolve() if self.root.exists() else self.root
        listings = 0
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            listings += 1
            siblings = [Path(e.path) for e in entries]
            for e in entries:
                path = Path(e.path)
                if is_ignored(path, self.root):
                    continue
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(path)
                        continue
                    if e.is_symlink():
                        target = path.resolve()
                        if not target.is_relative_to(root):
                            log.debug("not following %s: it leads outside the watch folder", path)
                            continue
                    if not e.is_file():
                        continue
                    st = e.stat()
                except OSError:
                    continue
                yield path, st, siblings
        self.last_scan_listings = listings

    def poll(self) -> list[Path]:
        if self.rescan_due():
            self.rescan()
        return self.tracker.stable()
