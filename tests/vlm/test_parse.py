from __future__ import annotations

import json

import pytest

from ingest.vlm.merge import merge_windows
from ingest.vlm.parse import MAX_EVENTS_PER_WINDOW, parse_events, parse_range, parse_time
from ingest.vlm.windows import plan_windows


@pytest.mark.parametrize("raw,expected", [
    (12, 12.0), (12.5, 12.5), ("12.5", 12.5), ("12.5s", 12.5), ("12.5 seconds", 12.5), ("<12.5 seconds>", 12.5),
    ("01:12", 72.0), ("01:12.50", 72.5), ("1:02:03", 3723.0), ("01:12:34", 4354.0), ("00:00:01,500", 1.5),
    ("12.3秒", 12.3), ("0", 0.0),
    ("", None), ("soon", None), ("-3", None), (-1, None), (None, None), (True, None), ("01:75", None),
    ("1:75:00", None), (float("nan"), None),
])
def test_time_formats(raw: object, expected: float | None) -> None:
    assert parse_time(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("00:23.00 - 00:48.00", (23.0, 48.0)), ("12.5s–20s", (12.5, 20.0)), ("1:00 to 1:30", (60.0, 90.0)),
    ("10秒至20秒", (10.0, 20.0)), ([3, "00:05"], (3.0, 5.0)), ("whenever", None),
])
def test_ranges(raw: object, expected: tuple[float, float] | None) -> None:
    assert parse_range(raw) == expected


EV = {"start": 12, "end": 15, "description": "A man opens the door", "people": ["man"], "location": "hall",
      "action": "opening", "dialogue_summary": "he says hello", "objects": ["door"], "ocr_text": "EXIT",
      "emotion": "calm"}


@pytest.mark.parametrize("text", [
    json.dumps([EV]),
    "```json\n" + json.dumps([EV]) + "\n```",
    "Here are the events:\n" + json.dumps([EV]) + "\nHope this helps!",
    json.dumps({"events": [EV]}),
    "<think>the clip starts at 10</think>" + json.dumps([EV]),
    json.dumps([{**EV, "start": "00:12", "end": "00:15.00"}]),
    json.dumps([{**EV, "start": "<12.0 seconds>", "end": "<15.0 seconds>"}]),
    json.dumps([{"start_time": "00:00:12", "end_time": "00:00:15", "event": "A man opens the door",
                 "characters": ["man"]}]),
])
def test_accepted_shapes(text: str) -> None:
    res = parse_events(text, 10.0, 40.0)
    assert res.ok and len(res.events) == 1
    e = res.events[0]
    assert (e["start_sec"], e["end_sec"]) == (12.0, 15.0)
    assert e["description"] == "A man opens the door"
    assert e["people"] == ["man"]


def test_cookbook_range_keyed_object() -> None:
    res = parse_events('{"00:23.00 - 00:48.00": "A woman cooks.", "00:50.00 - 01:05.00": "She eats."}', 0, 90)
    assert [(e["start_sec"], e["end_sec"], e["description"]) for e in res.events] == [
        (23.0, 48.0, "A woman cooks."), (50.0, 65.0, "She eats.")]


def test_chinese_keys_and_values() -> None:
    text = json.dumps([{"开始时间": "00:05", "结束时间": "00:09", "事件": "男人打开门", "人物": "男人、女人",
                        "地点": "客厅", "对话": "你好"}], ensure_ascii=False)
    (e,) = parse_events(text, 0, 30).events
    assert e["description"] == "男人打开门" and e["people"] == ["男人", "女人"] and e["location"] == "客厅"
    assert (e["start_sec"], e["end_sec"]) == (5.0, 9.0)


def test_truncated_json_keeps_complete_events() -> None:
    text = json.dumps([EV, {**EV, "start": 20, "end": 22}])[:-40]  # cut inside the second object
    res = parse_events(text, 10, 40)
    assert res.ok and [e["start_sec"] for e in res.events] == [12.0]


def test_times_are_clamped_to_the_window_and_impossible_ones_dropped() -> None:
    text = json.dumps([{**EV, "start": 58, "end": 62}, {**EV, "start": 9.5, "end": 11},
                       {**EV, "start": 500, "end": 510}, {**EV, "start": 30, "end": 20}])
    res = parse_events(text, 10, 60)
    assert [(e["start_sec"], e["end_sec"]) for e in res.events] == [(58.0, 60.0), (10.0, 11.0)]
    assert len(res.dropped) == 2


def test_clip_relative_times_are_recognised() -> None:
    text = json.dumps([{**EV, "start": 2, "end": 5}, {**EV, "start": 40, "end": 44}])
    res = parse_events(text, 120, 210)  # the model counted from the clip start
    assert [(e["start_sec"], e["end_sec"]) for e in res.events] == [(122.0, 125.0), (160.0, 164.0)]


def test_never_invents_time_or_text() -> None:
    text = json.dumps([{"description": "no time here"}, {"start": 12, "end": 14}, {"start": 13, "description": "x"}])
    res = parse_events(text, 10, 40)
    assert [(e["start_sec"], e["end_sec"], e["description"]) for e in res.events] == [(13.0, 13.0, "x")]


@pytest.mark.parametrize("garbage", ["", "I cannot see the video.", "{{{{", "[1, 2,", "null", '"just a string"'])
def test_garbage_is_not_ok(garbage: str) -> None:
    res = parse_events(garbage, 0, 60)
    assert res.events == []
    assert not res.ok


def test_empty_list_is_a_valid_answer() -> None:
    res = parse_events("[]", 0, 60)
    assert res.ok and res.events == []


def test_injection_is_capped_and_clamped() -> None:
    text = json.dumps([{**EV, "start": 1 + i * 0.1, "end": 99999} for i in range(500)])
    res = parse_events(text, 0, 60)
    assert len(res.events) == MAX_EVENTS_PER_WINDOW
    assert all(e["end_sec"] == 60 for e in res.events)


def test_merge_across_overlap() -> None:
    a = {"start_sec": 80.0, "end_sec": 88.0, "description": "a man opens the door", "people": ["man"],
         "objects": ["door"], "action": "opening", "dialogue": "", "location": "", "ocr_text": "", "emotion": ""}
    b = {**a, "start_sec": 81.0, "end_sec": 92.0, "description": "the man opens the front door",
         "people": ["man", "Tom"]}
    c = {**a, "start_sec": 81.0, "end_sec": 86.0, "description": "a cat sleeps on the sofa", "people": [],
         "objects": ["sofa"], "action": "sleeping"}
    merged = merge_windows([(0.0, 90.0, [a]), (78.0, 168.0, [b, c])])
    assert len(merged) == 2
    door = next(e for e in merged if "door" in e["description"])
    assert (door["start_sec"], door["end_sec"]) == (80.0, 92.0)
    assert door["description"] == "the man opens the front door"  # farther from its window's edge
    assert door["people"] == ["man", "Tom"]


def test_duplicates_within_overlap_only_merge_when_similar() -> None:
    e = {"start_sec": 10.0, "end_sec": 12.0, "description": "x y z", "people": [], "objects": [], "action": ""}
    far = {**e, "start_sec": 40.0, "end_sec": 42.0}
    assert len(merge_windows([(0, 60, [e]), (50, 100, [far])])) == 2


@pytest.mark.parametrize("duration,length,overlap,cuts,expected", [
    (30, 90, 12, [], [(0.0, 30.0)]),
    (200, 90, 12, [], [(0.0, 90.0), (78.0, 168.0), (156.0, 200.0)]),
    (200, 90, 12, [75.0, 150.0], [(0.0, 75.0), (63.0, 150.0), (138.0, 200.0)]),
])
def test_windows(duration: float, length: float, overlap: float, cuts: list[float],
                 expected: list[tuple[float, float]]) -> None:
    ws = plan_windows(duration, length, overlap, cuts)
    assert [(w.start, w.end) for w in ws] == expected
    assert [w.idx for w in ws] == list(range(len(ws)))


def test_two_hour_film_windows_cover_everything() -> None:
    ws = plan_windows(7200, 90, 12)
    assert ws[0].start == 0 and ws[-1].end == 7200
    for a, b in zip(ws, ws[1:]):
        assert b.start < a.end and a.end - b.start <= 12.001
        assert 60 <= a.end - a.start <= 120


@pytest.mark.parametrize("answer, want", [
    ("00:05-00:12 A man in a grey coat enters the kitchen.", (5.0, 12.0, "A man in a grey coat enters the kitchen.")),
    ("[14.0s - 18.5s] He pours coffee.", (14.0, 18.5, "He pours coffee.")),
    ("From 20 to 25 seconds: the dog barks at the door.", (20.0, 25.0, "the dog barks at the door.")),
    ("3. 0:26 – 0:29 A sign reads EXIT.", (26.0, 29.0, "A sign reads EXIT.")),
    ("- 1.5 - 4 s: 人们在火车站见面", (1.5, 4.0, "人们在火车站见面")),
])
def test_plain_text_dense_captions_are_read(answer: str, want: tuple[float, float, str]) -> None:
    res = parse_events(f"Here is what happens:\n{answer}\nThat is all.", 0.0, 30.0)
    assert res.ok
    assert [(e["start_sec"], e["end_sec"], e["description"]) for e in res.events] == [want]


def test_prose_without_times_is_still_unreadable() -> None:
    res = parse_events("Sorry, I will describe the video in prose: there is a yellow room.", 0.0, 30.0)
    assert not res.ok and res.events == []


@pytest.mark.parametrize("answer, spans", [
    ("4.5 - 8.0 seconds, a cyclist crosses the bridge.", [(4.5, 8.0)]),
    ("4.5 - 8.0 seconds, a cyclist crosses the bridge.  10.5 - 14.0 seconds, a dog follows.", [(4.5, 8.0), (10.5, 14.0)]),
    ("2.25-3.75s: a door opens. 5.5 to 9 seconds: two people talk. 12.0 - 13.5 seconds, lights go out.",
     [(2.25, 3.75), (5.5, 9.0), (12.0, 13.5)]),
    ("1. 0:04 - 0:08 A man enters.\n2. 0:10 - 0:15 He sits down.", [(4.0, 8.0), (10.0, 15.0)]),
    ("- 3 - 4 seconds: the bell rings. Between 3 to 5 people wait.", [(3.0, 4.0)]),
])
def test_plain_answers_with_decimal_times_become_one_event_per_sentence(answer: str,
                                                                         spans: list[tuple[float, float]]) -> None:
    got = parse_events(answer, 0.0, 30.0).events
    assert [(e["start_sec"], e["end_sec"]) for e in got] == spans
    assert all(e["description"] and not e["description"][0].isdigit() for e in got)
