"""The ingest daemon: watcher -> ledger -> pipeline, one video at a time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from ingest.alerts import Alerts
from ingest.analyzers import make_analyzer
from ingest.lifecycle import Lifecycle, SweepReport
from ingest.pipeline import Outcome, Pipeline
from ingest.progress import ConsoleProgress
from ingest.subtitles import video_for_sidecar
from ingest.watcher import Watcher, is_subtitle, is_video_name
from vidx.config import Settings
from vidx.embed import Embedder, store_embedder
from vidx.ledger import Ledger, LedgerError
from vidx.media import VIDEO_EXTENSIONS
from vidx.search import SearchService
from vidx.store import EventStore, open_store
from vidx.store.base import EventSearcher, IndexMaintainer, StoreError

log = logging.getLogger("ingest.daemon")

RETRY_BACKOFF_S = 30.0
HEARTBEAT_NAME = "daemon.heartbeat"
HEARTBEAT_EVERY_S = 5.0
STUCK_AFTER_S = 60.0  # no tick from the work loop for this long: stop vouching for it




def build_pipeline(
    settings: Settings,
    store: EventStore | None = None,
    ledger: Ledger | None = None,
    embedder_factory: Callable[[], Embedder] | None = None,
    progress: ConsoleProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    force_analysis: bool = False,
) -> Pipeline:
    store = store or open_store(settings)
    ledger = ledger or Ledger(settings.ledger_path)
    factory = embedder_factory or (
        lambda: store_embedder(settings, store)
    )
    return Pipeline(
        settings, ledger, store, factory, make_analyzer(settings),
        progress_hook=progress.update if progress else None, should_stop=should_stop,
        force_analysis=force_analysis,
    )


class Daemon:
    def __init__(self, settings: Settings, pipeline: Pipeline, progress: ConsoleProgress | None = None,
                 alerts: Alerts | None = None) -> None:
        self.settings = settings
        # saved searches run on each indexed video, through the same search as the UI's
        self.alerts = alerts or Alerts(settings, SearchService(cast(EventSearcher, pipeline.store),
                                                               lambda: pipeline.embedder, settings.min_score))
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.progress = progress
        self.lifecycle: Lifecycle = pipeline.lifecycle
        self.watcher = Watcher(settings.watch_dir, settings.stable_seconds, settings.rescan_seconds,
                               settings.use_polling, unchanged=self._unchanged)
        self.stop_event = threading.Event()
        self.heartbeat_path = settings.data_dir / HEARTBEAT_NAME
        self._tick = time.monotonic()
        inner = pipeline.should_stop

        def should_stop() -> bool:  # called all the time while a video is processed: proof of life
            self._tick = time.monotonic()
            return inner() or self.stop_event.is_set()

        pipeline.should_stop = should_stop
        self._retry_at: dict[str, float] = {}
        self.outcomes: list[Outcome] = []

    def recover(self) -> None:
        n = self.ledger.reap_stale()
        if n:
            log.info("%d video(s) interrupted by a previous stop go back to pending", n)

    def _unchanged(self, snapshot: dict[str, tuple[int, int, str, str]], path: Path, size: int, mtime_ns: int,
                   sidecars: str) -> bool:
        """For rescans: a file the ledger already knows as it is now needs no attention."""
        have = snapshot.get(str(path))
        return have is not None and have[:3] == (size, mtime_ns, sidecars) and have[3] in ("done", "failed")

    def handle(self, path: Path) -> Outcome | None:
        """A stable path from the watcher: decide, then process if needed."""
        if is_subtitle(path):
            video = video_for_sidecar(path, VIDEO_EXTENSIONS)
            if video is None:
                return None
            log.info("subtitles %s belong to %s", path.name, video.name)
            path = video
        if not is_video_name(path):
            log.debug("ignoring %s: not a video (%s)", path, ", ".join(sorted(VIDEO_EXTENSIONS)))
            return None
        if not self.watcher.inside(path):
            log.info("ignoring %s: a link that leads outside the watch folder", path)
            return None
        try:
            if not self.lifecycle.observe(path):
                return None
        except OSError:
            return None
        return self._process(path)

    def _process(self, path: Path) -> Outcome:
        if self.progress:
            self.progress.start(str(path.absolute()), path.name)
        out = self.pipeline.process(path)
        if self.progress:
            self.progress.finish(str(path.absolute()), out.state, out.events, out.error)
        if out.state == "done" and out.events:
            self._alert(out)
        if out.state == "pending" and out.error != "cancelled":
            self._retry_at[str(out.path)] = time.monotonic() + RETRY_BACKOFF_S
        self.outcomes.append(out)
        return out

    def _alert(self, out: Outcome) -> None:
        try:
            row = self.ledger.get(str(out.path))
            if row is not None and row.video_id:
                self.alerts.after_indexed(row.video_id, out.path.name)
        except Exception as exc:  # noqa: BLE001 (notifications never stop indexing)
            log.error("saved searches were not run on %s: %s", out.path.name, exc)

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

    def _forget_deleted(self) -> SweepReport | None:
        try:
            return self.lifecycle.sweep()
        except LedgerError as exc:  # never act on a ledger that cannot be read
            log.error("deleted files are not checked: %s", exc)
            return None

    def _sync_names(self) -> None:
        """Names given, merged or hidden in the web UI or CLI go into the stored events."""
        if not self.settings.people_path.exists():
            return
        from vidx.people_sync import NamedStore, sync_pending

        try:
            sync_pending(self.pipeline.people, cast(NamedStore, self.pipeline.store), lambda: self.pipeline.embedder,
                         self.stop_event.is_set)
        except Exception as exc:  # noqa: BLE001 (names are retried at the next tick; indexing goes on)
            log.error("names were not written into the events: %s", exc)

    def take_requests(self) -> int:
        """Requests the web UI left in <data_dir>/requests (it never writes the ledger)."""
        import json

        folder = self.settings.requests_dir
        if not folder.is_dir():
            return 0
        done = 0
        for f in sorted(folder.glob("requeue-*.json")):
            try:
                path = str(json.loads(f.read_text(encoding="utf-8")).get("path", ""))
                row = self.ledger.get(path) if path else None
                if row is not None and row.state == "failed":
                    self.ledger.set(path, state="pending", attempts=0, error=None)
                    self._retry_at.pop(path, None)
                    log.info("%s will be tried again (asked from the web UI)", path)
                    done += 1
            except (OSError, ValueError) as exc:
                log.warning("ignoring the request %s: %s", f.name, exc)
            f.unlink(missing_ok=True)
        return done

    def run_once(self) -> None:
        self.take_requests()
        if self.watcher.rescan_due():
            self.watcher.rescan(self.ledger.snapshot())
        for path in self.watcher.poll():
            if self.stop_event.is_set():
                return
            self.handle(path)

    def _heartbeat(self) -> None:
        """Touch ``data/daemon.heartbeat`` while the work loop is alive (`vidx status --check`,
        the container healthcheck). A loop stuck anywhere stops the heartbeat."""
        while not self.stop_event.wait(HEARTBEAT_EVERY_S):
            if time.monotonic() - self._tick < STUCK_AFTER_S:
                try:
                    self.heartbeat_path.write_text(f"{time.time():.0f}\n")
                except OSError as exc:
                    log.warning("cannot write the heartbeat: %s", exc)
            else:
                log.error("the ingest loop has not moved for %.0fs", time.monotonic() - self._tick)

    def run(self) -> None:
        self.pipeline.preflight()  # a schema or embedding-model mismatch stops here, before any analysis
        self.recover()
        self._tick = time.monotonic()
        self.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
        self.heartbeat_path.write_text(f"{time.time():.0f}\n")
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self.alerts.run, args=(self.stop_event,), name="alerts", daemon=True).start()
        self.watcher.start()
        log.info("watching %s (rescan every %.0fs)", self.watcher.root, self.settings.rescan_seconds)
        last_maintenance = 0.0
        try:
            while not self.stop_event.is_set():
                self._tick = time.monotonic()
                try:
                    self.run_once()
                except LedgerError as exc:  # e.g. "database is locked" for longer than the busy timeout
                    log.error("%s; trying again in %.0fs", exc, RETRY_BACKOFF_S)
                    self.stop_event.wait(RETRY_BACKOFF_S)
                    continue
                if time.monotonic() - last_maintenance >= min(self.settings.rescan_seconds, RETRY_BACKOFF_S):
                    last_maintenance = time.monotonic()
                    self._retry_pending()
                    self._forget_deleted()
                    self._tidy_index()
                self._sync_names()
                self.stop_event.wait(self.settings.poll_seconds)
        finally:
            self.watcher.stop()

    def _tidy_index(self) -> None:
        """Index upkeep between videos (the embedded store merges its full-text segments)."""
        store = self.pipeline.store
        if isinstance(store, IndexMaintainer):
            try:
                store.optimize_index()
            except StoreError as exc:  # upkeep: searches still work on the split index
                log.warning("%s", exc)

    def stop(self) -> None:
        self.stop_event.set()
