"""The ingest daemon: watcher -> ledger -> pipeline, one video at a time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ingest.analyzers import make_analyzer
from ingest.pipeline import Outcome, Pipeline
from ingest.progress import ConsoleProgress
from ingest.subtitles import sidecar_signature, video_for_sidecar
from ingest.watcher import Watcher, is_subtitle
from vidx.config import Settings
from vidx.embed import Embedder, load_embedder
from vidx.ledger import Ledger
from vidx.media import VIDEO_EXTENSIONS
from vidx.store import EventStore, open_store
from vidx.verify import forget_file

log = logging.getLogger("ingest.daemon")

RETRY_BACKOFF_S = 30.0


def build_pipeline(
    settings: Settings,
    store: EventStore | None = None,
    ledger: Ledger | None = None,
    embedder_factory: Callable[[], Embedder] | None = None,
    progress: ConsoleProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Pipeline:
    store = store or open_store(settings)
    ledger = ledger or Ledger(settings.ledger_path)
    factory = embedder_factory or (
        lambda: load_embedder(settings.embed_model, settings.embed_batch_size, settings.embed_device)
    )
    return Pipeline(
        settings, ledger, store, factory, make_analyzer(settings),
        progress_hook=progress.update if progress else None, should_stop=should_stop,
    )


class Daemon:
    def __init__(self, settings: Settings, pipeline: Pipeline, progress: ConsoleProgress | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.progress = progress
        self.watcher = Watcher(settings.watch_dir, settings.stable_seconds, settings.rescan_seconds,
                               settings.use_polling)
        self.stop_event = threading.Event()
        self._retry_at: dict[str, float] = {}
        self.outcomes: list[Outcome] = []

    def recover(self) -> None:
        n = self.ledger.reap_stale()
        if n:
            log.info("%d video(s) interrupted by a previous stop go back to pending", n)

    def handle(self, path: Path) -> Outcome | None:
        """A stable path from the watcher: decide, then process if needed."""
        if is_subtitle(path):
            video = video_for_sidecar(path, VIDEO_EXTENSIONS)
            if video is None:
                return None
            log.info("subtitles %s belong to %s", path.name, video.name)
            path = video
        try:
            st = path.stat()
        except OSError:
            return None
        if not self.ledger.observe(str(path.absolute()), st.st_size, st.st_mtime_ns, sidecar_signature(path)):
            return None
        return self._process(path)

    def _process(self, path: Path) -> Outcome:
        if self.progress:
            self.progress.start(str(path.absolute()), path.name)
        out = self.pipeline.process(path)
        if self.progress:
            self.progress.finish(str(path.absolute()), out.state, out.events, out.error)
        if out.state == "pending" and out.error != "cancelled":
            self._retry_at[str(out.path)] = time.monotonic() + RETRY_BACKOFF_S
        self.outcomes.append(out)
        return out

    def _retry_pending(self) -> None:
        now = time.monotonic()
        for row in self.ledger.rows("pending"):
            if self.stop_event.is_set():
                return
            if self._retry_at.get(row.path, 0) > now:
                continue
            p = Path(row.path)
            if p.exists():
                self._process(p)

    def _forget_deleted(self) -> None:
        for row in self.ledger.rows():
            if not Path(row.path).exists():
                log.info("%s was deleted; removing its events", row.path)
                forget_file(self.ledger, self.pipeline.store, row.path)

    def run_once(self) -> None:
        for path in self.watcher.poll():
            if self.stop_event.is_set():
                return
            self.handle(path)

    def run(self) -> None:
        self.recover()
        self.watcher.start()
        log.info("watching %s (rescan every %.0fs)", self.watcher.root, self.settings.rescan_seconds)
        last_maintenance = 0.0
        try:
            while not self.stop_event.is_set():
                self.run_once()
                if time.monotonic() - last_maintenance >= min(self.settings.rescan_seconds, RETRY_BACKOFF_S):
                    last_maintenance = time.monotonic()
                    self._retry_pending()
                    self._forget_deleted()
                self.stop_event.wait(self.settings.poll_seconds)
        finally:
            self.watcher.stop()

    def stop(self) -> None:
        self.stop_event.set()
