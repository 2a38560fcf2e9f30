"""OCR beside decoding (VIDX_OVERLAP) gives exactly the events of OCR after each frame, reads
only frames that can hold new text, and stops cleanly mid-video."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.analyzers.base import VideoJob
from ingest.analyzers.basic import BasicAnalyzer
from tests.media import make_lecture
from vidx.config import Settings
from vidx.errors import Cancelled
from vidx.media import probe

SLIDE = 10.0


@pytest.fixture(scope="module")
def lecture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, str]]]:
    path = tmp_path_factory.mktemp("lecture") / "lecture.mp4"
    slides = make_lecture(path, 60.0, slide_seconds=SLIDE, fps=10, size=(640, 360))
    return path, slides


class CountingAnalyzer(BasicAnalyzer):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.reads: list[float] = []

    def read_text(self, rgb: np.ndarray, regions: Any = None) -> str:
        self.reads.append(time.monotonic())
        return super().read_text(rgb, regions)


def _analyze(settings: Settings, path: Path, progress: Callable[[float, str], None] = lambda f, m: None
             ) -> tuple[Any, CountingAnalyzer]:
    a = CountingAnalyzer(settings)
    job = VideoJob(path=path, video_id="v" * 16, sha256="0" * 64, info=probe(path), run_id="r")
    return a.analyze(job, progress), a


def _rows(analysis: Any) -> list[tuple[float, float, str, str, str]]:
    return [(e.start_sec, e.end_sec, e.description, e.ocr_text, e.event_id) for e in analysis.events]


def test_overlapped_ocr_gives_the_events_of_sequential_ocr(
        make_settings: Callable[..., Settings], lecture: tuple[Path, list[tuple[float, str]]]) -> None:
    path, slides = lecture
    overlapped, a1 = _analyze(make_settings(ocr=True, asr="off", overlap=True, people="off"), path)
    sequential, a2 = _analyze(make_settings(ocr=True, asr="off", overlap=False, people="off"), path)
    assert _rows(overlapped) == _rows(sequential)
    # every slide is its own event from the moment it appears, though most share one background
    scenes = [e for e in overlapped.events if e.source == "scene"]
    assert len(scenes) == len(slides)
    for (start, title), ev in zip(slides, scenes):
        assert ev.start_sec == pytest.approx(start, abs=0.3), (title, ev.start_sec)
        assert title.split()[0].lower() in ev.ocr_text.lower(), (title, ev.ocr_text)
    # only frames that can hold new text were read: one per slide, none of the unchanged ones
    # (a frame every VIDX_OCR_INTERVAL=5 s would be 12 reads)
    assert len(a1.reads) == len(slides) == len(a2.reads)
    # the busy seconds of each part, as the pipeline logs them; OCR is counted once, as OCR
    for analysis in (overlapped, sequential):
        assert set(analysis.busy) == {"decode", "scenes", "ocr"}
        assert analysis.busy["scenes"] < analysis.busy["ocr"], analysis.busy


def test_a_cancelled_analysis_stops_its_ocr_thread(
        make_settings: Callable[..., Settings], lecture: tuple[Path, list[tuple[float, str]]]) -> None:
    path, _ = lecture

    def progress(frac: float, msg: str) -> None:
        if frac > 0.3:
            raise Cancelled()

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        _analyze(make_settings(ocr=True, asr="off", overlap=True), path, progress)
    assert time.monotonic() - t0 < 20
    deadline = time.monotonic() + 2
    while any(t.name == "vidx-ocr" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "vidx-ocr"]


def test_an_ocr_failure_reaches_the_caller(
        make_settings: Callable[..., Settings], lecture: tuple[Path, list[tuple[float, str]]]) -> None:
    path, _ = lecture

    class Broken(BasicAnalyzer):
        def read_text(self, rgb: np.ndarray, regions: Any = None) -> str:
            raise MemoryError("no memory for OCR")

    a = Broken(make_settings(ocr=True, asr="off", overlap=True))
    with pytest.raises(MemoryError):
        a.analyze(VideoJob(path=path, video_id="v" * 16, sha256="0" * 64, info=probe(path), run_id="r"),
                  lambda f, m: None)
