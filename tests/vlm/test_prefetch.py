"""One window at a time (the local provider), the next window's frames are decoded while the
model works on the current one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.analyzers.base import VideoJob
from ingest.vlm.analyzer import VlmAnalyzer
from ingest.vlm.base import Clip
from tests.media import make_video
from vidx.config import Settings
from vidx.media import probe


class SlowModel:
    """A provider double at the VlmProvider seam: takes 0.4 s per window, answers one event."""

    name = "qwen3vl"
    model_id = "test/slow"

    def __init__(self) -> None:
        self.busy: list[tuple[float, float, float]] = []  # (window start, began, ended)

    def generate(self, clip: Clip, prompt: str, system: str) -> str:
        began = time.monotonic()
        time.sleep(0.4)
        self.busy.append((clip.start, began, time.monotonic()))
        return json.dumps([{"start": clip.start + 1, "end": clip.start + 2, "description": f"at {clip.start:g}"}])

    def follow_up(self, clip: Clip, prompt: str, system: str, previous: str, message: str) -> str:
        raise AssertionError("not expected")


def test_next_windows_frames_are_decoded_while_the_model_works(
        tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    video = make_video(tmp_path / "v.mp4", [(10.0, (200, 30, 30)), (10.0, (30, 160, 40)), (10.0, (30, 50, 200))],
                       fps=4, size=(96, 64))
    s = make_settings(analyzer="qwen3vl", window_seconds=10, window_overlap=0, vlm_fps=1, vlm_max_pixels=32 * 32,
                      asr="off")
    model = SlowModel()
    analyzer = VlmAnalyzer(s, model)  # type: ignore[arg-type]
    decoded: list[tuple[float, float, str]] = []  # (window start, finished, thread)
    real = analyzer.clip

    def clip(job: VideoJob, w: Any, scale: float = 1.0) -> Any:
        out = real(job, w, scale)
        decoded.append((w.start, time.monotonic(), threading.current_thread().name))
        return out

    analyzer.clip = clip  # type: ignore[method-assign]
    job = VideoJob(video, "v" * 32, "0" * 64, probe(video), "r")
    analysis = analyzer.analyze(job, lambda f, m: None)
    assert sorted(e.description for e in analysis.events if e.source == "vlm") == ["at 0", "at 10", "at 20"]
    busy = {start: (a, b) for start, a, b in model.busy}
    for start, done_at, thread in decoded:
        if start == 0.0:
            continue
        assert thread == "vlm-frames", (start, thread)  # decoded ahead, on the prefetch thread
        prev = busy[start - 10.0]
        assert done_at < prev[1], (start, done_at, prev)  # ready before the model finished the window before
