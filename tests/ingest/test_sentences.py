"""Recognised speech becomes sentence-sized events that start at their first word (defect 9)."""

from __future__ import annotations

from ingest.speech.recognizer import SpokenLine, Transcript, Word
from ingest.speech.sentences import into_sentences, join_words


def _line(start: float, end: float, words: list[tuple[float, float, str]]) -> SpokenLine:
    ws = [Word(a, b, t) for a, b, t in words]
    return SpokenLine(start, end, join_words(w.text for w in ws), ws)


def test_a_segment_that_starts_seconds_before_its_words_is_cut_into_sentences_at_their_words() -> None:
    # the meeting of the report: one segment from 67.3 to 79.0; its first word was stretched
    # over the silence before it, and it holds two sentences
    seg = _line(67.3, 79.0, [(67.3, 72.4, "So,"), (72.5, 72.8, "that"), (72.8, 73.2, "is"), (73.2, 73.9, "settled."),
                             (76.0, 76.3, "Please"), (76.3, 76.6, "send"), (76.6, 76.9, "your"),
                             (76.9, 77.4, "numbers"), (77.4, 77.6, "by"), (77.6, 78.2, "Friday.")])
    tr = into_sentences(Transcript("en", 0.9, [seg], 80.0))
    assert [ln.text for ln in tr.lines] == ["So, that is settled.", "Please send your numbers by Friday."]
    assert abs(tr.lines[1].start - 76.0) <= 0.5 and tr.lines[1].end == 78.2
    assert tr.lines[0].start >= 71.5  # a 5 s "So," is cut to a plausible length before its end
    assert tr.lines[0].end == 73.9


def test_a_long_pause_starts_a_new_line_and_decimals_or_titles_do_not() -> None:
    seg = _line(0.0, 12.0, [(0.0, 0.3, "Dr."), (0.3, 0.7, "Smith"), (0.7, 1.0, "measured"), (1.0, 1.4, "3.2"),
                            (1.4, 1.8, "metres"), (4.0, 4.3, "then"), (4.3, 4.8, "left")])
    tr = into_sentences(Transcript("en", 0.9, [seg], 12.0))
    assert [(ln.start, ln.text) for ln in tr.lines] == [(0.0, "Dr. Smith measured 3.2 metres"), (4.0, "then left")]


def test_chinese_words_join_without_spaces_and_split_on_chinese_full_stops() -> None:
    seg = _line(0.0, 6.0, [(0.0, 0.5, "我们"), (0.5, 1.0, "明天"), (1.0, 1.5, "开会。"), (2.0, 2.5, "请"),
                           (2.5, 3.0, "准时。")])
    tr = into_sentences(Transcript("zh", 0.9, [seg], 6.0))
    assert [(ln.start, ln.text) for ln in tr.lines] == [(0.0, "我们明天开会。"), (2.0, "请准时。")]


def test_a_line_without_word_times_is_kept_as_it_is() -> None:
    line = SpokenLine(1.0, 3.0, "no word times", [])
    assert into_sentences(Transcript("en", 0.9, [line], 4.0)).lines == [line]
