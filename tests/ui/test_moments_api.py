"""Results grouped by moment through the HTTP API and the page, on a long video where far
more events match than any window: 2,000 subtitle lines inside 400 scenes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings

LINES, PER_SCENE = 2000, 5


@pytest.fixture
def long_talk(settings: Settings, hash_embedder: HashEmbedder) -> tuple[Flask, list[Any], list[Any]]:
    from search_ui import create_app

    events: list[dict[str, Any]] = []
    for i in range(LINES):  # a 2 s line every 2 s, each with a word of its own
        events.append({"start_sec": 2.0 * i, "end_sec": 2.0 * i + 1.8, "source": "subtitle",
                       "dialogue": f"the harbour pilot calls number w{i}x", "description": f"line w{i}x"})
    for k in range(LINES // PER_SCENE):  # a 10 s scene around every five lines
        events.append({"start_sec": 10.0 * k, "end_sec": 10.0 * k + 10.0, "source": "scene",
                       "description": f"the harbour at dusk, scene s{k}z"})
    evs = add_video(settings, settings.watch_dir / "long.mkv", events, hash_embedder)
    other = add_video(settings, settings.watch_dir / "other.mp4", [
        {"start_sec": 5.0, "end_sec": 7.0, "source": "speech", "dialogue": "the harbour pilot calls number w3x"},
        {"start_sec": 0.0, "end_sec": 20.0, "source": "scene", "description": "a pilot boat leaves the harbour"},
    ], hash_embedder)
    return create_app(settings, embedder_factory=lambda: hash_embedder), evs, other


def test_a_line_and_its_scene_are_one_result(long_talk: tuple[Flask, list[Any], list[Any]]) -> None:
    app, evs, _ = long_talk
    c = app.test_client()
    flat = c.get("/api/search?q=w7x+harbour&mode=keyword&min_score=0&size=100&from=10&to=16").get_json()
    grouped = c.get("/api/search?q=w7x+harbour&mode=keyword&min_score=0&size=100&from=10&to=16&group=moment").get_json()
    # events: lines 5-7 and the scene 10-20 s of the long video, the other video's 0-20 s scene;
    # the long video's scene folds into the best of its lines
    assert flat["total"] == 5 and grouped["events_total"] == 5
    assert grouped["total"] == 4 and grouped["total_relation"] == "eq"
    top = grouped["hits"][0]
    assert top["source"] == "subtitle" and "w7x" in top["dialogue"]
    assert [x["source"] for x in top["context"]] == ["scene"] and top["moment"] == {
        "start_sec": 10.0, "end_sec": 20.0, "events": 2}
    assert top["score"] == max(h["score"] for h in flat["hits"])
    assert sorted(h["source"] for h in grouped["hits"][1:]) == ["scene", "subtitle", "subtitle"]
    assert not any(h["context"] for h in grouped["hits"][1:])
    assert top["clip_url"].startswith(f"/media/clip/{top['event_id']}#t=14.00,")


def test_grouped_pages_cover_every_moment_once(long_talk: tuple[Flask, list[Any], list[Any]]) -> None:
    app, _, _ = long_talk
    c = app.test_client()
    # a range holding 100 lines and 20 scenes: every match is ranked, so the count is exact
    url = "/api/search?q=harbour+pilot+video:long.mkv&mode=keyword&min_score=0&size=20&from=0&to=199.9&group=moment"
    first = c.get(url).get_json()
    assert first["events_total"] == 100 + 20 and first["total"] == 100 and first["total_relation"] == "eq"
    assert first["pages"] == 5
    heads: list[float] = []
    for page in range(1, 6):
        res = c.get(url + f"&page={page}").get_json()
        assert len(res["hits"]) == 20 and {h["source"] for h in res["hits"]} == {"subtitle"}
        heads += [h["start_sec"] for h in res["hits"]]
    assert sorted(heads) == [2.0 * i for i in range(100)]
    assert c.get(url + "&page=6").get_json()["hits"] == []
    # the whole long video: 2,400 matching events, more than the grouping window
    big = c.get("/api/search?q=harbour+pilot&mode=keyword&min_score=0&size=20&group=moment").get_json()
    assert big["events_total"] == LINES + LINES // PER_SCENE + 2 and big["events_total_relation"] == "eq"
    assert big["total_relation"] == "gte" and big["total"] >= 20 * 3
    heads = sorted((h["video_id"], h["start_sec"], h["end_sec"]) for h in big["hits"])
    for (va, _, a1), (vb, b0, _) in zip(heads, heads[1:], strict=False):
        assert va != vb or a1 <= b0, "two results of one moment on a page"
    assert all(h["source"] == "subtitle" or h["video_id"] != heads[0][0] for h in big["hits"])
    # event facets still count every match
    assert dict(map(tuple, big["facets"]["source"])) == {"subtitle": LINES, "scene": LINES // PER_SCENE + 1,
                                                          "speech": 1}
    r = c.get("/api/search?q=harbour&group=moment&page=31&size=20")
    assert r.status_code == 400 and "group=none" in r.get_json()["error"]
    assert c.get("/api/search?q=harbour&group=scenes").status_code == 400


def test_the_page_groups_by_default_and_more_like_this_shows_other_videos_first(
        long_talk: tuple[Flask, list[Any], list[Any]]) -> None:
    app, evs, other = long_talk
    c = app.test_client()
    html = c.get("/?q=w7x+dusk&mode=keyword&min_score=0&from=10&to=16").get_data(as_text=True)
    assert html.count('class="hit"') == 1 and "1 more event in this moment" in html
    assert "moment" in html and "show every event" in html
    flat = c.get("/?q=w7x+dusk&mode=keyword&min_score=0&from=10&to=16&group=none").get_data(as_text=True)
    assert flat.count('class="hit"') == 2 and "group by moment" in flat
    # the choice is kept by the form (a hidden field) and the page links
    assert '<input type="hidden" name="group" value="none">' in flat
    assert re.search(r'href="/\?q=w7x\+dusk&amp;mode=keyword&amp;group=none', flat)
    line3 = next(e for e in evs if "w3x" in e.dialogue)
    sim = c.get(f"/api/events/{line3.event_id}/similar?size=5").get_json()
    assert sim["hits"][0]["video_id"] == other[0].video_id  # the same words in the other video come first
    own_scene = next(e for e in evs if e.source == "scene" and e.start_sec == 0.0)
    ids = {h["event_id"] for h in sim["hits"]} | {x["event_id"] for h in sim["hits"] for x in h["context"]}
    assert line3.event_id not in ids and own_scene.event_id not in ids  # its own moment is left out
    spans = [(h["video_id"], h["moment"]["start_sec"], h["moment"]["end_sec"]) for h in sim["hits"]]
    assert len(spans) == len(set(spans))
    by_score = c.get(f"/api/events/{line3.event_id}/similar?size=5&order=score").get_json()
    assert [h["score"] for h in by_score["hits"]] == sorted((h["score"] for h in by_score["hits"]), reverse=True)
    assert c.get(f"/api/events/{line3.event_id}/similar?order=random").status_code == 400
