"""Process one video: probe -> hash -> analyse -> thumbnails -> embed -> store -> ledger.

``Pipeline.process(path)`` is idempotent: event ids are deterministic and the store
replaces a video's events atomically, so running it twice gives the same index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.analyzers.base import Analysis, AnalysisError, Analyzer, VideoJob
from ingest.subtitles import sidecar_signature
from vidx.config import Settings
from vidx.embed import Embedder
from vidx.errors import ServiceUnavailable
from vidx.ledger import Ledger, WindowRow
from vidx.logs import current_video
from vidx.media import ProbeError, frame_at, jpeg_bytes, probe
from vidx.schema import Event, video_id_for
from vidx.store.base import EventStore, StoreError

log = logging.getLogger("ingest.pipeline")

HASH_CHUNK = 4 * 1024 * 1024


class Cancelled(Exception):
    """The daemon is stopping; the video goes back to pending."""


@dataclass
class Outcome:
    path: Path
    state: str  # done | failed | pending
    events: int = 0
    error: str | None = None
    seconds: float = 0.0
    warnings: int = 0


ProgressHook = Callable[[str, float, str], None]  # path, fraction, message


class LedgerCheckpoint:
    def __init__(self, ledger: Ledger, video_id: str) -> None:
        self.ledger, self.video_id = ledger, video_id

    def load(self, key: str) -> dict[int, WindowRow]:
        return self.ledger.windows(self.video_id, key)

    def save(self, key: str, row: WindowRow) -> None:
        self.ledger.save_window(self.video_id, key, row)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: EventStore,
        embedder_factory: Callable[[], Embedder],
        analyzer: Analyzer,
        progress_hook: ProgressHook | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.analyzer = analyzer
        self.progress_hook = progress_hook
        self.should_stop = should_stop

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            emb = self._embedder_factory()
            # only once the schema is in place: a store that was down must be checked again, or writes
            # would go to an index Elasticsearch auto-creates without the vidx template
            self.store.ensure_schema(emb.model_id, emb.dims)
            self._embedder = emb
        return self._embedder

    # ------------------------------------------------------------------------------
    def process(self, path: Path) -> Outcome:
        path = Path(path).absolute()
        key = str(path)
        token = current_video.set(path.name)
        t0 = time.monotonic()
        try:
            st = path.stat()
            self.ledger.ensure(key, st.st_size, st.st_mtime_ns, sidecar_signature(path))
            row = self.ledger.get(key)
            attempts = (row.attempts if row else 0) + 1
            self.ledger.set(key, state="processing", attempts=attempts, progress=0.0, error=None)
            try:
                n, warnings = self._run(path, key)
            except Cancelled:
                self.ledger.set(key, state="pending", attempts=attempts - 1)
                return Outcome(path, "pending", error="cancelled")
            except ServiceUnavailable as exc:
                # Elasticsearch or the VLM server is down, not the video: wait, do not count the attempt
                msg = f"waiting for a service: {exc}"
                log.warning("%s; will try again", msg)
                self.ledger.set(key, state="pending", attempts=attempts - 1, error=msg)
                return Outcome(path, "pending", error=msg, seconds=time.monotonic() - t0)
            except (ProbeError, AnalysisError) as exc:
                # the file itself is the problem: retrying will not help
                msg = str(exc)
                log.error("failed: %s", msg)
                self.ledger.set(key, state="failed", error=msg, progress=0.0)
                return Outcome(path, "failed", error=msg, seconds=time.monotonic() - t0)
            except Exception as exc:  # store down, out of memory...: retry later
                msg = f"{type(exc).__name__}: {exc}"
                state = "failed" if attempts >= self.settings.max_attempts else "pending"
                log.error("attempt %d/%d failed: %s", attempts, self.settings.max_attempts, msg,
                          exc_info=not isinstance(exc, StoreError))
                self.ledger.set(key, state=state, error=msg)
                return Outcome(path, state, error=msg, seconds=time.monotonic() - t0)
            dt = time.monotonic() - t0
            self.ledger.set(key, state="done", events=n, progress=1.0, warnings=warnings,
                            error=f"{warnings} window(s) could not be analysed" if warnings else None)
            log.info("indexed %d events in %.1fs", n, dt)
            return Outcome(path, "done", events=n, seconds=dt, warnings=warnings)
        except FileNotFoundError:
            log.info("gone before it could be processed")
            self.ledger.remove(key)
            return Outcome(path, "failed", error="file disappeared")
        finally:
            current_video.reset(token)

    def _progress(self, key: str, frac: float, msg: str) -> None:
        if self.should_stop():
            raise Cancelled()
        frac = max(0.0, min(1.0, frac))
        self.ledger.set(key, progress=frac)
        if self.progress_hook:
            self.progress_hook(key, frac, msg)

    def _run(self, path: Path, key: str) -> tuple[int, int]:
        info = probe(path)
        if info.duration_sec <= 0:
            raise ProbeError("the video has no duration")
        self._progress(key, 0.01, "hashing")
        sha = sha256_file(path)
        vid = video_id_for(sha)
        self.ledger.set(key, sha256=sha, video_id=vid, duration_sec=info.duration_sec,
                        analyzer=self.analyzer.version)
        job = VideoJob(path=path, video_id=vid, sha256=sha, info=info, run_id=uuid.uuid4().hex[:12],
                       checkpoint=LedgerCheckpoint(self.ledger, vid))

        def on_progress(frac: float, msg: str) -> None:
            self._progress(key, 0.02 + 0.83 * frac, msg)

        analysis = self.analyzer.analyze(job, on_progress)
        self._write_thumbnails(job, analysis)
        self._progress(key, 0.86, "embedding")
        self._embed(analysis.events)
        self._progress(key, 0.95, "storing")
        report = self.store.replace_video_events(vid, analysis.events)
        if report.failed:
            raise StoreError(
                f"{len(report.failed)} of {len(analysis.events)} events were not stored; first: {report.failed[0][1]}"
            )
        return report.written, len(analysis.warnings)

    def _embed(self, events: list[Event]) -> None:
        if not events:
            return
        emb = self.embedder
        vecs = emb.embed([e.embedding_text() for e in events])
        for e, v in zip(events, vecs):
            e.embedding = [float(x) for x in v]
            e.embedding_model = emb.model_id

    def _write_thumbnails(self, job: VideoJob, analysis: Analysis) -> None:
        folder = self.settings.thumbs_dir / job.video_id
        folder.mkdir(parents=True, exist_ok=True)
        for e in analysis.events:
            data = analysis.thumbnails.get(e.event_id)
            if data is None:
                rgb = frame_at(job.path, min(e.start_sec + 0.5, (e.start_sec + e.end_sec) / 2))
                if rgb is None:
                    continue
                data = jpeg_bytes(rgb)
            dest = folder / f"{e.event_id}.jpg"
            tmp = dest.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
