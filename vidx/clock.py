"""One media clock: stream timestamps <-> seconds from the start of the video.

Containers such as MPEG-TS and M2TS start their streams at a non-zero time (the muxer
delay, 1.4 s by default in ffmpeg's MPEG-TS muxer, or the broadcast clock). Every part of
vidx that turns a frame into a time, or a time into a seek (sampling, scene cuts, VLM
windows, thumbnails, clips), goes through :class:`StreamClock`, so a time on an event is
the time a player shows for that picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

DEFAULT_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class StreamClock:
    time_base: Fraction
    start: float  # seconds: the stream's first timestamp

    @classmethod
    def of(cls, stream: Any, container: Any = None) -> StreamClock:
        tb = stream.time_base or DEFAULT_TIME_BASE
        if stream.start_time is not None and stream.time_base:
            start = float(stream.start_time * stream.time_base)
        elif container is not None and getattr(container, "start_time", None) is not None:
            start = container.start_time / 1_000_000
        else:
            start = 0.0
        return cls(Fraction(tb), start)

    def seconds(self, frame_time: float | None) -> float | None:
        """Seconds from the start of the video for a decoded frame's ``frame.time``."""
        return None if frame_time is None else frame_time - self.start

    def pts(self, seconds: float) -> int:
        """The stream timestamp of ``seconds`` from the start of the video."""
        return max(0, int((seconds + self.start) / self.time_base))

    def seek(self, container: Any, stream: Any, seconds: float) -> None:
        """Seek so that the next decoded frame is at or before ``seconds`` (video time).

        Demuxers do not all honour "backward": MPEG-TS seeks by byte position and can land
        on the keyframe *after* the target. The first frame after the seek is checked, and
        the seek repeated from further back (1, 2, 4... seconds) until it is not too late."""
        if seconds <= 0:
            container.seek(0)
            return
        margin = 0.0
        while True:
            target = seconds - margin
            if target <= 0:
                container.seek(0)
                return
            container.seek(self.pts(target), stream=stream, backward=True, any_frame=False)
            first = next(iter(container.decode(stream)), None)
            ft = self.seconds(first.time) if first is not None else None
            if ft is None or ft <= seconds + 1e-3:
                container.seek(self.pts(target), stream=stream, backward=True, any_frame=False)
                return
            margin = 1.0 if margin == 0 else margin * 2
