"""Speakers within and across videos, on generated meetings (three espeak-ng voices this
encoder tells apart, taking turns with recogniser-like line times and room noise)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from vidx.people import PeopleDB, VoicePrint

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_meetings_are_split_by_voice_and_voices_found_again(tmp_path: Path) -> None:
    from bench.people_bench import meeting, sentences, wrong_share
    from ingest.people.diarize import diarize
    from ingest.people.voice import load_encoder

    enc = load_encoder()
    rng = random.Random(11)
    pool = sentences(rng, 30)
    voices = ["en-us+f3", "en-us+klatt", "en-029"]
    db = PeopleDB(tmp_path / "people.sqlite3")
    persons: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
    for m in range(3):
        audio, spans, truth = meeting(voices, pool[m * 10:(m + 1) * 10], rng)
        d = diarize(audio, spans, enc)
        assert wrong_share(d.line_speaker, truth, spans) <= 0.15
        assert len(d.speakers) == 3
        mapping = db.register_video(f"m{m}", [VoicePrint(s.label, s.print, s.seconds, s.sample) for s in d.speakers],
                                    {}, d.model_id)
        for s in d.speakers:
            said = [t for f, t in zip(d.line_speaker, truth) if f == s.label]
            persons[max(set(said), key=said.count)].add(mapping[s.label])
    assert all(len(p) == 1 for p in persons.values()), persons  # each voice: one person in all meetings
    assert len(set().union(*persons.values())) == 3  # and no two voices merged


def test_a_single_voice_and_silence() -> None:
    from bench.people_bench import synth
    from ingest.people.diarize import diarize
    from ingest.people.voice import load_encoder

    enc = load_encoder()
    a = synth("Good morning, this is the only voice in the recording today.", "en-us+f3")
    d = diarize(a, [(0.0, len(a) / 16000)], enc)
    assert d.line_speaker == [0] and len(d.speakers) == 1
    silent = diarize(np.zeros(32000, dtype=np.float32), [(0.0, 2.0)], enc)
    assert silent.line_speaker == [None] and silent.speakers == []


def test_the_vlm_reads_who_speaks_each_line(tmp_path: Path) -> None:
    """Known, named voices go into the Qwen3-VL prompt by name; others as 'Voice N'."""
    from ingest.people.diarize import Diarization, Speaker
    from ingest.speech.recognizer import SpokenLine, Transcript
    from ingest.vlm.analyzer import _spoken_lines
    from ingest.vlm.prompts import build_prompt

    rng = np.random.default_rng(4)
    ada, bob = (v / np.linalg.norm(v) for v in rng.standard_normal((2, 256)).astype(np.float32))
    db = PeopleDB(tmp_path / "people.sqlite3")
    db.register_video("v1", [VoicePrint(0, ada, 9.0, (0.0, 2.0)), VoicePrint(1, bob, 9.0, (3.0, 5.0))], {}, "enc")
    named = next(p for p in db.persons())
    db.rename(named.id, "Ada Quill")
    ada_label = next(lab for lab, pid in db.register_video(
        "v1", [VoicePrint(0, ada, 9.0, (0.0, 2.0)), VoicePrint(1, bob, 9.0, (3.0, 5.0))], {}, "enc").items()
        if pid == named.id)
    # a new video: the same two voices, in the other order
    d = Diarization([0, 1], [Speaker(0, bob, 3.0, (0.0, 2.0)), Speaker(1, ada, 3.0, (3.0, 5.0))], "enc")
    names = db.match_names([VoicePrint(s.label, s.print, s.seconds, s.sample) for s in d.speakers], "enc")
    assert names == {1: "Ada Quill"} and ada_label in (0, 1)
    tr = Transcript("en", 1.0, [SpokenLine(0.0, 2.0, "The budget is late."), SpokenLine(3.0, 5.0, "I will fix it.")],
                    speakers=d)
    lines = _spoken_lines([], tr, names)
    assert [t for _, _, t in lines] == ["Voice 1: The budget is late.", "Ada Quill: I will fix it."]
    prompt = build_prompt(0.0, 10.0, [], [], spoken=lines)
    assert "[3.0-5.0] Ada Quill: I will fix it." in prompt and "Voice 1: The budget" in prompt


def test_a_line_where_the_voice_changes_is_cut_there() -> None:
    """Two people back to back, no pause for the recogniser: one recognised line, cut in two."""
    from bench.people_bench import synth
    from ingest.people.diarize import diarize
    from ingest.people.turns import split_turns
    from ingest.people.voice import load_encoder
    from ingest.speech.recognizer import SpokenLine, Word

    enc = load_encoder()
    gap = np.zeros(8000, dtype=np.float32)
    parts: list[np.ndarray] = [gap]
    lines: list[SpokenLine] = []
    t = 0.5

    def say(text: str, voice: str) -> tuple[float, float, list[Word]]:
        nonlocal t
        a = synth(text, voice)
        words, n = text.split(), len(a) / 16000
        ws = [Word(t + n * i / len(words), t + n * (i + 1) / len(words), w) for i, w in enumerate(words)]
        parts.append(a)
        start, t = t, t + n
        return start, t, ws

    script = [("The warehouse lease was signed on Tuesday by the manager.", "en-us+f3"),
              ("Our customers asked for a cheaper plan with fewer features.", "en-us+klatt"),
              ("Please send your budget numbers to the finance team soon.", "en-us+f3"),
              ("The trucks arrive at seven in the morning and leave by noon.", "en-us+klatt")]
    for text, voice in script:
        s, e, ws = say(text, voice)
        lines.append(SpokenLine(s, e, text, ws))
        parts.append(gap)
        t += 0.5
    s1, e1, w1 = say("I think the marketing video should be shorter and louder.", "en-us+f3")
    parts.append(np.zeros(1600, dtype=np.float32))
    t += 0.1
    s2, e2, w2 = say("Remember to lock the front door when you leave the office.", "en-us+klatt")
    lines.append(SpokenLine(s1, e2, "I think … office.", w1 + w2))
    audio = np.concatenate(parts)
    d = diarize(audio, [(x.start, x.end) for x in lines], enc)
    assert len(d.speakers) == 2
    out, who = split_turns(audio, lines, d, enc)
    assert len(out) == len(lines) + 1
    a, b = out[-2], out[-1]
    assert abs(a.end - e1) <= 0.6 and abs(b.start - s2) <= 0.6, (a.end, e1, b.start, s2)
    assert who[-2] == who[0] and who[-1] == who[1] and who[-2] != who[-1]
    assert a.text.startswith("I think") and b.text.startswith("Remember")
