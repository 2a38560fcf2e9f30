"""People: how well vidx tells voices apart within a video and finds a voice again across
videos, and how well it finds and groups real faces.

Generated meetings: synthetic voices (espeak-ng) take turns with different sentences; the
lines vidx gets are the turns (as the speech recogniser returns sentences). Measured with
vidx's own diarization (:mod:`ingest.people.diarize`) and library matching (:mod:`vidx.people`):

* the share of speech time given the wrong speaker (each found speaker mapped to the true
  voice it overlaps most), per clustering threshold;
* across videos: the same voice in two meetings becoming one person, and two different voices
  ever becoming one person, per matching threshold.

A baseline in the same run: every line given to one speaker.

    python bench/people_bench.py [--meetings 10] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# espeak-ng voices this encoder tells apart (measured: most variants are not separable; see docs/benchmarks.md)
VOICES = ["en-us+f3", "en-us+klatt", "en-029"]
PER_MEETING = 3  # each meeting: three of VOICES taking turns
SUBJECTS = ["The finance team", "Our new manager", "The delivery driver", "My neighbour", "The support desk",
            "Every customer", "The night shift", "The building owner", "Our lawyer", "The school board",
            "The design group", "A local reporter"]
VERBS = ["asked about", "complained about", "will review", "has approved", "forgot", "wants to change",
         "is worried about", "fixed", "printed", "cancelled", "paid for", "moved"]
OBJECTS = ["the quarterly budget", "the broken heater", "the parking rules", "the summer schedule",
           "the warehouse lease", "the new website", "the coffee machine", "the training plan",
           "the insurance claim", "the holiday party", "the window repairs", "the hiring freeze"]
TAILS = ["before Friday.", "last week.", "again this morning.", "without telling anyone.", "in the evening.",
         "after lunch.", "for the second time.", "yesterday."]


def sentences(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}")
    return sorted(out)


def synth(text: str, voice: str) -> np.ndarray:
    from scipy.signal import resample_poly

    from tests.media import speak

    data, hz = speak(text, voice=voice)
    a = data.astype(np.float32) / 32768
    return resample_poly(a, 16000, hz).astype(np.float32) if hz != 16000 else a


def meeting(voices: list[str], lines: list[str], rng: random.Random,
            gap: float = 0.4) -> tuple[np.ndarray, list[tuple[float, float]], list[int]]:
    """Audio, line spans and the true voice of each line (turns in a shuffled order, no voice twice in a row)."""
    order: list[int] = []
    for _ in lines:
        choices = [v for v in range(len(voices)) if not order or v != order[-1]]
        order.append(rng.choice(choices))
    parts, spans, t = [np.zeros(8000, dtype=np.float32)], [], 0.5
    for text, v in zip(lines, order):
        a = synth(text, voices[v])
        spans.append((t, t + len(a) / 16000))
        parts.append(a)
        parts.append(np.zeros(int(gap * 16000), dtype=np.float32))
        t += len(a) / 16000 + gap
    audio = np.concatenate(parts)
    # as the product meets them: a little room noise, and line times as a recogniser gives them
    # (a few tenths of a second off either way)
    audio = audio + np.float32(0.003) * np.asarray(np.random.default_rng(rng.randrange(1 << 30)).standard_normal(
        len(audio)), dtype=np.float32)
    spans = [(max(0.0, s - rng.uniform(0.0, 0.35)), e + rng.uniform(-0.25, 0.3)) for s, e in spans]
    return audio, spans, order


def wrong_share(found: list[int | None], truth: list[int], spans: list[tuple[float, float]]) -> float:
    dur = [e - s for s, e in spans]
    total = sum(dur)
    overlap: dict[tuple[int, int], float] = {}
    for f, t, d in zip(found, truth, dur):
        if f is not None:
            overlap[(f, t)] = overlap.get((f, t), 0.0) + d
    best = {}
    for (f, t), d in overlap.items():
        if d > best.get(f, (None, -1.0))[1]:
            best[f] = (t, d)
    right = sum(d for f, t, d in zip(found, truth, dur) if f is not None and best[f][0] == t)
    return 1.0 - right / total


def run(n_meetings: int = 10, lines_per: int = 12, seed: int = 7, quick: bool = False) -> dict[str, Any]:
    from ingest.people.diarize import diarize
    from ingest.people.voice import load_encoder
    from vidx.people import PeopleDB, VoicePrint

    if quick:
        n_meetings, lines_per = 4, 8
    rng = random.Random(seed)
    enc = load_encoder()
    pool = sentences(rng, n_meetings * lines_per)
    meetings = []
    t0 = time.perf_counter()
    for m in range(n_meetings):
        cast = rng.sample(range(len(VOICES)), PER_MEETING)
        audio, spans, local = meeting([VOICES[v] for v in cast], pool[m * lines_per:(m + 1) * lines_per], rng)
        meetings.append((audio, spans, [cast[x] for x in local]))
    synth_s = time.perf_counter() - t0
    audio_s = sum(len(a) / 16000 for a, _, _ in meetings)

    within_grid = [0.60, 0.65, 0.70, 0.75, 0.80, 0.85]
    results: dict[str, Any] = {"voices": VOICES, "meetings": n_meetings, "lines_per_meeting": lines_per,
                               "audio_seconds": round(audio_s, 1), "synthesis_seconds": round(synth_s, 1),
                               "within": {}, "across": {}}
    diarized: dict[float, list[Any]] = {}
    for w in within_grid:
        t0 = time.perf_counter()
        ds = [diarize(a, spans, enc, within=w) for a, spans, _ in meetings]
        secs = time.perf_counter() - t0
        shares = [wrong_share(d.line_speaker, truth, spans) for d, (_, spans, truth) in zip(ds, meetings)]
        results["within"][str(w)] = {
            "wrong_speaker_time": round(float(np.mean(shares)), 3), "worst_meeting": round(float(max(shares)), 3),
            "speakers_found_mean": round(float(np.mean([len(d.speakers) for d in ds])), 2),
            "x_real_time": round(audio_s / max(secs, 1e-9), 1)}
        diarized[w] = ds
    results["baseline_one_speaker"] = {"wrong_speaker_time": round(float(np.mean(
        [wrong_share([0] * len(truth), truth, spans) for _, spans, truth in meetings])), 3)}

    # across videos: with the default clustering, register every meeting into a fresh library
    from ingest.people.diarize import DEFAULT_WITHIN

    ds = diarized[min(within_grid, key=lambda w: abs(w - DEFAULT_WITHIN))]
    for across in [0.75, 0.80, 0.85, 0.90, 0.95]:
        with tempfile.TemporaryDirectory() as tmp:
            db = PeopleDB(Path(tmp) / "people.sqlite3")
            seen: list[dict[int, int]] = []  # per meeting: true voice -> person
            for m, (d, (_, spans, truth)) in enumerate(zip(ds, meetings)):
                prints = [VoicePrint(s.label, s.print, s.seconds, s.sample) for s in d.speakers]
                mapping = db.register_video(f"meeting{m}", prints, {}, d.model_id, across=across)
                got: dict[int, int] = {}
                for s in d.speakers:  # the true voice of a found speaker: the one it overlaps most
                    dur: dict[int, float] = {}
                    for f, t, (a, b) in zip(d.line_speaker, truth, spans):
                        if f == s.label:
                            dur[t] = dur.get(t, 0.0) + b - a
                    if dur:
                        got[max(dur, key=lambda k: dur[k])] = mapping[s.label]
                seen.append(got)
            same_pairs = same_joined = diff_pairs = diff_merged = 0
            for a, b in itertools.combinations(seen, 2):
                for va, pa in a.items():
                    for vb, pb in b.items():
                        if va == vb:
                            same_pairs += 1
                            same_joined += int(pa == pb)
                        else:
                            diff_pairs += 1
                            diff_merged += int(pa == pb)
            results["across"][str(across)] = {
                "same_voice_one_person": f"{same_joined}/{same_pairs}",
                "same_voice_share": round(same_joined / max(1, same_pairs), 3),
                "different_voices_merged": f"{diff_merged}/{diff_pairs}",
                "persons": len(db.persons())}
            db.close()
    return results


def faces(quick: bool = False) -> dict[str, Any]:
    """Real face photos (matplotlib's Grace Hopper, scikit-image's astronaut) placed at different
    sizes, positions and brightness on 1280x720 frames, read as the analyzer reads them (640 px),
    each frame registered as a video of its own into a fresh library."""
    from ingest.people.faces import FACE_WIDTH, load_faces
    from tests.media import face_frame, face_photo
    from vidx.people import FacePrint, PeopleDB

    photos = {n: face_photo(n) for n in ("hopper", "astronaut")}
    if any(p is None for p in photos.values()):
        return {"skipped": True, "reason": "matplotlib and scikit-image (the photos) are not installed"}
    from PIL import Image

    reader = load_faces("hog")
    scales = [0.3, 0.6] if quick else [0.25, 0.35, 0.5, 0.7]
    spots = [(0.0, 0.0), (1.0, 1.0)] if quick else [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (0.2, 0.9)]
    lights = [0.8, 1.2] if quick else [0.6, 0.85, 1.0, 1.3]
    found: dict[str, list[Any]] = {n: [] for n in photos}
    frames = 0
    t0 = time.perf_counter()
    for name, photo in photos.items():
        for sc in scales:
            for pos in spots:
                for b in lights:
                    rgb = face_frame(photo, sc, pos, b)
                    small = np.asarray(Image.fromarray(rgb).resize((FACE_WIDTH, FACE_WIDTH * 9 // 16)))
                    fs = reader.faces(small, 0.0)
                    frames += 1
                    if fs:
                        found[name].append(max(fs, key=lambda f: f.score))
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {"frames": frames, "ms_per_frame": round(1000 * secs / frames, 1),
                           "detected": {n: f"{len(v)}/{frames // 2}" for n, v in found.items()}}
    d = {n: np.stack([f.descriptor for f in v]) for n, v in found.items() if v}
    if len(d) == 2:
        h, a = d["hopper"], d["astronaut"]
        dist = lambda x, y: np.linalg.norm(x[:, None] - y[None], axis=2)  # noqa: E731
        out["same_person_max_distance"] = round(float(max(dist(h, h).max(), dist(a, a).max())), 3)
        out["two_people_min_distance"] = round(float(dist(h, a).min()), 3)
    with tempfile.TemporaryDirectory() as tmp:
        db = PeopleDB(Path(tmp) / "people.sqlite3")
        owner: dict[str, set[int]] = {n: set() for n in found}
        for name, fs in found.items():
            for k, f in enumerate(fs):
                db.register_faces(f"{name}{k}", [FacePrint(0.0, f.descriptor, f.score, f.box)], reader.model_id)
        for name, fs in found.items():
            for k in range(len(fs)):
                owner[name].update(pid for _, pid, _, _ in db.faces_of(f"{name}{k}"))
        out["people_per_photo"] = {n: len(v) for n, v in owner.items()}
        out["photos_merged"] = bool(owner["hopper"] & owner["astronaut"])
        out["waiting_unassigned"] = sum(len(fs) for fs in found.values()) - sum(
            len(db.faces_of(f"{n}{k}")) for n, fs in found.items() for k in range(len(fs)))
        db.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meetings", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    res = run(a.meetings, quick=a.quick)
    res["faces"] = faces(a.quick)
    text = json.dumps(res, indent=2)
    if a.out:
        a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
