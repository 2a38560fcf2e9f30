"""Frame sampling with exact timestamps: the only place where time comes from.

Times are the decoded frames' presentation times on the one media clock
(:mod:`vidx.clock`: seconds from the start of the video), and indices are source frame indices (time x source fps), which is what
Qwen3-VL's ``<t seconds>`` markers are computed from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vidx.media import open_tolerant

log = logging.getLogger("ingest.sampling")


@dataclass
class Sample:
    t: float  # seconds from the start of the video
    index: int  # source frame index
    frame: Any  # av.VideoFrame

    def rgb(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        return self.frame.to_ndarray(format="rgb24", width=width, height=height)

    def tiny(self, width: int = 32, height: int = 18) -> np.ndarray:
        """A tiny RGB picture for scene-cut histograms, sampled straight from the decoded
        8-bit YUV planes (no full-frame conversion: ~30x cheaper than swscale at 720p)."""
        return tiny_rgb(self.frame, width, height)

    def luma(self, width: int = 128, height: int = 72) -> np.ndarray:
        """Brightness at a grid of points, straight from the Y plane: a cheap signature that
        changes when text or layout changes (see :func:`changed_fraction`)."""
        return luma_points(self.frame, width, height)


_FULL_RANGE = {"yuvj420p"}


def tiny_rgb(frame: Any, w: int = 32, h: int = 18) -> np.ndarray:
    fmt = frame.format.name
    if fmt not in ("yuv420p", "yuvj420p") or frame.height < h or frame.width < w:
        return np.asarray(frame.to_ndarray(format="rgb24", width=w, height=h))
    H, W = frame.height, frame.width
    ys = np.arange(h) * H // h + H // (2 * h)
    xs = np.arange(w) * W // w + W // (2 * w)
    p0, p1, p2 = frame.planes
    y = np.frombuffer(p0, np.uint8).reshape(-1, p0.line_size)[ys][:, xs].astype(np.float32)
    u = np.frombuffer(p1, np.uint8).reshape(-1, p1.line_size)[ys // 2][:, xs // 2].astype(np.float32) - 128
    v = np.frombuffer(p2, np.uint8).reshape(-1, p2.line_size)[ys // 2][:, xs // 2].astype(np.float32) - 128
    if fmt not in _FULL_RANGE:  # limited ("TV") range
        y = (y - 16) * 1.164
        u *= 1.138
        v *= 1.138
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def luma_points(frame: Any, w: int = 128, h: int = 72) -> np.ndarray:
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12") or frame.height < h or frame.width < w:
        return np.asarray(frame.to_ndarray(format="gray", width=w, height=h), dtype=np.uint8)
    ys = np.arange(h) * frame.height // h + frame.height // (2 * h)
    xs = np.arange(w) * frame.width // w + frame.width // (2 * w)
    p0 = frame.planes[0]
    return np.frombuffer(p0, np.uint8).reshape(-1, p0.line_size)[ys][:, xs].copy()


def changed_fraction(a: np.ndarray, b: np.ndarray, level: int = 24) -> float:
    """Share of signature points whose brightness moved by more than ``level``."""
    return float(np.count_nonzero(np.abs(a.astype(np.int16) - b.astype(np.int16)) > level)) / a.size


def fit_size(w: int, h: int, max_pixels: int, multiple: int = 2) -> tuple[int, int]:
    """Scale (w, h) down to at most ``max_pixels``, keeping aspect, rounded to ``multiple``."""
    scale = min(1.0, (max_pixels / max(1, w * h)) ** 0.5)
    nw = max(multiple, int(w * scale) // multiple * multiple)
    nh = max(multiple, int(h * scale) // multiple * multiple)
    return nw, nh


DecodeMode = Literal["auto", "every", "nonref"]


def nonref_is_exact(path: Path, probe_seconds: float = 4.0) -> bool:
    """Whether skipping non-reference frames keeps every sample within one frame of its time.

    Most encoders put B-frames that nothing refers to between reference frames; the decoder
    can skip them (``skip_frame="NONREF"``: about 3x faster at 720p). That is exact in time
    (each frame keeps its own timestamp) but leaves gaps; they are measured on the first
    seconds of the file: at most one missing frame in a row keeps sampling within ±1 frame."""
    import av

    def shown() -> list[float]:
        """Every frame's time in the first seconds, from the packets alone (no decoding)."""
        out: list[float] = []
        with open_tolerant(path) as c:
            vs = c.streams.video[0]
            tb = vs.time_base
            for pkt in c.demux(vs):
                if pkt.pts is None or tb is None:
                    continue
                out.append(round(float(pkt.pts * tb), 6))
                if len(out) > 8 and out[-1] - min(out) > probe_seconds + 1:
                    break
        out.sort()
        return [t for t in out if t - out[0] <= probe_seconds] if out else out

    def decoded() -> list[float]:
        out: list[float] = []
        with open_tolerant(path) as c:
            vs = c.streams.video[0]
            vs.codec_context.skip_frame = "NONREF"
            vs.thread_count = 1
            first = None
            for frame in c.decode(vs):
                if frame.time is None:
                    continue
                first = frame.time if first is None else first
                if frame.time - first > probe_seconds:
                    break
                out.append(round(float(frame.time), 6))
        return out

    try:
        every = shown()
        kept = set(decoded())
    except (av.error.FFmpegError, OSError, IndexError, StopIteration):
        return False
    if len(every) < 3 or not kept or not kept <= set(every):
        return False
    run = longest = 0
    for t in every[:-1]:  # the probe's end is cut arbitrarily: ignore its last frame
        run = 0 if t in kept else run + 1
        longest = max(longest, run)
    return longest <= 1


def iter_samples(
    path: Path, fps: float, start: float = 0.0, end: float | None = None, mode: DecodeMode = "auto"
) -> Iterator[Sample]:
    """Yield about ``fps`` frames per second between ``start`` and ``end`` (seconds): for each
    step of the grid, the first decoded frame at or after it, with that frame's own time.

    ``mode``: ``every`` decodes every frame (threaded); ``nonref`` skips frames that no other
    frame refers to, in one thread (the fastest exact decoder measured, bench/decoders.py);
    ``auto`` uses ``nonref`` when :func:`nonref_is_exact` says the file allows it."""

    from vidx.clock import StreamClock

    if mode == "auto":
        mode = "nonref" if nonref_is_exact(path) else "every"
    with open_tolerant(path) as c:
        vs = c.streams.video[0]
        if mode == "nonref":
            vs.codec_context.skip_frame = "NONREF"
            vs.thread_count = 1  # frame threads only slow a decoder that skips half its frames
        else:
            vs.thread_type = "AUTO"
        src_fps = float(vs.average_rate or vs.guessed_rate or 25)
        clock = StreamClock.of(vs, c)
        if start > 0:
            clock.seek(c, vs, start)
        step = 1.0 / fps
        next_t = start
        for frame in c.decode(vs):
            t = clock.seconds(frame.time)
            if t is None:
                continue
            if t < next_t - 1e-6:
                continue
            if end is not None and t > end + 1e-6:
                break
            yield Sample(t=round(t, 4), index=int(round(t * src_fps)), frame=frame)
            while next_t <= t + 1e-6:
                next_t += step


def source_fps(path: Path) -> float:

    with open_tolerant(path) as c:
        vs = c.streams.video[0]
        return float(vs.average_rate or vs.guessed_rate or 25)
