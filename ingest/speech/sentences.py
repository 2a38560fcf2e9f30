"""Recognised speech as sentence-sized lines that start at their first word.

A recogniser's segment can hold several sentences and can start seconds before its first
word (silence, music or noise at its head is absorbed into it); a hit on such a segment
plays seconds early. Here every segment is cut on its word timestamps: after a word that
ends a sentence, at a pause, and when a run of words grows too long; each piece starts at
its first word and ends at its last. A first word that lasts implausibly long (the
recogniser stretched it over the silence before it) is cut to a plausible length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ingest.speech.recognizer import SpokenLine, Transcript, Word

END_RE = re.compile(r"[.?!。？！…]['\"”’)\]]*$")
PAUSE_S = 1.0  # silence between two words that starts a new line
LONGEST_S = 15.0  # a line longer than this is cut at its next comma (at any word after 20 s)
COMMA_RE = re.compile(r"[,;:，、；：]$")
MAX_WORD_S = 1.2  # a word lasting longer than this has absorbed the silence before it
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "e.g.", "i.e.", "etc.", "no."}


def _length(text: str) -> float:
    """About how long saying ``text`` takes."""
    return min(0.8, max(0.25, 0.07 * len(text) + 0.1))


def _plausible(w: Word) -> Word:
    if w.end - w.start <= max(MAX_WORD_S, 3 * _length(w.text)):
        return w
    return Word(max(w.start, w.end - _length(w.text)), w.end, w.text)


def join_words(words: Iterable[str]) -> str:
    out = ""
    for t in words:
        t = t.strip()
        if not t:
            continue
        if out and not (CJK_RE.search(out[-1]) and CJK_RE.search(t[0])) and not re.match(r"[,.;:?!%)，。？！]", t):
            out += " "
        out += t
    return out


def _ends_sentence(word: str) -> bool:
    return bool(END_RE.search(word)) and word.lower() not in ABBREV and not re.search(r"\d\.\d*$", word)


def split_line(line: SpokenLine) -> list[SpokenLine]:
    if not line.words:
        return [line]
    words = [_plausible(w) for w in line.words]
    pieces: list[list[Word]] = [[]]
    for i, w in enumerate(words):
        cur = pieces[-1]
        cur.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is None:
            break
        span = w.end - cur[0].start
        if (_ends_sentence(w.text) or nxt.start - w.end >= PAUSE_S
                or (span >= LONGEST_S and COMMA_RE.search(w.text)) or span >= LONGEST_S + 5):
            pieces.append([])
    pieces = _reattach([p for p in pieces if p])
    if len(pieces) == 1:
        p = pieces[0]
        return [SpokenLine(p[0].start, max(p[-1].end, p[0].start + 0.1), line.text, p)]
    return [SpokenLine(p[0].start, max(p[-1].end, p[0].start + 0.1), join_words(w.text for w in p), p)
            for p in pieces]


def _reattach(pieces: list[list[Word]]) -> list[list[Word]]:
    """A word or two cut off by a pause without ending a sentence ("The ... budget is open")
    belongs to what follows: the recogniser placed it seconds early. It joins the next piece,
    timed just before that piece's first word."""
    out: list[list[Word]] = []
    for i, p in enumerate(pieces):
        nxt = pieces[i + 1] if i + 1 < len(pieces) else None
        if nxt is not None and len(p) <= 2 and not _ends_sentence(p[-1].text) and nxt[0].start - p[-1].end >= PAUSE_S:
            t = nxt[0].start
            moved: list[Word] = []
            for w in reversed(p):
                t -= _length(w.text)
                moved.insert(0, Word(t, t + _length(w.text), w.text))
            nxt[:0] = moved
            continue
        out.append(p)
    return out


def into_sentences(transcript: Transcript) -> Transcript:
    """The transcript with every line cut into sentences that start at their first word."""
    lines = [piece for line in transcript.lines for piece in split_line(line) if piece.text.strip()]
    return Transcript(transcript.language, transcript.probability, lines, transcript.audio_seconds,
                      transcript.model)
