"""Browser clips of sources a browser cannot play (MKV, AVI, HEVC, MPEG-2...).

Transcoding runs off the request threads, ``VIDX_CLIP_WORKERS`` at a time; a request for
a clip that is not ready yet is answered at once (503 + ``Retry-After``) and the page's
player tries again, so clip requests never hold the threads that serve ``/healthz`` and
searches. Made clips are cached under ``<data_dir>/clips`` up to ``VIDX_CLIP_CACHE_MB``;
the least recently used are removed first.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from vidx.config import Settings
from vidx.media import make_clip

log = logging.getLogger("search_ui.clips")


class ClipFailed(RuntimeError):
    pass


class ClipMaker:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.clips_dir
        self.cap_bytes = settings.clip_cache_mb * 1024 * 1024
        self._pool = ThreadPoolExecutor(max_workers=settings.clip_workers, thread_name_prefix="clip")
        self._jobs: dict[Path, Future[Path]] = {}
        self._lock = threading.Lock()

    def request(self, src: Path, start: float, end: float, dest: Path) -> Path | None:
        """The clip if it is ready; else start making it (once) and return None.
        Raises ClipFailed when making it failed (the next request tries again)."""
        if dest.is_file():
            try:
                os.utime(dest)  # recently used: pruned last
            except OSError:
                pass
            return dest
        with self._lock:
            fut = self._jobs.get(dest)
            if fut is None:
                fut = self._pool.submit(self._make, src, start, end, dest)
                self._jobs[dest] = fut
            if not fut.done():
                return None
            del self._jobs[dest]
        exc = fut.exception()
        if exc is not None:
            raise ClipFailed(str(exc)) from exc
        return fut.result()

    def _make(self, src: Path, start: float, end: float, dest: Path) -> Path:
        out = make_clip(src, start, end, dest)
        self.prune()
        return out

    def prune(self) -> None:
        files = []
        for p in self.root.rglob("*.mp4"):
            if p.name.startswith(".part-"):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(f[1] for f in files)
        for _, size, p in sorted(files):
            if total <= self.cap_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size
            log.info("clip cache over %d MB: removed %s", self.cap_bytes // (1024 * 1024), p.name)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
