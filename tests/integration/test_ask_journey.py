"""Asking, as a user meets it: `vidx run` indexes a generated meeting (synthetic speech, the
bundled recogniser), a plain JSON POST /api/ask (no token, as curl sends it) gets an answer
whose citation is the spoken line's moment and plays; an unanswerable question calls no
model; `vidx ask` answers without a model. A generated lecture gets slide-title chapters and
a summary from `vidx summary`, with and without a model."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz

from tests.fakes.chat_server import chat_server
from tests.integration.test_journeys import Running, base_env, get_json, send_json, vidx, wait_for

pytestmark = pytest.mark.slow


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    return send_json(url, "POST", body)


def cite_line_with(word: str) -> Any:
    """A model that answers with the evidence item whose text holds ``word`` (the test's own
    reading of the request, not vidx's)."""
    def reply(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        for block in user.split("\n\n"):
            m = re.match(r"\[(E\d+)\]", block)
            if m and word in block.lower():
                return json.dumps({"answer": f"At seven in the morning [{m.group(1)}].", "citations": [m.group(1)]})
        return json.dumps({"answer": "The library does not say.", "citations": []})
    return reply


def test_a_question_about_a_meeting_cites_the_spoken_line_and_plays_it(tmp_path: Path) -> None:
    from tests.media import espeak_available, make_speech_video, meeting_lines

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; make test does it)")
    lines = meeting_lines()
    said_at = next(t for t, text in lines if text.startswith("The trucks arrive"))
    meeting = make_speech_video(tmp_path / "planning.mp4", lines, 90.0)
    with chat_server(cite_line_with("truck")) as srv:
        env = base_env(tmp_path, VIDX_LLM_URL=srv.url)
        env.pop("VIDX_ANALYZER")
        run = Running(env)
        try:
            (tmp_path / "watch").mkdir(exist_ok=True)
            shutil.copy(meeting, tmp_path / "watch" / "planning.mp4")
            wait_for(lambda: run.status().get("planning.mp4") == "done", 240, "planning.mp4 indexed", run.proc)
            code, out = post(run.url + "/api/ask", {"question": "When do the trucks arrive?"})
            assert code == 200, out
            assert out["method"] == "llm" and out["answer"] == "At seven in the morning [1]."
            [cit] = out["citations"]
            assert abs(cit["start_sec"] - said_at) <= 1.0, (cit, said_at)
            assert "truck" in cit["text"].lower() and cit["video_path"].endswith("planning.mp4")
            with urllib.request.urlopen(run.url + cit["clip_url"].split("#")[0], timeout=60) as r:
                assert r.status in (200, 206) and r.headers["Content-Type"].startswith("video/")
                assert len(r.read(1024)) == 1024
            asked = len(srv.requests)
            code, none = post(run.url + "/api/ask", {"question": "What is the capital city of Peru?"})
            assert code == 200 and none["citations"] == [] and none["evidence_count"] == 0
            assert len(srv.requests) == asked  # nothing relevant: no model call
            code, summ = get_json(f"{run.url}/api/videos/{cit['video_id']}/summary")
            assert code == 200 and summ["summary"]
        finally:
            run.stop()
    env = base_env(tmp_path, VIDX_LLM_URL="off")
    res = vidx(env, "ask", "When do the trucks arrive?", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["method"] == "extractive" and abs(out["citations"][0]["start_sec"] - said_at) <= 1.0
    plain = vidx(env, "ask", "When do the trucks arrive?")
    assert plain.returncode == 0 and "[1] planning.mp4" in plain.stdout


def test_a_lecture_gets_slide_title_chapters_and_a_summary_with_and_without_a_model(tmp_path: Path) -> None:
    from tests.media import make_lecture

    watch = tmp_path / "watch"
    watch.mkdir()
    slides = make_lecture(watch / "energy.mp4", 80.0, size=(960, 540))
    env = base_env(tmp_path, VIDX_OCR="true", VIDX_ASR="off", VIDX_LLM_URL="off")
    res = vidx(env, "index", str(watch / "energy.mp4"), "-q")
    assert res.returncode == 0, res.stderr
    res = vidx(env, "summary", str(watch / "energy.mp4"), "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["method"] == "extractive"
    got = [(c["start_sec"], c["title"]) for c in out["chapters"]]
    assert len(got) == len(slides), got
    for (start, title), (want_start, want_title) in zip(got, slides):
        assert abs(start - want_start) <= 1.0 and fuzz.ratio(title.lower(), want_title.lower()) >= 85, (got, slides)
    txt = vidx(env, "summary", str(watch / "energy.mp4"), "--format", "txt").stdout.splitlines()
    assert txt[0].startswith("00:00 ") and txt[1].startswith("00:20 ")

    def reply(body: dict[str, Any]) -> str:
        labels = re.findall(r"^\[(S\d+)\]", body["messages"][-1]["content"], re.MULTILINE)
        if labels:
            return json.dumps({"summary": "An energy lecture.",
                               "titles": [{"label": lab, "title": f"Part {lab[1:]}"} for lab in labels]})
        return json.dumps({"summary": "An energy lecture in four parts."})

    with chat_server(reply) as srv:
        res = vidx({**env, "VIDX_LLM_URL": srv.url}, "summary", str(watch / "energy.mp4"), "--format", "json")
    assert res.returncode == 0, res.stderr
    llm = json.loads(res.stdout)
    assert llm["method"] == "llm" and llm["summary"].startswith("An energy lecture")
    assert [c["title"] for c in llm["chapters"]] == [f"Part {i}" for i in range(1, len(slides) + 1)]
    assert [c["start_sec"] for c in llm["chapters"]] == [c["start_sec"] for c in out["chapters"]]
