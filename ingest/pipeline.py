"""Process one video as ordered stages: probe -> hash -> analyse -> thumbnails -> embed -> store.

Each stage is an object with ``run(ctx)`` and ``cleanup(ctx, ok)``; cleanup always runs for
every stage that started, and a stage ends the chain early with :class:`StopPipeline`
(the video needs no more work, e.g. the same content is already indexed). The ledger
records the stage a video is in, so the status shows it and a restart resumes: event ids
are deterministic, the store replaces a video's events atomically and VLM windows are
checkpointed, so running a video again after a stop at any stage gives the same index.

Decoding and analysis run under supervision (:mod:`ingest.supervise`): a shutdown returns
within a fraction of a second, a hung decoder fails the video after ``VIDX_STALL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.analyzers.base import Analysis, AnalysisError, Analyzer, VideoJob
from ingest.lifecycle import Lifecycle
from ingest.subtitles import sidecar_signature
from ingest.supervise import Heartbeat, Stalled, run_supervised
from vidx.config import Settings
from vidx.embed import Embedder
from vidx.errors import Cancelled, ServiceUnavailable
from vidx.ledger import FileRow, Ledger, WindowRow
from vidx.logs import current_video
from vidx.media import ProbeError, VideoInfo, frame_at, jpeg_bytes, probe
from vidx.people import PeopleDB
from vidx.schema import video_id_for
from vidx.store.base import EventWriter, SchemaMismatch, StoreError

log = logging.getLogger("ingest.pipeline")

HASH_CHUNK = 4 * 1024 * 1024

__all__ = ["Cancelled", "Outcome", "Pipeline", "StopPipeline"]


def without_paths(message: str, path: Path) -> str:
    """An error as the status page and the API may show it: the file's folders removed (its
    name stays), so no absolute path of the server leaves it."""
    for p in sorted({str(path.absolute()), str(path.resolve()), str(path)}, key=len, reverse=True):
        message = message.replace(p, path.name)
    for folder in sorted({str(path.absolute().parent), str(path.resolve().parent)}, key=len, reverse=True):
        message = message.replace(folder + os.sep, "")
    return message


class StopPipeline(Exception):
    """A stage decided the video needs no more work; the outcome is ``done``."""


@dataclass
class Outcome:
    path: Path
    state: str  # done | failed | pending
    events: int = 0
    error: str | None = None
    seconds: float = 0.0
    warnings: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


ProgressHook = Callable[[str, float, str], None]  # path, fraction, message


class LedgerCheckpoint:
    def __init__(self, ledger: Ledger, video_id: str) -> None:
        self.ledger, self.video_id = ledger, video_id

    def load(self, key: str) -> dict[int, WindowRow]:
        return self.ledger.windows(self.video_id, key)

    def save(self, key: str, row: WindowRow) -> None:
        self.ledger.save_window(self.video_id, key, row)


def sha256_file(path: Path, on_chunk: Callable[[], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
            if on_chunk:
                on_chunk()
    return h.hexdigest()


def sidecar_digest(path: Path) -> str:
    """A digest of the subtitle files beside ``path`` (their language suffix and bytes), '' if none."""
    from ingest.subtitles import sidecars_for

    h = hashlib.sha256()
    found = False
    for sub in sidecars_for(path):
        try:
            data = sub.read_bytes()
        except OSError:
            continue
        found = True
        h.update(sub.name[len(path.stem):].encode() + b"\0" + data + b"\0")
    return h.hexdigest() if found else ""


@dataclass
class VideoContext:
    """What the stages of one run know about the video."""

    path: Path
    key: str
    row: FileRow | None  # the ledger row as it was before this run
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    info: VideoInfo | None = None
    sha256: str = ""
    video_id: str = ""
    job: VideoJob | None = None
    analysis: Analysis | None = None
    written: int = 0
    events: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)  # parts of the analysis, which overlap


class Stage(Protocol):
    name: str

    def run(self, ctx: VideoContext) -> None: ...

    def cleanup(self, ctx: VideoContext, ok: bool) -> None: ...


class _Base:
    name = "stage"

    def __init__(self, p: Pipeline) -> None:
        self.p = p

    def cleanup(self, ctx: VideoContext, ok: bool) -> None:
        return None


class ProbeStage(_Base):
    name = "probe"

    def run(self, ctx: VideoContext) -> None:
        ctx.info = run_supervised(lambda hb: probe(ctx.path), self.p.settings.stall_seconds, self.p.should_stop,
                                  "probing")
        if ctx.info.duration_sec <= 0:
            raise ProbeError("the video has no duration")


class HashStage(_Base):
    """The content hash is the video's identity. The same bytes already indexed under
    another path (a copy, or a rename) are adopted without analysing anything again."""

    name = "hash"

    def run(self, ctx: VideoContext) -> None:
        p = self.p
        p.progress(ctx.key, 0.01, "hashing")
        ctx.sha256 = run_supervised(lambda hb: sha256_file(ctx.path, lambda: hb.beat("hashing")),
                                    p.settings.stall_seconds, p.should_stop, "hashing")
        subs = sidecar_digest(ctx.path)
        ctx.video_id = self._identity(ctx, subs)
        assert ctx.info is not None
        p.ledger.set(ctx.key, sha256=ctx.sha256, video_id=ctx.video_id, duration_sec=ctx.info.duration_sec,
                     analyzer=p.analyzer.version, subs_digest=subs)
        same = [r for r in p.ledger.rows_for_video(ctx.video_id) if r.path != ctx.key and r.state == "done"]
        if same and not p.force_analysis:
            src = same[0]
            if not os.path.exists(src.path):  # a rename: the events follow the file
                p.store.repoint_video(ctx.video_id, ctx.key)
                log.info("same content as %s (moved): events re-pointed, nothing analysed again", src.path)
            else:
                log.info("same content as %s: indexed once, nothing analysed again", src.path)
            ctx.events = src.events
            raise StopPipeline()


    def _identity(self, ctx: VideoContext, subs: str) -> str:
        """The video id: stable while the file's bytes are, whatever its subtitle sidecars do
        (links and saved clips keep working), and another id for the same bytes with other
        subtitles at another path (two videos, each searchable with its own lines)."""
        ledger, row = self.p.ledger, ctx.row
        if row and row.video_id and row.sha256 == ctx.sha256:  # same bytes: the sidecars may have changed
            sharing = [r for r in ledger.rows_for_video(row.video_id) if r.path != ctx.key]
            if all((r.subs_digest or "") == subs for r in sharing):
                return row.video_id
        peers = [r for r in ledger.rows_for_content(ctx.sha256) if r.path != ctx.key and r.video_id]
        same = next((r for r in peers if (r.subs_digest or "") == subs), None)
        if same is not None:
            return str(same.video_id)  # a copy: one video
        if peers:  # these bytes are indexed with other subtitles: a video of its own
            return video_id_for(hashlib.sha256(f"{ctx.sha256}|{ctx.key}".encode()).hexdigest())
        return video_id_for(ctx.sha256)


class SchemaStage(_Base):
    """Fail fast: the store must accept this embedder's vectors before any analysis is spent."""

    name = "schema"

    def run(self, ctx: VideoContext) -> None:
        _ = self.p.embedder


class AnalyseStage(_Base):
    name = "analyse"

    def run(self, ctx: VideoContext) -> None:
        p = self.p
        assert ctx.info is not None
        def speaker_names(d: object) -> dict[int, str]:
            from vidx.people import VoicePrint

            sp = getattr(d, "speakers", [])
            return p.people.match_names([VoicePrint(x.label, x.print, x.seconds, x.sample) for x in sp],
                                        getattr(d, "model_id", ""), p.settings.people_voice_match)

        ctx.job = VideoJob(path=ctx.path, video_id=ctx.video_id, sha256=ctx.video_id, info=ctx.info,
                           run_id=ctx.run_id, checkpoint=LedgerCheckpoint(p.ledger, ctx.video_id),
                           speaker_names=speaker_names if p.settings.voices_on else None)
        job = ctx.job

        def work(hb: Heartbeat) -> Analysis:
            def on_progress(frac: float, msg: str) -> None:
                hb.beat(msg)
                p.progress(ctx.key, 0.02 + 0.80 * frac, msg)

            return p.analyzer.analyze(job, on_progress)

        try:
            ctx.analysis = run_supervised(work, p.settings.stall_seconds, p.should_stop, "analysis")
        finally:
            job.ended.set()  # speech recognition still running for a failed video stops with it
        ctx.busy = {f"analyse.{k}": round(v, 3) for k, v in ctx.analysis.busy.items()}


class ThumbnailStage(_Base):
    name = "thumbnails"

    def run(self, ctx: VideoContext) -> None:
        p = self.p
        assert ctx.analysis is not None and ctx.job is not None
        analysis, job = ctx.analysis, ctx.job
        p.progress(ctx.key, 0.83, "thumbnails")

        def work(hb: Heartbeat) -> None:
            folder = p.settings.thumbs_dir / job.video_id
            folder.mkdir(parents=True, exist_ok=True)
            for e in analysis.events:
                hb.beat("thumbnails")
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

        run_supervised(work, p.settings.stall_seconds, p.should_stop, "thumbnails")

    def cleanup(self, ctx: VideoContext, ok: bool) -> None:
        if not ok and ctx.video_id:  # no half-written temporary files left behind
            for tmp in (self.p.settings.thumbs_dir / ctx.video_id).glob("*.tmp"):
                tmp.unlink(missing_ok=True)


class PeopleStage(_Base):
    """Who speaks and who is seen: the video's speakers and faces are matched against the
    people of the library (:mod:`vidx.people`); speech events get their speaker's name, scene
    events the names of the faces seen in them."""

    name = "people"

    def run(self, ctx: VideoContext) -> None:
        p = self.p
        s = p.settings
        if not (s.voices_on or s.faces_on) or ctx.analysis is None:
            return
        from vidx.people import FacePrint
        from vidx.people_sync import name_events

        a = ctx.analysis
        db = p.people
        if s.voices_on:
            self._voices(ctx)
        if a.faces is None:
            db.forget_faces(ctx.video_id)  # the video's events are replaced: faces found before go
        else:
            db.register_faces(ctx.video_id, [FacePrint(f.t, f.descriptor, f.score, f.box, f.thumb) for f in a.faces],
                              a.faces_model, match=s.people_face_match, min_faces=s.people_face_min)
        name_events(db, ctx.video_id, a.events, fresh=True)

    def _voices(self, ctx: VideoContext) -> None:
        from vidx.people import VoicePrint

        a, db = ctx.analysis, self.p.people
        assert a is not None
        if a.voices is None or not a.voices.speakers:
            db.forget_voices(ctx.video_id)  # the video's events are replaced: their old voices go
            return
        starts = {eid: e.start_sec for e in a.events if (eid := e.event_id) in a.turns}
        prints = [VoicePrint(s.label, s.print, s.seconds, s.sample,
                             next((eid for eid, lab in a.turns.items()
                                   if lab == s.label and abs(starts[eid] - s.sample[0]) < 0.002), ""))
                  for s in a.voices.speakers]
        mapping = db.register_video(ctx.video_id, prints, a.turns, a.voices.model_id,
                                    across=self.p.settings.people_voice_match)
        log.info("people: %d speaker(s) -> person %s", len(prints), ", ".join(str(v) for v in mapping.values()))


class EmbedStage(_Base):
    name = "embed"

    def run(self, ctx: VideoContext) -> None:
        assert ctx.analysis is not None
        self.p.progress(ctx.key, 0.86, "embedding")
        events = ctx.analysis.events
        if not events:
            return
        emb = self.p.embedder
        vecs = emb.embed([e.embedding_text() for e in events])
        for e, v in zip(events, vecs):
            e.embedding = [float(x) for x in v]
            e.embedding_model = emb.model_id


class StoreStage(_Base):
    name = "store"

    def run(self, ctx: VideoContext) -> None:
        p = self.p
        assert ctx.analysis is not None
        self.p.progress(ctx.key, 0.95, "storing")
        events = ctx.analysis.events
        report = p.store.replace_video_events(ctx.video_id, events)
        if report.failed:
            raise StoreError(
                f"{len(report.failed)} of {len(events)} events were not stored; first: {report.failed[0][1]}"
            )
        ctx.written = ctx.events = report.written
        # the file's previous content (if it changed in place) is no longer what this path holds
        old = ctx.row.video_id if ctx.row else None
        if old and old != ctx.video_id:
            p.lifecycle.superseded(old, ctx.video_id)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        store: EventWriter,
        embedder_factory: Callable[[], Embedder],
        analyzer: Analyzer,
        progress_hook: ProgressHook | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        force_analysis: bool = False,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.analyzer = analyzer
        self.progress_hook = progress_hook
        self.should_stop = should_stop
        self.force_analysis = force_analysis  # `vidx reindex`: analyse even content indexed elsewhere
        self.lifecycle = Lifecycle(settings, ledger, store)
        self.stages: list[Stage] = [ProbeStage(self), HashStage(self), SchemaStage(self), AnalyseStage(self),
                                    ThumbnailStage(self), PeopleStage(self), EmbedStage(self), StoreStage(self)]
        self._people: PeopleDB | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            emb = self._embedder_factory()
            # only once the schema is in place: a store that was down must be checked again, or writes
            # would go to an index Elasticsearch auto-creates without the vidx template
            self.store.ensure_schema(emb.model_id, emb.dims)
            self._embedder = emb
        return self._embedder

    @property
    def people(self) -> PeopleDB:
        if self._people is None:
            self._people = PeopleDB(self.settings.people_path)
        return self._people

    def preflight(self) -> None:
        """Check the store's schema and embedding model once, before any video is analysed.
        Raises SchemaMismatch (the operator must act); a store that cannot be reached yet is
        checked again before the first video's analysis."""
        try:
            _ = self.embedder
        except ServiceUnavailable as exc:
            log.warning("%s; the schema is checked again before the first video", exc)

    # ------------------------------------------------------------------------------
    def process(self, path: Path) -> Outcome:
        path = Path(path).absolute()
        key = str(path)
        token = current_video.set(path.name)
        t0 = time.monotonic()
        try:
            try:
                st = path.stat()
            except FileNotFoundError:
                log.info("gone before it could be processed")
                return Outcome(path, "pending", error="file disappeared")
            self.ledger.ensure(key, st.st_size, st.st_mtime_ns, sidecar_signature(path))
            row = self.ledger.get(key)
            attempts = (row.attempts if row else 0) + 1
            self.ledger.set(key, state="processing", attempts=attempts, progress=0.0, error=None, warnings=0,
                            note=None, started_at=time.time())
            ctx = VideoContext(path=path, key=key, row=row)
            try:
                self._run_stages(ctx)
            except Cancelled:
                self.ledger.set(key, state="pending", attempts=attempts - 1)
                return Outcome(path, "pending", error="cancelled")
            except SchemaMismatch:
                # the operator must act; the video is not at fault and keeps its place in the queue
                self.ledger.set(key, state="pending", attempts=attempts - 1)
                raise
            except ServiceUnavailable as exc:
                # Elasticsearch or the VLM server is down, not the video: wait, do not count the attempt
                msg = f"waiting for a service: {exc}"
                log.warning("%s; will try again", msg)
                self.ledger.set(key, state="pending", attempts=attempts - 1, error=msg)
                return Outcome(path, "pending", error=msg, seconds=time.monotonic() - t0)
            except FileNotFoundError:
                log.info("gone while it was processed")
                self.ledger.set(key, state="pending", attempts=attempts - 1, error="the file disappeared")
                return Outcome(path, "pending", error="file disappeared")
            except (ProbeError, AnalysisError, Stalled) as exc:
                # the file itself is the problem: retrying will not help
                msg = without_paths(str(exc), path)
                log.error("failed: %s", msg)
                self.ledger.set(key, state="failed", error=msg, progress=0.0)
                return Outcome(path, "failed", error=msg, seconds=time.monotonic() - t0)
            except Exception as exc:  # store error, out of memory...: retry later
                msg = without_paths(f"{type(exc).__name__}: {exc}", path)
                state = "failed" if attempts >= self.settings.max_attempts else "pending"
                log.error("attempt %d/%d failed: %s", attempts, self.settings.max_attempts, msg,
                          exc_info=not isinstance(exc, StoreError))
                self.ledger.set(key, state=state, error=msg)
                return Outcome(path, state, error=msg, seconds=time.monotonic() - t0)
            dt = time.monotonic() - t0
            warnings = ctx.analysis.warnings if ctx.analysis else []
            notes = ctx.analysis.notes if ctx.analysis else []
            for w in warnings:
                log.warning("%s", w)
            for n in notes:
                log.info("%s", n)
            self.ledger.set(key, state="done", events=ctx.events, progress=1.0, warnings=len(warnings),
                            error="; ".join(warnings)[:2000] if warnings else None,
                            note="; ".join(notes)[:2000] if notes else None, message=None,
                            finished_at=time.time(), seconds_spent=dt)
            log.info("indexed %d events in %.1fs%s (%s; inside analyse, overlapping: %s)", ctx.events, dt,
                     f" with {len(warnings)} warning(s)" if warnings else "",
                     ", ".join(f"{k} {v:.1f}s" for k, v in ctx.timings.items()),
                     ", ".join(f"{k.split('.', 1)[1]} {v:.1f}s" for k, v in ctx.busy.items()) or "-")
            return Outcome(path, "done", events=ctx.events, seconds=dt, warnings=len(warnings),
                           error="; ".join(warnings) if warnings else None,
                           timings={**ctx.timings, **ctx.busy})
        finally:
            current_video.reset(token)

    def _run_stages(self, ctx: VideoContext) -> None:
        started: list[Stage] = []
        ok = False
        try:
            for stage in self.stages:
                if self.should_stop():
                    raise Cancelled()
                started.append(stage)
                log.debug("stage %s", stage.name)
                t0 = time.monotonic()
                try:
                    stage.run(ctx)
                finally:
                    ctx.timings[stage.name] = round(time.monotonic() - t0, 3)
            ok = True
        except StopPipeline:
            ok = True
        finally:
            for stage in reversed(started):
                try:
                    stage.cleanup(ctx, ok)
                except Exception:  # a cleanup must never hide the stage's own error
                    log.exception("cleanup of stage %s failed", stage.name)

    def progress(self, key: str, frac: float, msg: str) -> None:
        if self.should_stop():
            raise Cancelled()
        frac = max(0.0, min(1.0, frac))
        self.ledger.set(key, progress=frac, message=msg[:200])
        if self.progress_hook:
            self.progress_hook(key, frac, msg)
