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
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("ingest.analyzers.ocr")

MIN_SCORE = 0.6
OCR_WIDTH = 960  # frames are read at this width: larger ones shrink, smaller ones grow (small text)
DET_SIDE = 640  # text is *found* on a frame scaled to this; lines are read from the 960 px frame


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
    def read(cls, rgb: np.ndarray, threads: int = 0) -> str:
        with cls._lock:
            if cls._failed:
                return ""
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
                    return ""
            try:
                out = engine(rgb)
            except Exception as exc:  # pragma: no cover
                log.warning("OCR failed on a frame: %s", exc)
                return ""
        txts = getattr(out, "txts", None) or ()
        scores = getattr(out, "scores", None) or ()
        good = [t.strip() for t, s in zip(txts, scores) if s >= MIN_SCORE and t.strip()]
        return " ".join(good)[:2000]


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
