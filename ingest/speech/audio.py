"""The video's own soundtrack as 16 kHz mono samples on the video's clock (PyAV)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidx.media import open_tolerant

log = logging.getLogger("ingest.speech.audio")

RATE = 16_000


class AudioError(RuntimeError):
    """The audio stream exists but cannot be decoded."""


@dataclass
class Audio:
    samples: np.ndarray  # float32, RATE Hz, sample 0 = second 0 of the video
    language: str  # the stream's language tag, "" when none

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


def pick_stream(streams: list[Any], language: str | None) -> Any:
    """The audio stream in the wanted language, else the default one, else the first."""
    if language:
        for st in streams:
            tag = str(st.metadata.get("language", "") or "").lower()
            if tag and (tag == language.lower() or tag.startswith(language.lower()[:2])):
                return st
    for st in streams:
        if getattr(st, "disposition", None) is not None and "default" in str(st.disposition).lower():
            return st
    return streams[0]


def decode_audio(path: Path, language: str | None = None, max_seconds: float = 6 * 3600) -> Audio | None:
    """None when the file has no audio stream. AudioError when it cannot be decoded at all;
    a stream damaged half-way gives the samples decoded up to there."""
    import av

    from vidx.clock import StreamClock

    try:
        c = open_tolerant(path)
    except av.error.FFmpegError as exc:
        raise AudioError(f"cannot open: {exc}") from exc
    with c:
        streams = [st for st in c.streams if st.type == "audio"]
        if not streams:
            return None
        st = pick_stream(streams, language)
        vs = next((s for s in c.streams if s.type == "video"), None)
        origin = StreamClock.of(vs, c).start if vs is not None else 0.0
        aclock = StreamClock.of(st, c)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        n = 0
        errors = packets = 0
        try:
            for packet in c.demux(st):
                packets += 1
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    errors += 1
                    if errors > 50:
                        raise
                    continue
                for frame in frames:
                    if first_t is None and frame.time is not None:
                        first_t = float(frame.time) - origin
                    for rf in resampler.resample(frame):
                        arr = rf.to_ndarray().reshape(-1).astype(np.float32)
                        chunks.append(arr)
                        n += len(arr)
                if n > max_seconds * RATE:
                    break
            for rf in resampler.resample(None):
                chunks.append(rf.to_ndarray().reshape(-1).astype(np.float32))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioError(f"the audio stream cannot be decoded: {exc}") from exc
            log.warning("audio decoding stopped at %.1fs: %s", n / RATE, exc)
        if errors and (not chunks or errors * 2 >= packets):
            raise AudioError(f"{errors} of {packets} audio packets are damaged")
        if not chunks:
            return None
        samples = np.concatenate(chunks)
        lead = first_t if first_t is not None else aclock.start - origin
        if lead > 0:  # the sound starts after the picture: silence before it
            samples = np.concatenate([np.zeros(int(round(lead * RATE)), dtype=np.float32), samples])
        elif lead < 0:
            samples = samples[int(round(-lead * RATE)):]
        lang = str(st.metadata.get("language", "") or "")
        return Audio(samples=samples, language="" if lang == "und" else lang)
