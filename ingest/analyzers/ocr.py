"""On-screen text: the RapidOCR engine and the two ways to feed it.

:class:`OcrWorker` reads frames on its own thread behind a bounded queue, so OCR runs beside
decoding while memory stays flat (the decoder waits when the queue is full); :class:`InlineOcr`
reads each frame at once, in the caller's thread (the sequential baseline). Both give the same
answers for the same frames: which frames are read never depends on what was read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("ingest.analyzers.ocr")

MIN_SCORE = 0.6
OCR_WIDTH = 960  # frames are read at this width: larger ones shrink, smaller ones grow (small text)
OCR_MAX_GROWTH = 3  # ... by 3 times at most (a 320 px video is read at 960)
DET_SIDE = 640  # text is *found* on a frame scaled to this; lines are read from the 960 px frame


# a text line is unchanged when fewer of its pixels than this share (and 12 at least) differ
# by more than STRONG_DIFF grey levels: compression noise stays below, one changed digit not
STRONG_DIFF = 48
CHANGED_SHARE = 0.002
SAME_BOX_IOU = 0.8


@dataclass
class _Line:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame that was read
    grey: np.ndarray  # the line's pixels, grey
    text: str
    score: float


@dataclass
class TextRegions:
    """What the last read of one video found, line by line: the next read recognises only
    the lines whose pixels changed (a burned-in clock), and none for a picture that changed
    where there is no text (a moving object, a noisy camera window beside a slide)."""

    lines: list[_Line] = field(default_factory=list)
    recognised: int = 0  # lines recognised
    reused: int = 0  # lines whose earlier reading was kept


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _same_pixels(old: np.ndarray, new: np.ndarray) -> bool:
    if old.shape != new.shape:
        return False
    strong = int(np.count_nonzero(np.abs(old.astype(np.int16) - new.astype(np.int16)) > STRONG_DIFF))
    return strong < max(12, CHANGED_SHARE * old.size)


class OcrEngine:
    """RapidOCR, loaded on first use (one engine per thread count per process); a failure
    disables OCR with one warning.

    Detection works on at most DET_SIDE pixels (its default scales a 720p frame *up* to
    1308 px) and the angle classifier is off (video text is upright): about half the CPU
    time of the defaults at 720p for the same text (bench/README.md). ``threads``: 0 lets
    onnxruntime use every core; OCR beside the decoder uses one core fewer."""

    _lock = threading.Lock()
    _engines: dict[int, Any] = {}
    _failed = False

    @classmethod
    def read(cls, rgb: np.ndarray, threads: int = 0, regions: TextRegions | None = None) -> str:
        """The frame's text. With ``regions`` (one per video, reads in time order), text lines
        are found on every read but recognised only where their pixels changed since the last."""
        with cls._lock:
            engine = cls._engine(threads)
            if engine is None:
                return ""
            try:
                if regions is not None:
                    return cls._read_lines(engine, rgb, regions)
                # RapidOCR remembers the flags of its last call: always name them
                out = engine(rgb, use_det=True, use_cls=False, use_rec=True)
            except Exception as exc:  # pragma: no cover
                log.warning("OCR failed on a frame: %s", exc)
                return ""
        txts = getattr(out, "txts", None) or ()
        scores = getattr(out, "scores", None) or ()
        good = [t.strip() for t, s in zip(txts, scores) if s >= MIN_SCORE and t.strip()]
        return "\n".join(good)[:2000]  # one line each, top to bottom: the first is a slide's title

    @classmethod
    def _read_lines(cls, engine: Any, rgb: np.ndarray, regions: TextRegions) -> str:
        det = engine(rgb, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(det, "boxes", None)
        grey_frame = rgb.mean(axis=2).astype(np.uint8)
        h, w = grey_frame.shape
        lines: list[_Line] = []
        for b in ([] if boxes is None else boxes):
            pts = np.asarray(b)
            x0, y0 = (int(max(0, v)) for v in pts.min(axis=0))
            x1, y1 = int(min(w, pts[:, 0].max() + 1)), int(min(h, pts[:, 1].max() + 1))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            box = (x0, y0, x1, y1)
            grey = grey_frame[y0:y1, x0:x1]
            old = next((ln for ln in regions.lines if _iou(ln.box, box) >= SAME_BOX_IOU
                        and _same_pixels(ln.grey, grey_frame[ln.box[1]:ln.box[3], ln.box[0]:ln.box[2]])), None)
            if old is not None:  # the same line, unchanged: its reading stands
                lines.append(_Line(old.box, old.grey, old.text, old.score))
                regions.reused += 1
                continue
            rec = engine(np.ascontiguousarray(rgb[y0:y1, x0:x1]), use_det=False, use_cls=False, use_rec=True)
            txts = getattr(rec, "txts", None) or ("",)
            scores = getattr(rec, "scores", None) or (0.0,)
            lines.append(_Line(box, grey.copy(), str(txts[0]).strip(), float(scores[0])))
            regions.recognised += 1
        regions.lines = lines
        return "\n".join(ln.text for ln in lines if ln.score >= MIN_SCORE and ln.text)[:2000]

    @classmethod
    def _engine(cls, threads: int) -> Any:
        """The engine for this thread count (call with the lock held); None when OCR is off."""
        if cls._failed:
            return None
        engine = cls._engines.get(threads)
        if engine is None:
            try:
                from rapidocr import RapidOCR

                params: dict[str, Any] = {
                    "Global.log_level": "error", "Global.use_cls": False,
                    "Det.limit_type": "max", "Det.limit_side_len": DET_SIDE,
                }
                if threads:
                    params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
                engine = cls._engines[threads] = RapidOCR(params=params)
            except Exception as exc:  # pragma: no cover - depends on install
                log.warning("OCR disabled: RapidOCR could not start (%s)", exc)
                cls._failed = True
                return None
        return engine


ReadFn = Callable[[np.ndarray], str]


class TextReader(Protocol):
    """Frames in (with a key), texts out by key once :meth:`finish` returns."""

    busy: float  # seconds spent reading

    def submit(self, key: int, rgb: np.ndarray) -> None: ...

    def finish(self) -> dict[int, str]: ...

    def abandon(self) -> None:
        """Stop at once, dropping what is queued (the analysis was cancelled or failed)."""


class InlineOcr:
    def __init__(self, read: ReadFn = OcrEngine.read) -> None:
        self.read = read
        self.texts: dict[int, str] = {}
        self.busy = 0.0

    def submit(self, key: int, rgb: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.texts[key] = self.read(rgb)
        self.busy += time.perf_counter() - t0

    def finish(self) -> dict[int, str]:
        return self.texts

    def abandon(self) -> None:
        pass


class OcrWorker:
    """A thread that reads queued frames; ``queue_size`` frames at most wait (about 1.5 MB each)."""

    _STOP = object()

    def __init__(self, read: ReadFn = OcrEngine.read, queue_size: int = 4) -> None:
        self.read = read
        self.texts: dict[int, str] = {}
        self.error: BaseException | None = None
        self.busy = 0.0
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vidx-ocr", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is self._STOP:
                return
            key, rgb = item
            if self.error is not None:
                continue  # drain: the caller learns of the error in finish()
            t0 = time.perf_counter()
            try:
                self.texts[key] = self.read(rgb)
                self.busy += time.perf_counter() - t0
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self.error = exc

    def submit(self, key: int, rgb: np.ndarray) -> None:
        self._q.put((key, rgb))  # blocks while the queue is full: back-pressure on the decoder

    def finish(self) -> dict[int, str]:
        self.close()
        if self.error is not None:
            raise self.error
        return self.texts

    def close(self) -> None:
        """Stop after the frame being read (pending frames are dropped when the caller gave up)."""
        if self._closed:
            return
        self._closed = True
        self._q.put(self._STOP)
        self._thread.join()

    def abandon(self) -> None:
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass
        self.close()
