"""Summaries and chapters of a video, through the HTTP API: chapters where the slide's title
changes, with and without a model (map-reduce on a fake OpenAI-compatible server), WebVTT and
plain chapter lists, the cache and its rebuild when the video's events change, and a question
about a whole video answered from its summary."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.fakes.chat_server import chat_server
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from tests.ui.test_ask import make_app
from vidx.config import Settings

SLIDES = [("Heat pumps in cold climates", "Efficiency falls below minus fifteen degrees"),
          ("Wind turbine maintenance", "Blades are inspected by drone"),
          ("Grid storage options", "Pumped hydro holds most capacity"),
          ("Solar panel recycling", "Silver is the valuable part")]
LINES = [(3.0, "Heat pumps move heat from cold outside air into the house."),
         (12.0, "In deep frost a heat pump needs help from a backup heater."),
         (24.0, "Turbine blades are checked by drones every spring."),
         (45.0, "Pumped hydro still holds most of the storage capacity on the grid."),
         (52.0, "Batteries answer the grid in milliseconds."),
         (66.0, "Recycling solar panels recovers glass, aluminium and silver.")]


def lecture(settings: Settings, emb: HashEmbedder, lines: list[tuple[float, str]] = LINES) -> str:
    evs: list[dict[str, Any]] = []
    for i, (title, body) in enumerate(SLIDES):  # two scenes per slide: the speaker moves, the slide stays
        for half in (0, 1):
            a = i * 20.0 + half * 10
            evs.append({"start_sec": a, "end_sec": a + 10, "source": "scene", "ocr_text": f"{title}\n{body}",
                        "description": f"Scene: slide. On-screen text: {title} {body}."})
    evs += [{"start_sec": t, "end_sec": t + 4, "source": "speech", "dialogue": d, "description": f"Line: {d}"}
            for t, d in lines]
    return add_video(settings, settings.watch_dir / "energy-lecture.mp4", evs, emb)[0].video_id


def test_chapters_follow_the_slide_titles_and_the_summary_quotes_central_lines(
        settings: Settings, hash_embedder: HashEmbedder) -> None:
    vid = lecture(settings, hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    out = c.get(f"/api/videos/{vid}/summary").get_json()
    assert out["method"] == "extractive" and out["video_id"] == vid
    assert [(ch["start_sec"], ch["end_sec"], ch["title"]) for ch in out["chapters"]] == [
        (0.0, 20.0, "Heat pumps in cold climates"), (20.0, 40.0, "Wind turbine maintenance"),
        (40.0, 60.0, "Grid storage options"), (60.0, 80.0, "Solar panel recycling")]
    said = [d for _, d in LINES]
    picked = [s for s in said if s in out["summary"]]
    assert len(picked) == 3 and out["summary"] == " ".join(picked)  # three real lines, in time order

    vtt = c.get(f"/api/videos/{vid}/chapters?format=vtt")
    assert vtt.mimetype == "text/vtt"
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+)", vtt.get_data(as_text=True))
    assert cues[1] == ("00:00:20.000", "00:00:40.000", "Wind turbine maintenance")
    txt = c.get(f"/api/videos/{vid}/chapters?format=txt").get_data(as_text=True)
    assert txt.splitlines() == ["00:00 Heat pumps in cold climates", "00:20 Wind turbine maintenance",
                                "00:40 Grid storage options", "01:00 Solar panel recycling"]
    assert c.get(f"/api/videos/{vid}/chapters?format=pdf").status_code == 400
    assert c.get(f"/api/videos/{'0' * 32}/summary").status_code == 404
    assert c.get("/api/videos/nothex/summary").status_code == 404


def test_with_a_model_map_reduce_titles_the_chapters_and_times_stay_from_the_video(
        settings: Settings, hash_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidx.summary

    monkeypatch.setattr(vidx.summary, "STRETCH_CHARS", 150)  # several map steps, then a reduce
    vid = lecture(settings, hash_embedder)

    def reply(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        labels = re.findall(r"^\[(S\d+)\] (\d\d:\d\d)", user, re.MULTILINE)
        if labels:
            return json.dumps({"summary": f"Part about {len(labels)} slides.",
                               "titles": [{"label": lab, "title": f"Model title {lab} at 99:99"} for lab, _ in labels]
                               + [{"label": "S77", "title": "not a chapter"}]})
        return json.dumps({"summary": "A lecture on heating, wind, storage and recycling."})

    with chat_server(reply) as srv:
        c = make_app(settings, hash_embedder, llm_url=srv.url).test_client()
        out = c.get(f"/api/videos/{vid}/summary").get_json()
        calls = len(srv.requests)
        again = c.get(f"/api/videos/{vid}/summary").get_json()
        assert len(srv.requests) == calls  # cached: no new call
    assert out["method"] == "llm" and out["model"] == "fake-chat-1" and not out["cached"] and again["cached"]
    assert out["summary"] == "A lecture on heating, wind, storage and recycling."
    assert calls >= 3 and all(r["response_format"]["type"] == "json_schema" for r in srv.requests)
    assert [(ch["start_sec"], ch["title"]) for ch in out["chapters"]] == [
        (0.0, "Model title S1 at 99:99"), (20.0, "Model title S2 at 99:99"), (40.0, "Model title S3 at 99:99"),
        (60.0, "Model title S4 at 99:99")]


def test_a_summary_is_made_again_when_the_video_changes_and_a_failing_model_is_not_cached(
        settings: Settings, hash_embedder: HashEmbedder) -> None:
    vid = lecture(settings, hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    first = c.get(f"/api/videos/{vid}/summary").get_json()
    assert c.get(f"/api/videos/{vid}/summary").get_json()["cached"]
    lecture(settings, hash_embedder, [(5.0, "Geothermal wells reach hot rock far below the city."),
                                      (25.0, "Geothermal heat runs the city's district heating.")])
    changed = c.get(f"/api/videos/{vid}/summary").get_json()
    assert not changed["cached"] and changed["summary"] != first["summary"] and "Geothermal" in changed["summary"]

    with chat_server(lambda body: "") as srv:
        srv.status = 503
        c2 = make_app(settings, hash_embedder, llm_url=srv.url).test_client()
        out = c2.get(f"/api/videos/{vid}/summary").get_json()
        assert out["method"] == "extractive" and "503" in out["note"]
        srv.status = 200
        srv.reply = lambda body: json.dumps({"summary": "Now it works.", "titles": []})
        assert c2.get(f"/api/videos/{vid}/summary").get_json()["summary"] == "Now it works."


def test_a_question_about_a_whole_video_is_answered_from_its_summary(
        settings: Settings, hash_embedder: HashEmbedder) -> None:
    vid = lecture(settings, hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    out = c.post("/api/ask", json={"question": "Summarise this lecture", "video": vid}).get_json()
    assert out["citations"][0]["kind"] == "summary"
    assert out["citations"][0]["start_sec"] == 0.0 and out["citations"][0]["end_sec"] == 80.0
    summ = c.get(f"/api/videos/{vid}/summary").get_json()["summary"]
    assert out["answer"].startswith(summ)


def test_the_video_page_asks_about_that_video_only(settings: Settings, hash_embedder: HashEmbedder) -> None:
    vid = lecture(settings, hash_embedder)
    add_video(settings, settings.watch_dir / "other.mp4",
              [{"start_sec": 1.0, "end_sec": 4.0, "source": "speech", "dialogue": "Heat pumps are loud in winter."}],
              hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    page = c.get(f"/videos/{vid}").get_data(as_text=True)
    assert f'name="video" value="{vid}"' in page and 'action="/ask"' in page
    html = c.get("/ask", query_string={"q": "heat pumps", "video": vid}).get_data(as_text=True)
    assert "energy-lecture.mp4" in html and "other.mp4" not in html.split('class="citations"')[1]
