"""One speaker per line: a recognised line in which the voice changes (two people speaking
back to back, with no pause for the recogniser to cut at) is split where it changes.

After clustering, each line long enough to hold two turns is scanned with 1.6 s windows
(every 0.4 s); each window goes to the nearest speaker. When the windows of the line's first
part and of its last part belong to two different speakers, each for at least ``MIN_TURN_S``,
the line is cut at the word boundary nearest to the change, and each part keeps its words.
"""

from __future__ import annotations

import logging

import numpy as np

from ingest.people.diarize import Diarization
from ingest.people.voice import RATE, SpeakerEncoder
from ingest.speech.recognizer import SpokenLine
from ingest.speech.sentences import join_words

log = logging.getLogger("ingest.people.turns")

MIN_LINE_S = 2.6  # shorter lines are not scanned
MIN_TURN_S = 1.2  # each side of a cut holds at least this much of one voice
WINDOW_S = 1.6
HOP_S = 0.4


def _windows(samples: np.ndarray, start: float, end: float) -> list[tuple[float, np.ndarray]]:
    out = []
    t = start
    while t + WINDOW_S <= end + 1e-6:
        a = samples[int(t * RATE): int((t + WINDOW_S) * RATE)]
        if len(a):
            out.append((t + WINDOW_S / 2, a))
        t += HOP_S
    return out


def split_turns(samples: np.ndarray, lines: list[SpokenLine], d: Diarization,
                encoder: SpeakerEncoder) -> tuple[list[SpokenLine], list[int | None]]:
    """The lines (some cut in two) and the speaker of each."""
    if len(d.speakers) < 2:
        return lines, d.line_speaker
    cents = np.stack([s.print for s in d.speakers])
    out_lines: list[SpokenLine] = []
    out_who: list[int | None] = []
    cuts = 0
    for line, who in zip(lines, d.line_speaker):
        if who is None or line.end - line.start < MIN_LINE_S or len(line.words) < 2:
            out_lines.append(line)
            out_who.append(who)
            continue
        wins = _windows(samples, line.start, line.end)
        if len(wins) < 3:
            out_lines.append(line)
            out_who.append(who)
            continue
        emb = encoder.embed_many([a for _, a in wins])
        labels = np.argmax(emb @ cents.T, axis=1)
        mids = np.array([m for m, _ in wins])
        first, last = int(labels[0]), int(labels[-1])
        cut_at = None
        if first != last:
            # the last window of the first speaker's opening run and the first of the closing run
            a = int(np.argmax(labels != first))
            b = len(labels) - int(np.argmax(labels[::-1] != last))
            change = (mids[a - 1] + mids[b]) / 2 if a > 0 and b < len(labels) else None
            if change is not None and change - line.start >= MIN_TURN_S and line.end - change >= MIN_TURN_S:
                cut_at = change
        if cut_at is None:
            out_lines.append(line)
            out_who.append(who)
            continue
        k = min(range(1, len(line.words)), key=lambda i: abs(line.words[i].start - cut_at))
        left, right = line.words[:k], line.words[k:]
        out_lines.append(SpokenLine(left[0].start, left[-1].end, join_words(w.text for w in left), left))
        out_lines.append(SpokenLine(right[0].start, right[-1].end, join_words(w.text for w in right), right))
        out_who.extend([first, last])
        cuts += 1
    if cuts:
        log.info("speakers: %d line(s) cut where the voice changes", cuts)
    return out_lines, out_who
