"""The video page, similar moments, the status page and the JSON API behind them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import XSS, add_video
from vidx.config import Settings
from vidx.ledger import Ledger


@pytest.fixture
def lib(app: Flask, settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> tuple[Flask, list, list]:
    a = settings.watch_dir / "talk.mp4"
    shutil.copy(talk_video, a)
    evs = add_video(settings, a, [
        {"start_sec": 0.0, "end_sec": 8.0, "description": "A red room with a harbour map", "source": "scene"},
        {"start_sec": 1.0, "end_sec": 4.0, "dialogue": "Welcome aboard, everyone.", "source": "subtitle"},
        {"start_sec": 26.0, "end_sec": 29.0, "dialogue": "The lighthouse keeper climbed the stairs at dawn.",
         "source": "speech", "language": "en"},
        {"start_sec": 12.0, "end_sec": 13.0, "dialogue": XSS[0] + XSS[2], "source": "speech"},
    ], hash_embedder)
    b = settings.watch_dir / "other.mp4"
    b.write_bytes(b"x")
    others = add_video(settings, b, [
        {"start_sec": 3.0, "end_sec": 6.0, "dialogue": "The keeper of the lighthouse climbed the stairs.",
         "source": "speech"},
    ], hash_embedder)
    return app, evs, others


def test_video_api(lib: tuple[Flask, list, list]) -> None:
    app, evs, _ = lib
    c = app.test_client()
    vid = evs[0].video_id
    all_videos = c.get("/api/videos").get_json()
    assert all_videos["total"] == 2 and {v["name"] for v in all_videos["videos"]} == {"talk.mp4", "other.mp4"}
    v = c.get(f"/api/videos/{vid}").get_json()
    assert v["name"] == "talk.mp4" and v["state"] == "done" and v["page_url"] == f"/videos/{vid}"
    events = c.get(f"/api/videos/{vid}/events").get_json()["events"]
    assert [e["start_sec"] for e in events] == sorted(e["start_sec"] for e in events) and len(events) == 4
    one = c.get(f"/api/events/{evs[2].event_id}").get_json()
    assert one["dialogue"].startswith("The lighthouse keeper") and one["clip_url"].startswith("/media/clip/")
    for url in (f"/api/videos/{'0' * 32}", f"/api/videos/{'0' * 32}/events", f"/api/events/{'0' * 32}",
                f"/api/events/{'0' * 32}/similar", "/api/videos/..%2f..%2fetc", "/api/events/<script>"):
        r = c.get(url)
        assert r.status_code == 404 and r.is_json and "error" in r.get_json(), url
    assert c.get("/api/videos?limit=abc").status_code == 400
    assert c.get(f"/api/events/{evs[2].event_id}/similar?size=x").status_code == 400


def test_more_like_this_finds_the_same_moment_in_another_video(lib: tuple[Flask, list, list]) -> None:
    app, evs, others = lib
    res = app.test_client().get(f"/api/events/{evs[2].event_id}/similar?size=5").get_json()
    ids = [h["event_id"] for h in res["hits"]]
    assert evs[2].event_id not in ids  # not itself
    assert ids[0] == others[0].event_id and 0 <= res["hits"][0]["score"] <= 1
    page = app.test_client().get(f"/similar/{evs[2].event_id}")
    assert page.status_code == 200 and b"Moments like" in page.data and b"keeper of the lighthouse" in page.data


def test_video_page_has_player_timeline_events_and_transcript(lib: tuple[Flask, list, list]) -> None:
    app, evs, _ = lib
    vid = evs[0].video_id
    r = app.test_client().get(f"/videos/{vid}?t=26")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f'src="/media/video/{vid}#t=26.00"' in html
    assert html.count('class="tl-event') == 4 and html.count('class="line"') == 3  # 2 speech + 1 subtitle lines
    assert 'class="ev src-speech current"' in html  # the event at 26 s
    assert "<script>alert" not in html and "&lt;script&gt;" in html  # model/subtitle text is escaped
    assert f"/api/videos/{vid}/transcript?format=srt" in html
    assert app.test_client().get(f"/videos/{'0' * 32}").status_code == 404
    assert app.test_client().get("/videos/not-an-id").status_code == 404
    assert app.test_client().get(f"/videos/{vid}?t=abc").status_code == 200


def test_whole_video_is_served_for_the_video_page(lib: tuple[Flask, list, list], settings: Settings) -> None:
    app, evs, others = lib
    c = app.test_client()
    r = c.get(f"/media/video/{evs[0].video_id}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.mimetype == "video/mp4" and len(r.data) == 100
    assert c.get(f"/media/video/{others[0].video_id}").status_code == 415  # not a playable file
    assert c.get(f"/media/video/{'0' * 32}").status_code == 404


def test_status_page_lists_files_with_progress_and_reasons(lib: tuple[Flask, list, list], settings: Settings) -> None:
    app, _, _ = lib
    ledger = Ledger(settings.ledger_path)
    ledger.observe("/w/broken.mp4", 1, 1, "")
    ledger.set("/w/broken.mp4", state="failed", error="not a readable video <b>x</b>")
    ledger.observe("/w/busy.mp4", 1, 1, "")
    ledger.set("/w/busy.mp4", state="processing", progress=0.42, message="speech 00:20 of 03:00, ETA 00:40")
    html = app.test_client().get("/status").get_data(as_text=True)
    assert "broken.mp4" in html and "not a readable video &lt;b&gt;x&lt;/b&gt;" in html
    assert 'value="0.420"' in html and "speech 00:20 of 03:00, ETA 00:40" in html
    assert HashEmbedder().model_id in html and "1 failed" in html  # the model the store's vectors are of
    ledger.observe("/w/done.mp4", 3 * 1024 * 1024, 1, "")
    ledger.set("/w/done.mp4", state="done", duration_sec=185.0, created_at=1_780_000_000.0,
               started_at=1_780_000_100.0, finished_at=1_780_000_112.5, seconds_spent=12.5)
    html = app.test_client().get("/status").get_data(as_text=True)
    row = html[html.index('data-path="/w/done.mp4"'):].split("</tr>")[0]
    for shown in ("5/28/26, 8:26\u202fPM", "03:05", "3.0 MB", "12.5 s"):
        assert shown in row, shown
    status = app.test_client().get("/api/status").get_json()
    done = next(v for v in status["videos"] if v["path"].endswith("done.mp4"))
    assert done["finished_at"] == "2026-05-28T20:28:32+00:00" and done["seconds_spent"] == 12.5
    busy = next(v for v in status["videos"] if v["path"].endswith("busy.mp4"))
    assert busy["message"].startswith("speech") and busy["progress"] == 0.42


def test_filters_with_counts_pages_and_time_range(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    v = settings.watch_dir / "many.mp4"
    v.write_bytes(b"x")
    add_video(settings, v, [{"start_sec": float(i * 10), "end_sec": float(i * 10 + 5),
                             "dialogue": f"harbour report number {i}", "source": "speech" if i % 2 else "subtitle",
                             "language": "en", "people": ["Maria"] if i < 3 else []} for i in range(12)],
              hash_embedder)
    c = app.test_client()
    r = c.get("/api/search", query_string={"q": "harbour report", "mode": "keyword", "size": 5}).get_json()
    assert r["total"] == 12 and r["pages"] == 3 and len(r["hits"]) == 5
    assert dict(r["facets"]["source"]) == {"speech": 6, "subtitle": 6} and dict(r["facets"]["person"]) == {"Maria": 3}
    p3 = c.get("/api/search", query_string={"q": "harbour report", "mode": "keyword", "size": 5, "page": 3}).get_json()
    assert len(p3["hits"]) == 2 and not {h["event_id"] for h in p3["hits"]} & {h["event_id"] for h in r["hits"]}
    ranged = c.get("/api/search", query_string={"q": "harbour report", "mode": "keyword", "from": "0:30",
                                                "to": "61"}).get_json()
    assert sorted(h["start_sec"] for h in ranged["hits"]) == [30.0, 40.0, 50.0, 60.0]
    today = dict(r["facets"]["added"])
    (day, n), = today.items()
    assert n == 12
    same = c.get("/api/search", query_string={"q": "harbour report", "mode": "keyword", "added_from": day,
                                              "added_to": day}).get_json()
    later = c.get("/api/search", query_string={"q": "harbour report", "mode": "keyword",
                                               "added_from": "2999-01-01"}).get_json()
    assert same["total"] == 12 and later["total"] == 0
    for bad in ({"page": "0"}, {"page": "x"}, {"from": "abc"}, {"to": "-5"}, {"added_from": "yesterday"}):
        assert c.get("/api/search", query_string={"q": "harbour", **bad}).status_code == 400, bad
    html = c.get("/", query_string={"q": "harbour report", "mode": "keyword", "size": 5}).get_data(as_text=True)
    assert "source:speech" in html and 'rel="next"' in html and "page 1 of 3" in html


def test_a_search_whose_filters_allow_no_event_says_so_on_the_page_and_in_the_api(
        lib: tuple[Flask, list, list]) -> None:
    app, _, _ = lib
    c = app.test_client()
    page = c.get("/", query_string={"q": "lighthouse lang:fr"}).get_data(as_text=True)
    assert "No indexed event passes the filters of this search" in page and "Nothing relevant" not in page
    r = c.get("/api/search", query_string={"q": "lighthouse video:nosuch.mp4", "mode": "keyword"}).get_json()
    assert (r["total"], r["filter_total"]) == (0, 0)
    # words that match nothing inside filters that allow events: the usual answer
    page = c.get("/", query_string={"q": "zqxjv video:talk.mp4"}).get_data(as_text=True)
    assert "Nothing relevant" in page and "passes the filters" not in page
    r = c.get("/api/search", query_string={"q": "zqxjv video:talk.mp4", "mode": "keyword"}).get_json()
    assert (r["total"], r["filter_total"]) == (0, 4)
