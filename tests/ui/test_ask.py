"""POST /api/ask against an independent fake OpenAI-compatible server over HTTP: the request
carries labelled evidence and the JSON schema, citations come from the evidence only, plain
text answers work, a failing server gives the extractive answer, nothing relevant calls no
model; streaming; JSON clients need no CSRF token while forms still do."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.fakes.chat_server import ChatServer, chat_server
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings

MEETING = [
    (2.0, 6.0, "Good morning everyone, thanks for joining the planning call."),
    (9.0, 12.0, "The warehouse lease was signed on Tuesday."),
    (13.0, 16.0, "The delivery trucks arrive at seven in the morning."),
    (31.0, 35.0, "Maria will interview three candidates for the support team next week."),
    (62.0, 66.0, "We decided the road budget stays at four million euros."),
    (76.0, 80.0, "Please send your numbers to finance by Friday."),
]


def meeting(settings: Settings, emb: HashEmbedder, name: str = "planning-call.mp4",
            lines: list[tuple[float, float, str]] = MEETING) -> list[Any]:
    return add_video(settings, settings.watch_dir / name,
                     [{"start_sec": a, "end_sec": b, "dialogue": t, "description": f"Line: {t}", "source": "subtitle"}
                      for a, b, t in lines], emb)


def make_app(settings: Settings, emb: HashEmbedder, **over: Any) -> Flask:
    from search_ui import create_app

    return create_app(settings.model_copy(update=over), embedder_factory=lambda: emb)


def answer_json(text: str, cites: list[str]) -> str:
    return json.dumps({"answer": text, "citations": cites})


def label_of(srv: ChatServer, needle: str) -> str:
    """The label the request gave to the evidence containing ``needle``."""
    user = next(m["content"] for m in srv.requests[-1]["messages"] if m["role"] == "user")
    for block in user.split("\n\n"):
        m = re.match(r"\[(E\d+)\]", block)
        if m and needle in block.split("\n", 1)[1].split("just after")[0]:
            return m.group(1)
    raise AssertionError(f"{needle!r} is not in the evidence sent")


def test_the_request_carries_labelled_evidence_and_the_schema_and_citations_come_from_the_evidence(
        settings: Settings, hash_embedder: HashEmbedder) -> None:
    events = meeting(settings, hash_embedder)
    budget = next(e for e in events if "road budget" in e.dialogue)

    def reply(body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        lab = next(m.group(1) for m in re.finditer(r"^\[(E\d+)\][^\n]*\n(?:  just before:[^\n]*\n)?  ([^\n]*)",
                                                   user, re.MULTILINE) if "road budget" in m.group(2))
        return answer_json(f"They kept the road budget at four million euros [{lab}].", [lab])

    with chat_server(reply) as srv:
        app = make_app(settings, hash_embedder, llm_url=srv.url)
        r = app.test_client().post("/api/ask", json={"question": "What did they decide about the road budget?"})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    req = srv.requests[-1]
    assert req["response_format"]["type"] == "json_schema"
    schema = req["response_format"]["json_schema"]["schema"]
    assert set(schema["required"]) == {"answer", "citations"}
    assert req["messages"][0]["role"] == "system" and "only" in req["messages"][0]["content"]
    assert srv.evidence_labels() and "road budget" in req["messages"][-1]["content"]
    assert out["method"] == "llm" and out["model"] == "fake-chat-1"
    assert out["answer"] == "They kept the road budget at four million euros [1]."
    [cit] = out["citations"]
    assert cit["n"] == 1 and cit["event_id"] == budget.event_id
    assert (cit["start_sec"], cit["end_sec"]) == (62.0, 66.0) and cit["video_path"].endswith("planning-call.mp4")
    assert cit["clip_url"].startswith(f"/media/clip/{budget.event_id}#t=62.00")
    assert out["evidence_count"] >= 1


def test_a_label_that_was_not_given_is_dropped_and_the_rest_renumbered(
        settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: "") as srv:
        srv.reply = lambda body: answer_json(
            f"Trucks come at seven [E99] [{label_of(srv, 'trucks arrive')}].", ["E99", label_of(srv, "trucks arrive")])
        out = make_app(settings, hash_embedder, llm_url=srv.url).test_client().post(
            "/api/ask", json={"question": "When do the delivery trucks arrive?"}).get_json()
    assert out["answer"] == "Trucks come at seven [1]."
    assert [c["text"] for c in out["citations"]] == ["The delivery trucks arrive at seven in the morning."]
    assert "E99" not in json.dumps(out)


def test_a_plain_text_answer_with_markers_is_read(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: "") as srv:
        srv.reply = lambda body: f"Maria interviews three candidates next week [{label_of(srv, 'Maria')}]."
        out = make_app(settings, hash_embedder, llm_url=srv.url).test_client().post(
            "/api/ask", json={"question": "Who interviews the candidates for the support team?"}).get_json()
    assert out["method"] == "llm"
    assert out["answer"] == "Maria interviews three candidates next week [1]."
    assert [c["start_sec"] for c in out["citations"]] == [31.0]


def test_markers_are_read_in_every_form_models_write_them() -> None:
    from vidx.ask import read_answer

    labels = ["E1", "E2", "E3"]
    assert read_answer("A [E2]. B [E1, E3]. C [e2] [E7].", labels) == ("A [1]. B [2][3]. C [1].", ["E2", "E1", "E3"])
    assert read_answer('```json\n{"answer": "Yes [E3]", "citations": ["E3", "E1", "E9"]}\n```', labels) == (
        "Yes [1]", ["E3", "E1"])
    assert read_answer('{"answer": "cut short [E1', labels)[0].startswith("cut short")
    assert read_answer("The library does not say.", labels) == ("The library does not say.", [])


@pytest.mark.parametrize("failure", ["down", "garbage", "429", "slow"])
def test_a_model_that_fails_gives_the_extractive_answer_with_a_note(
        settings: Settings, hash_embedder: HashEmbedder, failure: str) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: '{"unrelated": true}' if failure == "garbage" else answer_json("x", [])) as srv:
        url = srv.url
        if failure == "429":
            srv.status = 429
        if failure == "slow":
            srv.delay = 2.0
        app = make_app(settings, hash_embedder, llm_url=url if failure != "down" else "http://127.0.0.1:9/v1",
                       llm_timeout=0.5 if failure == "slow" else 5.0)
        r = app.test_client().post("/api/ask", json={"question": "When do the delivery trucks arrive?"})
    assert r.status_code == 200
    out = r.get_json()
    assert out["method"] == "extractive" and out["note"]
    assert {"down": "cannot be reached", "garbage": "could not be read", "429": "busy (429)",
            "slow": "did not answer within"}[failure] in out["note"]
    assert out["citations"] and out["citations"][0]["text"] == "The delivery trucks arrive at seven in the morning."
    assert "“The delivery trucks arrive at seven in the morning.”" in out["answer"]


def test_nothing_relevant_answers_so_without_calling_the_model(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: answer_json("made up [E1]", ["E1"])) as srv:
        out = make_app(settings, hash_embedder, llm_url=srv.url).test_client().post(
            "/api/ask", json={"question": "Which volcano erupted last winter?"}).get_json()
        assert srv.requests == []
    assert out["citations"] == [] and out["evidence_count"] == 0
    assert "nothing on this" in out["answer"]


def test_without_a_model_the_answer_quotes_the_best_moments(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    out = c.post("/api/ask", json={"question": "what about the road budget"}).get_json()
    assert out["method"] == "extractive" and "note" not in out
    assert out["citations"][0]["text"] == "We decided the road budget stays at four million euros."
    assert out["answer"].startswith("[1] planning-call.mp4 01:02–01:06:")
    assert len(out["citations"]) <= 3


def test_the_answer_streams_as_ndjson(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: "") as srv:
        srv.reply = lambda body: answer_json(
            "The lease was signed on Tuesday, and the road budget stays at four million euros "
            f"[{label_of(srv, 'lease')}].", [label_of(srv, "lease")])
        r = make_app(settings, hash_embedder, llm_url=srv.url).test_client().post(
            "/api/ask", json={"question": "When was the warehouse lease signed?", "stream": True})
        body = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    items = [json.loads(line) for line in body.splitlines()]
    assert items[0]["type"] == "evidence" and items[0]["evidence_count"] >= 1
    deltas = [i["text"] for i in items if i["type"] == "delta"]
    assert len(deltas) > 3  # pieces, as the model wrote them
    assert "".join(deltas).startswith("The lease was signed on Tuesday, and the road budget")
    done = items[-1]
    assert done["type"] == "done" and done["citations"][0]["start_sec"] == 9.0
    assert done["answer"].endswith("four million euros [1].")


def test_the_filters_limit_the_evidence(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    meeting(settings, hash_embedder, "board-meeting.mp4",
            [(5.0, 9.0, "The board approved the road budget for next year."),
             (20.0, 24.0, "The trucks for the board arrive on Monday.")])
    c = make_app(settings, hash_embedder).test_client()
    both = c.post("/api/ask", json={"question": "road budget"}).get_json()
    assert {Path(x["video_path"]).name for x in both["citations"]} == {"planning-call.mp4", "board-meeting.mp4"}
    one = c.post("/api/ask", json={"question": "road budget", "video": "board-meeting.mp4"}).get_json()
    assert {Path(x["video_path"]).name for x in one["citations"]} == {"board-meeting.mp4"}
    late = c.post("/api/ask", json={"question": "road budget", "from": "1:00"}).get_json()
    assert [x["start_sec"] for x in late["citations"]] == [62.0]


@pytest.mark.parametrize("body, message", [
    ({}, "question"), ({"question": ""}, "question"), ({"question": "x" * 5000}, "question"),
    ({"question": "a", "source": "radio"}, "source"), ({"question": "a", "bogus": 1}, "bogus"),
])
def test_bad_requests_are_400_with_the_field_named(settings: Settings, hash_embedder: HashEmbedder,
                                                    body: dict[str, Any], message: str) -> None:
    meeting(settings, hash_embedder)
    r = make_app(settings, hash_embedder).test_client().post("/api/ask", json=body)
    assert r.status_code == 400 and message in r.get_json()["error"]
    r = make_app(settings, hash_embedder).test_client().post("/api/ask", data="question=x")
    assert r.status_code in (400, 403)


def test_json_clients_need_no_csrf_token_but_forms_still_do(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    c = make_app(settings, hash_embedder).test_client()
    assert c.post("/api/ask", json={"question": "road budget"}).status_code == 200
    # what a page on another site can send without a preflight: a form or text/plain body
    r = c.post("/api/ask", data=json.dumps({"question": "road budget"}), content_type="text/plain")
    assert r.status_code == 403 and "CSRF" in r.get_json()["error"]
    r = c.post("/api/requeue", data={"path": "/w/x.mp4"})
    assert r.status_code == 403


def test_script_in_a_question_or_a_cited_line_is_shown_as_text(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder, "evil.mp4", [(1.0, 4.0, "<script>alert('line')</script> budget review")])
    c = make_app(settings, hash_embedder).test_client()
    page = c.get("/ask", query_string={"q": "<script>alert('q')</script> budget review"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;line&#39;)&lt;/script&gt;" in html  # the cited line, escaped
    assert 'class="cite"' in html or "[1]" in html


def test_a_question_that_asks_two_things_gets_evidence_for_both(settings: Settings, hash_embedder: HashEmbedder) -> None:
    meeting(settings, hash_embedder)
    with chat_server(lambda body: "") as srv:
        srv.reply = lambda body: (f"Maria interviews [{label_of(srv, 'Maria')}]; numbers go to finance by Friday "
                                  f"[{label_of(srv, 'finance')}].")
        out = make_app(settings, hash_embedder, llm_url=srv.url).test_client().post(
            "/api/ask", json={"question": "Who interviews candidates for the support team, and when are the "
                                          "finance numbers due?"}).get_json()
    assert [c["start_sec"] for c in out["citations"]] == [31.0, 76.0]
    assert out["answer"] == "Maria interviews [1]; numbers go to finance by Friday [2]."
