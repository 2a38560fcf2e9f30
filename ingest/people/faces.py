"""Faces on sampled frames: dlib's HOG detector (or its CNN detector), the 5-point landmark
model and the ResNet face descriptor (128-d; two photos of one person are usually within 0.45,
of two people beyond 0.6). The models come from the ``face-recognition-models`` package (CC0;
the 68-point model it also holds is not used) and ``dlib-bin`` (prebuilt dlib).

Frames are sampled by the analyzer's decoding pass (a scene's settled first frame, then every
``VIDX_PEOPLE_FACE_INTERVAL`` seconds) and read in a worker thread beside the decoding, as OCR
is. Each face keeps a small JPEG crop (the person's thumbnail).
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger("ingest.people.faces")

FACE_WIDTH = 640  # frames are read at this width (a face of ~40 px is still found)
MIN_SCORE = 0.5  # HOG scores: faces 1.0-1.6, false hits (patches, textures) below 0.15 (bench/people_bench.py)
MIN_FACE_PX = 36
THUMB_PX = 112
INSTALL_HINT = "pip install dlib-bin face-recognition-models (vidx's Makefile installs both)"


class FaceModelError(RuntimeError):
    """The face models are not installed or cannot be loaded."""


@dataclass
class Face:
    t: float  # seconds into the video
    box: tuple[int, int, int, int]  # left, top, right, bottom in the original frame's pixels
    score: float
    descriptor: np.ndarray  # float32, 128
    thumb: bytes  # JPEG crop


class FaceReader(Protocol):
    model_id: str

    def faces(self, rgb: np.ndarray, t: float) -> list[Face]: ...


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(f"the face models are not installed ({INSTALL_HINT})")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _crop_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int]) -> bytes:
    from PIL import Image

    from vidx.media import jpeg_bytes

    left, top, right, bottom = box
    pad = int(0.25 * (right - left))
    h, w = rgb.shape[:2]
    crop = rgb[max(0, top - pad): min(h, bottom + pad), max(0, left - pad): min(w, right + pad)]
    if crop.size == 0:
        return b""
    im = Image.fromarray(crop).resize((THUMB_PX, THUMB_PX))
    return jpeg_bytes(np.asarray(im), THUMB_PX)


class DlibFaces:
    """Thread-safe (one frame at a time)."""

    def __init__(self, detector: str = "hog") -> None:
        try:
            import dlib
        except ImportError as exc:
            raise FaceModelError(f"dlib is not installed ({INSTALL_HINT})") from exc
        m = models_dir()
        try:
            if detector == "cnn":
                self._cnn = dlib.cnn_face_detection_model_v1(str(m / "mmod_human_face_detector.dat"))
                self._hog = None
            else:
                self._hog = dlib.get_frontal_face_detector()
                self._cnn = None
            self._shape = dlib.shape_predictor(str(m / "shape_predictor_5_face_landmarks.dat"))
            self._rec = dlib.face_recognition_model_v1(str(m / "dlib_face_recognition_resnet_model_v1.dat"))
        except RuntimeError as exc:
            raise FaceModelError(f"cannot load the face models from {m}: {exc}") from exc
        self.model_id = f"dlib-{detector}-5pt-resnet"
        self._lock = threading.Lock()

    def faces(self, rgb: np.ndarray, t: float) -> list[Face]:
        rgb = np.ascontiguousarray(rgb)
        out: list[Face] = []
        with self._lock:
            if self._hog is not None:
                dets, scores, _ = self._hog.run(rgb, 1, 0.0)
                found = [(d, float(s)) for d, s in zip(dets, scores)]
            else:
                found = [(d.rect, float(d.confidence)) for d in self._cnn(rgb, 1)]
            for d, s in found:
                if s < MIN_SCORE or d.width() < MIN_FACE_PX:
                    continue
                shape = self._shape(rgb, d)
                desc = np.asarray(self._rec.compute_face_descriptor(rgb, shape), dtype=np.float32)
                box = (max(0, d.left()), max(0, d.top()), d.right(), d.bottom())
                out.append(Face(t=t, box=box, score=round(s, 3), descriptor=desc, thumb=_crop_jpeg(rgb, box)))
        return out


_cached: dict[str, DlibFaces] = {}
_cached_lock = threading.Lock()


def load_faces(detector: str = "hog") -> DlibFaces:
    with _cached_lock:
        if detector not in _cached:
            _cached[detector] = DlibFaces(detector)
            log.info("face models: %s", _cached[detector].model_id)
        return _cached[detector]


class FaceWorker:
    """Reads faces off the decoding thread; ``finish()`` gives every face found."""

    def __init__(self, reader: FaceReader, max_queue: int = 8) -> None:
        self.reader = reader
        self._q: queue.Queue[tuple[float, np.ndarray] | None] = queue.Queue(max_queue)
        self._faces: list[Face] = []
        self._error: BaseException | None = None
        self.busy = 0.0
        self.frames = 0
        self._abandoned = False
        self._t = threading.Thread(target=self._run, name="faces", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None or self._abandoned:
                return
            t0 = time.perf_counter()
            try:
                self._faces.extend(self.reader.faces(item[1], item[0]))
            except Exception as exc:  # noqa: BLE001 (faces never fail a video)
                self._error = exc
            self.busy += time.perf_counter() - t0
            self.frames += 1

    def submit(self, t: float, rgb: np.ndarray) -> None:
        self._q.put((t, rgb))

    def finish(self) -> list[Face]:
        self._q.put(None)
        self._t.join()
        if self._error is not None:
            log.warning("some frames were not read for faces: %s", self._error)
        return sorted(self._faces, key=lambda f: f.t)

    def abandon(self) -> None:
        self._abandoned = True
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
