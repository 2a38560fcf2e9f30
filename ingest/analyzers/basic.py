"""The CPU analyzer: scene cuts, sidecar subtitles and on-screen text (OCR).

One decoding pass at ``scene_fps``: tiny colour histograms find cuts; the frame shown a
moment into each scene becomes its thumbnail and is read by OCR, on a thread beside the
decoding (``VIDX_OVERLAP``); inside a long scene a frame is read every ``VIDX_OCR_INTERVAL``
seconds unless its picture is the same as the last one read (a read recognises only the text
lines whose pixels changed since the read before: ``ocr.TextRegions``), and text that differs from the
scene's starts a new event at the picture change before it (a slide change on the same
background is not a colour change). Frames at the middle of each subtitle line become that
line's thumbnail. Events:

* one per scene (or per text segment of a scene), with the dialogue spoken inside it and its
  on-screen text;
* one per subtitle line, so a line is found at its own time.
"""

from __future__ import annotations

import colorsys
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.analyzers.base import Analysis, AnalysisError, ProgressFn, VideoJob
from ingest.analyzers.ocr import OCR_MAX_GROWTH, OCR_WIDTH, InlineOcr, OcrEngine, OcrWorker, TextReader, TextRegions
from ingest.people.faces import FACE_WIDTH, FaceModelError, FaceWorker, load_faces
from ingest.sampling import Sample, changed_fraction, iter_samples
from ingest.speech.events import speaker_turns, speech_events, spoken_between
from ingest.speech.recognizer import Transcript
from ingest.speech.service import SpeechService
from ingest.subtitles import Cue, load_cues
from vidx.config import Settings
from vidx.media import jpeg_bytes
from vidx.schema import Event, event_id_for, format_ts

log = logging.getLogger("ingest.analyzers.basic")

MAX_SCENE_SECONDS = 60.0
THUMB_WIDTH = 320


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


SAME_PICTURE = 0.01  # under 1 % of signature points changed: nothing new to read
SAME_TEXT = 0.6  # word overlap (of the shorter text) above which two reads are the same text


@dataclass
class _Scene:
    start: float
    end: float = 0.0
    thumb: bytes | None = None
    look: str = ""
    ocr_text: str = ""
    cues: list[Cue] = field(default_factory=list)
    settled: bool = False


@dataclass
class _Read:
    t: float
    scene: int
    key: int  # whose text this read has (an earlier key when the picture had not changed)
    thumb: bytes | None = None


@dataclass
class _Pass:
    scenes: list[_Scene] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)
    changes: list[tuple[float, float]] = field(default_factory=list)  # (t, picture change since last sample)
    cue_thumbs: dict[int, bytes] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    decode_s: float = 0.0  # waiting for the decoder
    scenes_s: float = 0.0  # the rest of the decoding loop (cuts, thumbnails, handing frames to OCR; not OCR itself)


def _timed(it: Iterator[Sample], p: _Pass) -> Iterator[Sample]:
    while True:
        t0 = time.perf_counter()
        try:
            x = next(it)
        except StopIteration:
            p.decode_s += time.perf_counter() - t0
            return
        p.decode_s += time.perf_counter() - t0
        yield x


def ocr_size(w: int, h: int) -> tuple[int, int]:
    """The size a frame is read at: OCR_WIDTH wide (small text grows legible), but never more
    than OCR_MAX_GROWTH times its own size: finding text costs the same at any source size, and
    a thumbnail-sized video grown to OCR_WIDTH only costs more (0.3 s a read instead of 5 ms)."""
    width = min(OCR_WIDTH, OCR_MAX_GROWTH * w)
    return width, max(2, int(h * width / w) // 2 * 2)


def _ocr_rgb(sample: Sample) -> np.ndarray:
    w, h = sample.frame.width, sample.frame.height
    if w == OCR_WIDTH:
        return sample.rgb()
    return sample.rgb(*ocr_size(w, h))


def _words(text: str) -> set[str]:
    return {w for w in text.lower().split() if len(w) > 1}


def same_text(a: str, b: str) -> bool:
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return not wa and not wb
    return len(wa & wb) / min(len(wa), len(wb)) >= SAME_TEXT


def _apply_text(p: _Pass, texts: dict[int, str], min_scene: float) -> list[_Scene]:
    """Give each scene its text, and split a scene where its text changed: at the biggest
    picture change between the read before and the read that saw the new text."""
    out: list[_Scene] = []
    by_scene: dict[int, list[_Read]] = {}
    for r in p.reads:
        by_scene.setdefault(r.scene, []).append(r)
    for i, sc in enumerate(p.scenes):
        cur = sc
        prev_t, scene_end = sc.start, sc.end
        for r in by_scene.get(i, []):
            text = texts.get(r.key, "")
            if not cur.ocr_text or same_text(cur.ocr_text, text) or not text:
                if len(_words(text)) > len(_words(cur.ocr_text)):
                    cur.ocr_text = text  # text revealed line by line: keep the fullest read
                prev_t = r.t
                continue
            window = [(c, t) for t, c in p.changes if prev_t < t <= r.t]
            cut = max(window)[1] if window else r.t
            if cut - cur.start < min_scene or scene_end - cut < min_scene or r.thumb is None:
                prev_t = r.t
                continue
            nxt = _Scene(start=cut, end=cur.end, thumb=r.thumb, look=cur.look, ocr_text=text, settled=True)
            cur.end = cut
            out.append(cur)
            cur = nxt
            prev_t = r.t
        out.append(cur)
    return out


class BasicAnalyzer:
    name = "basic"
    version = "basic/1"

    def __init__(self, settings: Settings, speech: SpeechService | None = None) -> None:
        self.settings = settings
        self.speech = speech or SpeechService(settings)
        # beside the decoder, OCR leaves it one core; alone, it may use them all
        self.ocr_threads = max(1, (os.cpu_count() or 2) - 1) if settings.overlap else 0

    def analyze(self, job: VideoJob, progress: ProgressFn) -> Analysis:
        s = self.settings
        duration = max(job.info.duration_sec, 0.001)
        cue_notes: list[str] = []
        cues = load_cues(job.path, duration, cue_notes)
        speech = self.speech.start(job.path, cues, should_stop=job.ended.is_set)  # runs beside the decoding below
        reader: TextReader | None = None
        regions = TextRegions()  # reads in time order: only changed text lines are recognised again
        if s.ocr:
            def read(rgb: np.ndarray) -> str:
                return self.read_text(rgb, regions)

            reader = OcrWorker(read) if s.overlap else InlineOcr(read)
        faces = self._face_worker()
        try:
            decoded = self._decode(job, duration, cues, reader, progress, faces)
            if reader is not None:
                progress(0.95, "reading on-screen text")
            texts = reader.finish() if reader is not None else {}
            found = faces.finish() if faces is not None else None
        except BaseException:
            if reader is not None:
                reader.abandon()
            if faces is not None:
                faces.abandon()
            raise
        scenes = _apply_text(decoded, texts, s.min_scene_seconds)
        transcript = speech.wait(lambda f, msg: progress(0.95 + 0.05 * f, msg))
        busy = {"decode": decoded.decode_s, "scenes": decoded.scenes_s}
        if reader is not None:
            busy["ocr"] = reader.busy
        if faces is not None:
            busy["faces"] = faces.busy
            log.info("faces: %d found on %d frame(s)", len(found or []), faces.frames)
            log.info("OCR: %d text line(s) recognised, %d unchanged line(s) kept from the read before",
                     regions.recognised, regions.reused)
        if getattr(speech, "busy", 0.0):
            busy["speech"] = speech.busy
        for c in cues:
            for sc in scenes:
                if c.start < sc.end and c.end > sc.start:
                    sc.cues.append(c)
        analysis = self._events(job, scenes, cues, decoded.cue_thumbs, transcript)
        analysis.warnings.extend(decoded.warnings)
        analysis.warnings.extend(cue_notes)
        analysis.busy = {k: round(v, 3) for k, v in busy.items()}
        if faces is not None:
            analysis.faces, analysis.faces_model = found, faces.reader.model_id
        if speech.note:
            analysis.notes.append(speech.note)
        return analysis

    def _face_worker(self) -> FaceWorker | None:
        """Faces are read beside the decoding when people are on and the models are installed."""
        s = self.settings
        if not s.faces_on:
            return None
        try:
            return FaceWorker(load_faces(s.people_face_detector))
        except FaceModelError as exc:
            log.warning("faces are not recognised: %s", exc)
            return None

    def _decode(self, job: VideoJob, duration: float, cues: list[Cue], reader: TextReader | None,
                progress: ProgressFn, faces: FaceWorker | None = None) -> _Pass:
        """One pass over the sampled frames: scene cuts, thumbnails, and frames handed to OCR.
        Which frames go to OCR depends on the pictures only, never on what OCR read, so the
        overlapped and the sequential runs read the same frames."""
        s = self.settings
        out = _Pass()
        scenes = out.scenes
        cue_thumb_t = [(c.start + c.end) / 2 for c in cues]
        next_cue = 0
        prev_hist: np.ndarray | None = None
        prev_sig: np.ndarray | None = None
        read_sig: np.ndarray | None = None
        read_t = -1e9
        pending: Sample | None = None  # a new scene's first frame, read if the scene ends before it settles
        face_t = -1e9  # when the current scene was last read for faces
        last_t = 0.0
        n = 0

        def submit(sample: Sample, scene_no: int, thumb: bool) -> None:
            nonlocal read_sig, read_t
            sig = sample.luma()
            read_t = sample.t
            if read_sig is not None and out.reads and changed_fraction(sig, read_sig) < SAME_PICTURE:
                out.reads.append(_Read(sample.t, scene_no, out.reads[-1].key))  # nothing new to read
                return
            read_sig = sig
            key = len(out.reads)
            rgb = _ocr_rgb(sample)
            out.reads.append(_Read(sample.t, scene_no, key, jpeg_bytes(rgb, THUMB_WIDTH) if thumb else None))
            assert reader is not None
            reader.submit(key, rgb)

        started = time.perf_counter()
        try:
            for sample in _timed(iter_samples(job.path, s.scene_fps, mode=s.decoder), out):
                n += 1
                t = sample.t
                last_t = t
                hist = _hist(sample.tiny(32, 18))
                sig = sample.luma()
                out.changes.append((t, changed_fraction(sig, prev_sig) if prev_sig is not None else 0.0))
                prev_sig = sig
                cut = prev_hist is None or float(np.abs(hist - prev_hist).sum()) / 2 > s.scene_threshold
                cur = scenes[-1] if scenes else None
                too_long = cur is not None and t - cur.start >= MAX_SCENE_SECONDS
                if cut and cur is not None and t - cur.start < s.min_scene_seconds:
                    cut = False  # flash or flicker: keep the scene
                if cut or too_long or cur is None:
                    if cur is not None:
                        cur.end = t
                        if reader is not None and pending is not None:
                            submit(pending, len(scenes) - 1, False)
                    scenes.append(_Scene(start=t))
                    cur = scenes[-1]
                    pending = sample
                    face_t = -1e9
                prev_hist = hist
                # the thumbnail: the scene's first frame, replaced once by one ~0.5 s in
                if cur.thumb is None or (not cur.settled and t - cur.start >= 0.5):
                    cur.settled = t - cur.start >= 0.5
                    self._keep_frame(cur, sample)
                    if cur.settled:
                        pending = None
                        if reader is not None:
                            submit(sample, len(scenes) - 1, False)
                elif reader is not None and cur.settled and t - read_t >= s.ocr_interval:
                    submit(sample, len(scenes) - 1, True)  # a long scene: has its text changed?
                if faces is not None and cur.settled and t - face_t >= s.people_face_interval:
                    face_t = t  # the scene's settled first frame, then every VIDX_PEOPLE_FACE_INTERVAL seconds
                    w, h = sample.frame.width, sample.frame.height
                    fw = min(FACE_WIDTH, w)
                    faces.submit(t, sample.rgb(fw, max(2, int(h * fw / w) // 2 * 2)))
                while next_cue < len(cue_thumb_t) and cue_thumb_t[next_cue] <= t + 0.5 / s.scene_fps:
                    out.cue_thumbs[next_cue] = jpeg_bytes(sample.rgb(), THUMB_WIDTH)
                    next_cue += 1
                if n % 20 == 0:
                    progress(min(0.95, t / duration) * 0.95, f"{format_ts(t)} decoded")
            if reader is not None and pending is not None and scenes:
                submit(pending, len(scenes) - 1, False)
        except Exception as exc:  # a decode error (Cancelled is a BaseException and passes through)
            if not scenes:
                raise AnalysisError(f"decoding failed: {exc}") from exc
            out.warnings.append(f"decoding stopped at {format_ts(last_t)} ({last_t:.1f}s of {duration:.1f}s): "
                                f"{exc}; the video is indexed up to {last_t:.1f}s")
        inline_ocr = reader.busy if isinstance(reader, InlineOcr) else 0.0  # counted as OCR, not here
        out.scenes_s = time.perf_counter() - started - out.decode_s - inline_ocr
        if not scenes:
            raise AnalysisError("no frames could be decoded")
        step = 1.0 / s.scene_fps
        if not out.warnings and last_t + max(2.0, 2 * step) < duration:
            # the decoder ended quietly long before the duration the container announces: truncated file
            out.warnings.append(f"the video ends early: decoding stopped at {format_ts(last_t)} ({last_t:.1f}s of "
                                f"{duration:.1f}s; truncated file?); the video is indexed up to {last_t:.1f}s")
        scenes[-1].end = last_t + step if out.warnings else max(duration, last_t + step)
        return out

    def read_text(self, rgb: np.ndarray, regions: TextRegions | None = None) -> str:
        return OcrEngine.read(rgb, self.ocr_threads, regions)

    def _keep_frame(self, scene: _Scene, sample: Sample) -> None:
        big = sample.rgb()
        scene.thumb = jpeg_bytes(big, THUMB_WIDTH)
        scene.look = describe_colour(big)

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
                desc += f" On-screen text: {' '.join(sc.ocr_text.split())}."
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
        return Analysis(events=events, thumbnails=thumbs, voices=transcript.speakers if transcript else None,
                        turns=speaker_turns(transcript, spoken))
