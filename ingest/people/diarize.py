"""Who speaks when, within one video: a voice embedding per spoken line, clustered.

Each line long enough to carry a voice (``MIN_LINE_S``) is embedded (its samples, silence at
the edges trimmed); the embeddings are clustered by average-linkage agglomerative clustering
on cosine distance, cut at ``within`` (lines of one speaker score above it). Shorter lines
and lines of clusters too small to be a speaker join the nearest speaker. Each speaker
gets a voiceprint: the normalised, duration-weighted mean of its lines' embeddings, which
is what is matched across videos (:mod:`vidx.people`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ingest.people.voice import RATE, SpeakerEncoder

log = logging.getLogger("ingest.people.diarize")

MIN_LINE_S = 0.8  # shorter lines are too short to embed alone: they join the nearest speaker
MIN_SPEAKER_S = 2.0  # a cluster with less speech than this is not a speaker of its own
DEFAULT_WITHIN = 0.78  # cosine: lines of one voice in one video (bench/people_bench.py)
MAX_LINES = 4000  # the clustering is quadratic: beyond this, lines are embedded but assigned to the nearest speaker


@dataclass
class Speaker:
    label: int  # 0, 1, ... within the video, in order of first appearance
    print: np.ndarray  # float32 unit vector (the voiceprint)
    seconds: float  # speech time
    sample: tuple[float, float]  # a representative line (start, end) to play


@dataclass
class Diarization:
    line_speaker: list[int | None]  # per input line; None where no voice could be heard
    speakers: list[Speaker]
    model_id: str


def _trim(a: np.ndarray, frac: float = 0.03) -> np.ndarray:
    """Drop quiet 30 ms frames at both ends."""
    w = 480
    n = len(a) // w
    if n < 3:
        return a
    rms = np.sqrt((a[: n * w].reshape(n, w).astype(np.float64) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > frac * max(float(rms.max()), 1e-9))
    if not len(loud):
        return a[:0]
    lo, hi = max(0, loud[0] - 2), min(n, loud[-1] + 3)
    return a[lo * w : hi * w]


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


def diarize(samples: np.ndarray, lines: list[tuple[float, float]], encoder: SpeakerEncoder,
            within: float = DEFAULT_WITHIN) -> Diarization:
    """Speakers of ``lines`` ((start, end) seconds on the samples' clock, 16 kHz)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    clips: list[np.ndarray] = []
    idx: list[int] = []
    dur: list[float] = []
    for i, (s, e) in enumerate(lines):
        a = _trim(samples[max(0, int(s * RATE)) : max(0, int(e * RATE))])
        if len(a) / RATE >= 0.3:
            clips.append(a)
            idx.append(i)
            dur.append(len(a) / RATE)
    out: list[int | None] = [None] * len(lines)
    if not clips:
        return Diarization(out, [], encoder.model_id)
    emb = encoder.embed_many(clips)
    d = np.array(dur)
    long_ = np.flatnonzero(d >= MIN_LINE_S)[:MAX_LINES]
    if len(long_) == 0:
        long_ = np.array([int(np.argmax(d))])
    if len(long_) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        z = linkage(emb[long_].astype(np.float64), method="average", metric="cosine")
        labels = fcluster(z, t=1.0 - within, criterion="distance") - 1
    # clusters with too little speech are not speakers: their lines join the nearest speaker
    def centroids(members: dict[int, list[int]]) -> dict[int, np.ndarray]:
        return {c: _unit((emb[m] * d[m][:, None]).sum(axis=0)) for c, m in members.items()}

    members: dict[int, list[int]] = {}
    for j, c in zip(long_, labels):
        members.setdefault(int(c), []).append(int(j))
    big = {c: m for c, m in members.items() if d[m].sum() >= MIN_SPEAKER_S}
    if not big:  # one short recording: its longest cluster is the speaker
        c = max(members, key=lambda k: d[members[k]].sum())
        big = {c: members[c]}
    cents = centroids(big)
    keys = list(cents)
    mat = np.stack([cents[k] for k in keys])
    assigned = {int(j): int(c) for c, m in big.items() for j in m}
    for j in range(len(clips)):
        if j not in assigned:
            assigned[j] = keys[int(np.argmax(mat @ emb[j]))]
    # final members, centroids and labels in order of first appearance
    final: dict[int, list[int]] = {}
    for j in range(len(clips)):
        final.setdefault(assigned[j], []).append(j)
    order = sorted(final, key=lambda c: min(lines[idx[j]][0] for j in final[c]))
    cents = centroids(final)
    speakers: list[Speaker] = []
    for label, c in enumerate(order):
        m = final[c]
        for j in m:
            out[idx[j]] = label
        best = max(m, key=lambda j: (min(d[j], 8.0), float(emb[j] @ cents[c])))
        speakers.append(Speaker(label=label, print=cents[c], seconds=round(float(d[m].sum()), 2),
                                sample=(float(lines[idx[best]][0]), float(lines[idx[best]][1]))))
    log.info("speakers: %d in %d line(s)", len(speakers), len(lines))
    return Diarization(out, speakers, encoder.model_id)
