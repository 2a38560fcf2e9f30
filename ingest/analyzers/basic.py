"""The CPU analyzer: scene cuts, sidecar subtitles and on-screen text (OCR).

One decoding pass at ``scene_fps``: tiny HSV histograms find cuts; the frame shown a
moment into each scene becomes its thumbnail and is read by OCR; frames at the middle
of each subtitle line become that line's thumbnail.  Events:

* one per scene, carrying the dialogue spoken inside it and its on-screen text;
* one per subtitle line, so a line is found at its own time.
"""

from __future__ import annotations

import colorsys
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.analyzers.base import Analysis, AnalysisError, ProgressFn, VideoJob
from ingest.sampling import iter_samples
from ingest.speech.events import speech_events, spoken_between
from ingest.speech.recognizer import Transcript
from ingest.speech.service import SpeechService
from ingest.subtitles import Cue, load_cues
from vidx.config import Settings
from vidx.media import jpeg_bytes
from vidx.schema import Event, event_id_for, format_ts

log = logging.getLogger("ingest.analyzers.basic")

MAX_SCENE_SECONDS = 60.0
THUMB_WIDTH = 320
OCR_WIDTH = 960


def _hist(rgb: np.ndarray) -> np.ndarray:
    """Normalised joint colour histogram (4x4x4 bins) of a small RGB frame."""
    q = (rgb.astype(np.uint16) // 64).reshape(-1, 3)
    idx = q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2]
    h = np.bincount(idx, minlength=64).astype(np.float32)
    return h / max(1.0, float(h.sum()))


def describe_colour(rgb: np.ndarray) -> str:
    """A few words for a frame's look: dominant hue and brightness."""
    mean = rgb.reshape(-1, 3).mean(axis=0) / 255.0
    h, s, v = colorsys.rgb_to_hsv(*mean)
    light = "dark" if v < 0.25 else ("bright" if v > 0.7 else "medium-lit")
    if s < 0.18:
        tone = "black" if v < 0.15 else ("white" if v > 0.85 else "grey")
    else:
        names = [(15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"),
                 (255, "blue"), (290, "purple"), (335, "magenta"), (361, "red")]
        deg = h * 360
        tone = next(n for lim, n in names if deg < lim)
    return f"{light} {tone} picture"


class _Ocr:
    _lock = threading.Lock()
    _engine: Any = None
    _failed = False

    @classmethod
    def read(cls, rgb: np.ndarray) -> str:
        with cls._lock:
            if cls._failed:
                return ""
            if cls._engine is None:
                try:
                    from rapidocr import RapidOCR

                    cls._engine = RapidOCR(params={"Global.log_level": "error"})
                except Exception as exc:  # pragma: no cover - depends on install
                    log.warning("OCR disabled: RapidOCR could not start (%s)", exc)
                    cls._failed = True
                    return ""
            try:
                out = cls._engine(rgb)
            except Exception as exc:  # pragma: no cover
                log.warning("OCR failed on a frame: %s", exc)
                return ""
        txts = getattr(out, "txts", None) or ()
        scores = getattr(out, "scores", None) or ()
        good = [t for t, s in zip(txts, scores) if s >= 0.6 and t.strip()]
        return " ".join(good)[:2000]


@dataclass
class _Scene:
    start: float
    end: float = 0.0
    thumb: bytes | None = None
    ocr_frame: np.ndarray | None = None
    look: str = ""
    ocr_text: str = ""
    cues: list[Cue] = field(default_factory=list)
    settled: bool = False


class BasicAnalyzer:
    name = "basic"
    version = "basic/1"

    def __init__(self, settings: Settings, speech: SpeechService | None = None) -> None:
        self.settings = settings
        self.speech = speech or SpeechService(settings)

    def analyze(self, job: VideoJob, progress: ProgressFn) -> Analysis:
        s = self.settings
        duration = max(job.info.duration_sec, 0.001)
        cues = load_cues(job.path)
        speech = self.speech.start(job.path, cues)  # runs beside the decoding below
        cue_thumb_t = [(c.start + c.end) / 2 for c in cues]
        cue_thumbs: dict[int, bytes] = {}
        next_cue = 0
        warnings: list[str] = []
        scenes: list[_Scene] = []
        prev_hist: np.ndarray | None = None
        last_t = 0.0
        small_w, small_h = 32, 18
        n = 0
        try:
            for sample in iter_samples(job.path, s.scene_fps):
                n += 1
                t = sample.t
                last_t = t
                small = sample.tiny(small_w, small_h)
                hist = _hist(small)
                cut = prev_hist is None or float(np.abs(hist - prev_hist).sum()) / 2 > s.scene_threshold
                cur = scenes[-1] if scenes else None
                too_long = cur is not None and t - cur.start >= MAX_SCENE_SECONDS
                if cut and cur is not None and t - cur.start < s.min_scene_seconds:
                    cut = False  # flash or flicker: keep the scene
                if cut or too_long or cur is None:
                    if cur is not None:
                        cur.end = t
                    scenes.append(_Scene(start=t))
                    cur = scenes[-1]
                prev_hist = hist
                # the thumbnail: the scene's first frame, replaced once by one ~0.5 s in
                if cur.thumb is None or (not cur.settled and t - cur.start >= 0.5):
                    cur.settled = t - cur.start >= 0.5
                    self._keep_frame(cur, sample)
                while next_cue < len(cue_thumb_t) and cue_thumb_t[next_cue] <= t + 0.5 / s.scene_fps:
                    cue_thumbs[next_cue] = jpeg_bytes(sample.rgb(), THUMB_WIDTH)
                    next_cue += 1
                if n % 20 == 0:
                    progress(min(0.95, t / duration) * (0.8 if s.ocr else 1.0), f"{format_ts(t)} decoded")
        except Exception as exc:  # a decode error (Cancelled is a BaseException and passes through)
            if not scenes:
                raise AnalysisError(f"decoding failed: {exc}") from exc
            warnings.append(f"decoding stopped at {format_ts(last_t)} ({last_t:.1f}s of {duration:.1f}s): {exc}; "
                            f"the video is indexed up to {last_t:.1f}s")
        if not scenes:
            raise AnalysisError("no frames could be decoded")
        step = 1.0 / s.scene_fps
        if not warnings and last_t + max(2.0, 2 * step) < duration:
            # the decoder ended quietly long before the duration the container announces: truncated file
            warnings.append(f"the video ends early: decoding stopped at {format_ts(last_t)} ({last_t:.1f}s of "
                            f"{duration:.1f}s; truncated file?); the video is indexed up to {last_t:.1f}s")
        end_of_video = last_t + step if warnings else max(duration, last_t + step)
        scenes[-1].end = end_of_video
        if s.ocr:
            for i, sc in enumerate(scenes):
                if sc.ocr_frame is not None:
                    sc.ocr_text = _Ocr.read(sc.ocr_frame)
                    sc.ocr_frame = None
                progress(0.8 + 0.15 * (i + 1) / len(scenes), "reading on-screen text")
        transcript = speech.wait(lambda f, msg: progress(0.95 + 0.05 * f, msg))
        for c in cues:
            for sc in scenes:
                if c.start < sc.end and c.end > sc.start:
                    sc.cues.append(c)
        analysis = self._events(job, scenes, cues, cue_thumbs, transcript)
        analysis.warnings.extend(warnings)
        if speech.note:
            analysis.notes.append(speech.note)
        return analysis

    def _keep_frame(self, scene: _Scene, sample: Any) -> None:
        big = sample.rgb()
        scene.thumb = jpeg_bytes(big, THUMB_WIDTH)
        scene.look = describe_colour(big)
        if self.settings.ocr:
            h, w = big.shape[:2]
            scene.ocr_frame = big if w <= OCR_WIDTH else sample.rgb(OCR_WIDTH, int(h * OCR_WIDTH / w) // 2 * 2)

    def _events(
        self, job: VideoJob, scenes: list[_Scene], cues: list[Cue], cue_thumbs: dict[int, bytes],
        transcript: Transcript | None = None,
    ) -> Analysis:
        events: list[Event] = []
        thumbs: dict[str, bytes] = {}
        common: dict[str, Any] = dict(
            video_id=job.video_id, video_path=str(job.path), analyzer=self.version, model="", run_id=job.run_id
        )
        n = len(scenes)
        for i, sc in enumerate(scenes):
            start, end = round(sc.start, 3), round(sc.end, 3)
            dialogue = " ".join([*(c.text for c in sc.cues), spoken_between(transcript, sc.start, sc.end)]).strip()
            desc = f"Scene {i + 1} of {n} ({format_ts(start)}–{format_ts(end)}): {sc.look or 'picture'}."
            if sc.ocr_text:
                desc += f" On-screen text: {sc.ocr_text}."
            eid = event_id_for(job.sha256, self.version, start, end, i)
            events.append(
                Event(event_id=eid, start_sec=start, end_sec=end, description=desc, dialogue=dialogue,
                      ocr_text=sc.ocr_text, source="scene", **common)
            )
            if sc.thumb:
                thumbs[eid] = sc.thumb
        for j, c in enumerate(cues):
            start, end = round(c.start, 3), round(c.end, 3)
            eid = event_id_for(job.sha256, self.version, start, end, n + j)
            scene_text = next((sc.ocr_text for sc in scenes if sc.start <= c.start < sc.end), "")
            events.append(
                Event(event_id=eid, start_sec=start, end_sec=end, description=f"Line: {c.text}", dialogue=c.text,
                      ocr_text=scene_text, source="subtitle", language=c.lang[:2] if c.lang else "", **common)
            )
            if j in cue_thumbs:
                thumbs[eid] = cue_thumbs[j]
        spoken = speech_events(transcript, job.sha256, self.version, n + len(cues), common,
                               max(job.info.duration_sec, scenes[-1].end if scenes else 0.0))
        for e in spoken:  # the scene's picture: no extra decoding per line
            home = next((x for x in scenes if x.start <= e.start_sec < x.end), scenes[-1] if scenes else None)
            if home is not None and home.thumb:
                thumbs[e.event_id] = home.thumb
        events.extend(spoken)
        return Analysis(events=events, thumbnails=thumbs)
