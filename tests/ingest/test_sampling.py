"""The sampler gives the same frames at the same times (±1 frame) with every decoding mode it
can use: constant and variable frame rate, B-frames, and a stream that starts late."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ingest.sampling import iter_samples, nonref_is_exact


def _encode(path: Path, times: list[float], size: tuple[int, int] = (192, 108), fmt: str | None = None,
            x264: str = "", start: float = 0.0) -> Path:
    """Frames shown at ``times`` (seconds); each frame's picture encodes its own number, so a
    test can tell which frame it got. x264 with B-frames unless ``x264`` says otherwise."""
    import av

    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.codec_context.time_base = Fraction(1, 1000)
        st.options = {"preset": "veryfast", **({"x264-params": x264} if x264 else {})}
        for n, t in enumerate(times):
            arr = np.full((h, w, 3), 30, np.uint8)
            x = (n * 7) % (w - 24)
            arr[h // 3: h // 3 + 24, x: x + 24] = (240, 240, 240)  # moves: frames differ
            arr[:8, :] = (n % 256, (n * 37) % 256, 128)  # a stripe that says which frame this is
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = int(round((t + start) * 1000))
            frame.time_base = Fraction(1, 1000)
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def _sampled(path: Path, fps: float, mode: str, start: float = 0.0, end: float | None = None) -> list[float]:
    return [s.t for s in iter_samples(path, fps, start=start, end=end, mode=mode)]  # type: ignore[arg-type]


def _all_times(path: Path) -> list[float]:
    return _sampled(path, 1000.0, "every")


def _within_one_frame(a: list[float], b: list[float], frames: list[float]) -> None:
    assert len(a) == len(b), (a, b)
    pos = {round(t, 3): i for i, t in enumerate(frames)}
    for x, y in zip(a, b):
        assert abs(pos[round(x, 3)] - pos[round(y, 3)]) <= 1, (x, y)


CFR = [n / 25 for n in range(250)]  # 10 s at 25 fps
# variable frame rate: stretches at 25, 12.5 and 50 frames per second
VFR = [*(n / 25 for n in range(75)), *(3 + n / 12.5 for n in range(38)), *(6.04 + n / 50 for n in range(150))]


@pytest.mark.parametrize("times", [CFR, VFR], ids=["cfr", "vfr"])
def test_every_decoder_samples_the_same_frames(tmp_path: Path, times: list[float]) -> None:
    path = _encode(tmp_path / "v.mp4", times)
    frames = _all_times(path)
    assert len(frames) == len(times)
    assert nonref_is_exact(path)  # x264's default B-frame pyramid: never two frames skipped in a row
    assert len(_sampled(path, 1000.0, "nonref")) < 0.8 * len(frames)  # it does skip frames
    every = _sampled(path, 4.0, "every")
    nonref = _sampled(path, 4.0, "nonref")
    assert len(every) >= 4 * (times[-1] - 0.5)
    _within_one_frame(every, nonref, frames)
    assert _sampled(path, 4.0, "auto") == nonref
    # a window in the middle, as the VLM asks for, agrees as well
    _within_one_frame(_sampled(path, 2.0, "every", 4.0, 8.0), _sampled(path, 2.0, "nonref", 4.0, 8.0), frames)


def test_a_stream_that_starts_late_is_sampled_on_the_video_clock(tmp_path: Path) -> None:
    path = _encode(tmp_path / "v.ts", CFR, fmt="mpegts", start=1.4)
    frames = _all_times(path)
    assert frames[0] == pytest.approx(0.0, abs=0.05)  # times are from the start of the video
    every, nonref = _sampled(path, 4.0, "every"), _sampled(path, 4.0, "nonref")
    _within_one_frame(every, nonref, frames)
    late = _sampled(path, 2.0, "nonref", 5.0, 7.0)
    assert late[0] == pytest.approx(5.0, abs=0.05) and late[-1] <= 7.0


def test_auto_decodes_every_frame_when_skipping_would_leave_gaps(tmp_path: Path) -> None:
    """Three B-frames in a row that nothing refers to (no pyramid): skipping them could move a
    sample by up to three frames, so auto decodes every frame."""
    path = _encode(tmp_path / "v.mp4", CFR, x264="bframes=3:b-pyramid=none:b-adapt=0")
    assert not nonref_is_exact(path)
    assert _sampled(path, 4.0, "auto") == _sampled(path, 4.0, "every")


def test_nonref_probe_handles_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 500)
    assert nonref_is_exact(bad) is False
