"""Video file facts and small media jobs (probe, JPEG, browser clips) with PyAV."""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("vidx.media")

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}
)
# containers and codecs that every current browser plays in <video>
_PLAYABLE = {
    ("mp4", "h264"),
    ("mp4", "av1"),
    ("mp4", "vp9"),
    ("webm", "vp8"),
    ("webm", "vp9"),
    ("webm", "av1"),
}
_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/mp4", ".webm": "video/webm"}


class ProbeError(Exception):
    """The file is not a readable video. ``not_ready`` means it may still be copying."""

    def __init__(self, message: str, not_ready: bool = False) -> None:
        super().__init__(message)
        self.not_ready = not_ready


@dataclass(frozen=True)
class VideoInfo:
    duration_sec: float
    fps: float
    frames: int
    width: int
    height: int
    codec: str
    container: str


def open_tolerant(path: Path) -> Any:
    """``av.open`` for reading, tolerant of badly encoded metadata (PyAV < 19 raises on it by
    default; PyAV 19 dropped the ``metadata_errors`` option and never raises)."""
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except TypeError:
        return av.open(str(path))


def probe(path: Path) -> VideoInfo:
    """Open the file and read its first video frame; raise ProbeError with a clear reason."""
    import av

    try:
        with open_tolerant(path) as c:
            vs = next((s for s in c.streams if s.type == "video"), None)
            if vs is None:
                raise ProbeError("the file has no video stream")
            fps = float(vs.average_rate or vs.base_rate or vs.guessed_rate or 0) or 25.0
            duration = 0.0
            if vs.duration is not None and vs.time_base is not None:
                duration = float(vs.duration * vs.time_base)
            elif c.duration is not None:
                # MKV and others give no stream duration: the container's may be a longer soundtrack's
                duration = _picture_end(path, fps) or c.duration / 1_000_000
            got = False
            for frame in c.decode(vs):
                got = frame is not None
                break
            if not got:
                raise ProbeError("no video frame could be decoded")
            frames = int(vs.frames or round(duration * fps))
            fmt = (c.format.name or "").split(",")[0]
            return VideoInfo(duration, fps, frames, vs.codec_context.width, vs.codec_context.height,
                             vs.codec_context.name, fmt)
    except ProbeError:
        raise
    except av.error.InvalidDataError as exc:
        raise ProbeError(what_is_wrong(path), not_ready=True) from exc
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{what_is_wrong(path)} ({plain_error(exc)})", not_ready=True) from exc
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot read the file: {plain_error(exc)}") from exc


def _picture_end(path: Path, fps: float) -> float:
    """The end of the last video frame, from the packets near the end of the file (a seek and a
    few packets, not a decode): the picture's length when the container states only its own."""
    from vidx.clock import StreamClock

    try:
        with open_tolerant(path) as c:
            vs = c.streams.video[0]
            if vs.time_base is None:
                return 0.0
            start = StreamClock.of(vs, c).start
            total = (c.duration or 0) / 1_000_000
            c.seek(max(0, int((total - 30) * 1_000_000)))  # ~30 s before the container's end
            end = 0.0
            for packet in c.demux(vs):
                if packet.pts is None:
                    continue
                dur = float((packet.duration or 0) * vs.time_base) or (1.0 / fps if fps else 0.0)
                end = max(end, float(packet.pts * vs.time_base) - start + dur)
            return round(end, 3)
    except Exception as exc:  # any doubt: the container's duration stands
        log.debug("no picture end for %s: %s", path.name, exc)
        return 0.0


_MAGIC = [(b"\xff\xd8\xff", "an image (JPEG)"), (b"\x89PNG", "an image (PNG)"), (b"GIF8", "an image (GIF)"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or an office document)"),
          (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
          (b"ID3", "an audio file (MP3)"), (b"fLaC", "an audio file (FLAC)"), (b"OggS", "an Ogg file without video")]


def what_is_wrong(path: Path) -> str:
    """Why FFmpeg cannot read a file, in words a person can act on (no path, no error number)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return f"cannot read the file: {plain_error(exc)}"
    if size == 0:
        return "the file is empty (0 bytes): it may still be copying, or the copy failed"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return f"this is not a video: it looks like {kind}"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "this is not a video: it looks like text"
        except UnicodeDecodeError:
            pass
    return "not a video FFmpeg can read: the file is damaged, incomplete (still copying?) or in an unknown format"


def plain_error(exc: BaseException) -> str:
    """An OS or FFmpeg error without its errno and file path (they mean nothing to a reader and
    leak the server's folders)."""
    msg = getattr(exc, "strerror", None) or str(exc)
    msg = re.sub(r"^\[Errno -?\d+\]\s*", "", str(msg))
    msg = re.sub(r":\s*'[^']*'\s*$", "", msg)
    return msg.strip() or type(exc).__name__


@lru_cache(maxsize=1024)
def _playable(path: str, mtime_ns: int) -> bool:
    try:
        info = probe(Path(path))
    except ProbeError:
        return False
    ext = Path(path).suffix.lower()
    container = "webm" if ext == ".webm" else ("mp4" if ext in {".mp4", ".m4v", ".mov"} else info.container)
    if container in {"mov", "m4a", "3gp", "3g2", "mj2"}:
        container = "mp4"
    return (container, info.codec) in _PLAYABLE


def browser_playable(path: Path) -> bool:
    """Can a browser play the source file directly (so it can be streamed with Range)?"""
    try:
        st = path.stat()
    except OSError:
        return False
    return _playable(str(path), st.st_mtime_ns)


def mime_for(path: Path) -> str:
    return _MIME.get(path.suffix.lower(), "video/mp4")


def jpeg_bytes(rgb: np.ndarray, max_width: int = 320, quality: int = 80) -> bytes:
    from PIL import Image

    img = Image.fromarray(rgb)
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def frame_at(path: Path, t: float, width: int | None = 320) -> np.ndarray | None:
    """The RGB frame shown at ``t`` seconds of video time (seek to the keyframe before, decode forward)."""
    import av

    from vidx.clock import StreamClock

    try:
        with open_tolerant(path) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            clock = StreamClock.of(vs, c)
            clock.seek(c, vs, t)
            last = None
            for frame in c.decode(vs):
                ft = clock.seconds(frame.time)
                if ft is not None and ft > t + 1e-3 and last is not None:
                    break
                last = frame
                if ft is not None and ft >= t:
                    break
            if last is None:
                return None
            h = None
            if width and last.width > width:
                h = max(2, round(last.height * width / last.width / 2) * 2)
            else:
                width = None
            return last.to_ndarray(format="rgb24", width=width, height=h)
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        log.warning("no frame at %.2fs in %s: %s", t, path.name, exc)
        return None


AUDIO_RATE = 48_000
CLIP_PAD_S = 0.6  # a clip plays on this long after its event: the last word is never cut
CLIP_VERSION = 2  # in cached clips' names: clips made before a fix are made again


def clip_name(event_id: str) -> str:
    return f"{event_id}.v{CLIP_VERSION}.mp4"


def make_clip(src: Path, start: float, end: float, dest: Path, max_width: int = 854) -> Path:
    """Re-encode [start, end] (video time) of ``src`` to an H.264/AAC MP4 a browser can play,
    with its audio. The clip's own time starts at 0 at the event's first frame; the sound is
    placed on the picture's clock (a soundtrack that starts later than the picture is heard
    at its own second, not at the clip's start). Callers pass the end with ``CLIP_PAD_S``
    added. Cached at ``dest``; written to a temporary name first, so a reader never sees half
    a clip."""
    import av

    from vidx.clock import StreamClock

    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=dest.parent, prefix=".part-")
    os.close(fd)
    try:
        with open_tolerant(src) as inp, av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            vs = inp.streams.video[0]
            vs.thread_type = "AUTO"
            vclock = StreamClock.of(vs, inp)
            a_in = next((s for s in inp.streams if s.type == "audio"), None)
            # one media clock: audio times count from the picture's start, like every event time
            aclock = StreamClock(a_in.time_base or vclock.time_base, vclock.start) if a_in is not None else None
            rate = vs.average_rate or Fraction(25, 1)
            w, h = vs.codec_context.width, vs.codec_context.height
            if w > max_width:
                h = int(h * max_width / w)
                w = max_width
            w, h = w - w % 2, h - h % 2
            ov = out.add_stream("libx264", rate=rate)
            ov.width, ov.height, ov.pix_fmt = w, h, "yuv420p"
            ov.options = {"preset": "veryfast", "crf": "26"}
            oa = None
            resampler = None
            if a_in is not None:
                oa = out.add_stream("aac", rate=AUDIO_RATE)
                oa.layout = "stereo"
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
            vclock.seek(inp, vs, start)
            n, samples = 0, 0
            video_done, audio_done = False, a_in is None
            streams = [vs] + ([a_in] if a_in is not None else [])
            for packet in inp.demux(*streams):
                if video_done and audio_done:
                    break
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # one damaged packet: skip it, keep the clip
                for frame in frames:
                    if packet.stream.type == "video":
                        t = vclock.seconds(frame.time)
                        if t is None or t < start - 1e-3 or video_done:
                            continue
                        if t > end:
                            video_done = True
                            continue
                        f = frame.reformat(width=w, height=h, format="yuv420p")
                        f.pts, f.time_base = n, Fraction(1, 1) / rate
                        for pkt in ov.encode(f):
                            out.mux(pkt)
                        n += 1
                    elif oa is not None and resampler is not None and aclock is not None:
                        t = aclock.seconds(frame.time)
                        if t is None or t < start - 1e-3 or audio_done:
                            continue
                        if t > end:
                            audio_done = True
                            continue
                        if samples == 0:  # the sound starts later than the clip: silence before it
                            samples = max(0, int(round((t - start) * AUDIO_RATE)))
                        for rf in resampler.resample(frame):
                            rf.pts, rf.time_base = samples, Fraction(1, AUDIO_RATE)
                            samples += rf.samples
                            for pkt in oa.encode(rf):
                                out.mux(pkt)
            for pkt in ov.encode():
                out.mux(pkt)
            if oa is not None:
                for pkt in oa.encode():
                    out.mux(pkt)
        if n == 0:
            raise ProbeError(f"no frames between {start:.2f}s and {end:.2f}s")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
