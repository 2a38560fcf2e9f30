#!/usr/bin/env python3
"""How far speech events start from the moment their words are heard.

A generated 90 s meeting (espeak-ng) with known times: single lines with pauses, and runs of
sentences spoken back to back. The real faster-whisper (the bundled model) transcribes it
once; the same transcript is measured two ways in the same process:

* ``sentences`` (vidx): lines cut into sentences on word timestamps (``ingest.speech.sentences``)
* ``segments`` (baseline): the recogniser's segments as they come

For each spoken sentence the event that overlaps it most is taken, and its start is compared
with the moment the sentence is heard (its placement plus espeak-ng's leading silence).

  python bench/speech_times.py --out bench/results/speech_times.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchio import machine, write_report  # noqa: E402


def _errors(lines: list[tuple[float, str]], spans: list[tuple[float, float]]) -> list[float]:
    from tests.media import speech_onset

    out = []
    for t, text in lines:
        heard = t + speech_onset(text)
        start, _ = max(spans, key=lambda se: min(se[1], heard + 2) - max(se[0], heard))
        out.append(round(start - heard, 3))
    return out


def _summary(errs: list[float]) -> dict[str, Any]:
    a = sorted(abs(e) for e in errs)
    return {"mean_abs_s": round(sum(a) / len(a), 3), "max_abs_s": a[-1],
            "within_0_5_s": sum(1 for e in a if e <= 0.5), "of": len(a), "errors_s": errs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speech_times.json")
    a = ap.parse_args()
    from ingest.speech.sentences import into_sentences
    from ingest.speech.service import SpeechService
    from tests.media import espeak_available, meeting_lines, speech_track
    from vidx.config import Settings

    if not espeak_available():
        write_report(a.out, {"skipped": True, "reason": "espeak-ng is not installed"})
        return 0
    lines = meeting_lines()
    rec = SpeechService(Settings(asr="on")).recognizer()
    if rec is None:
        write_report(a.out, {"skipped": True, "reason": "no speech model installed"})
        return 0
    t0 = time.perf_counter()
    raw = rec.transcribe(speech_track(lines, 90.0), None, lambda d: None)
    took = time.perf_counter() - t0
    sent = into_sentences(raw)
    report = {
        "machine": machine(), "model": rec.model_id, "audio_s": 90.0, "sentences_spoken": len(lines),
        "transcribe_s": round(took, 2),
        "sentences": _summary(_errors(lines, [(x.start, x.end) for x in sent.lines])),
        "segments_baseline": _summary(_errors(lines, [(x.start, x.end) for x in raw.lines])),
        "events": {"sentences": len(sent.lines), "segments_baseline": len(raw.lines)},
    }
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
