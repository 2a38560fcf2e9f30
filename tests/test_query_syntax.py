"""Query syntax: each form works, and hostile forms answer with results or a clear 400, never 500."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings
from vidx.query import parse


def test_parse_each_form() -> None:
    q = parse('"lighthouse keeper" dawn -storm person:"old tom" source:speech lang:zh video:talk')
    assert q.phrases == ["lighthouse keeper"] and q.exclude == ["storm"] and q.person == ["old tom"]
    assert q.source == ["speech"] and q.lang == ["zh"] and q.video == ["talk"]
    assert q.text == "lighthouse keeper dawn"


@pytest.mark.parametrize("raw", ['unbalanced "quote here', "lone - dash", "person:", "source:", "-", '""', "::::",
                                 "foo:bar baz", "source:movie", "-" * 50, '"' * 7, "person:" * 500])
def test_broken_syntax_is_plain_text(raw: str) -> None:
    q = parse(raw)
    assert isinstance(q.text, str)  # never raises


@pytest.fixture
def library(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> Flask:
    a = settings.watch_dir / "harbour.mp4"
    b = settings.watch_dir / "meeting.mp4"
    for p in (a, b):
        p.write_bytes(b"x")
    add_video(settings, a, [
        {"start_sec": 1, "end_sec": 3, "dialogue": "The lighthouse keeper climbed the stairs", "source": "speech",
         "language": "en", "people": ["Old Tom"]},
        {"start_sec": 5, "end_sec": 8, "dialogue": "The keeper of the lighthouse slept during the storm",
         "source": "subtitle", "language": "en"},
        {"start_sec": 9, "end_sec": 12, "dialogue": "灯塔看守人爬上楼梯", "source": "subtitle", "language": "zh"},
    ], hash_embedder)
    add_video(settings, b, [
        {"start_sec": 2, "end_sec": 4, "dialogue": "The lighthouse budget was approved", "source": "speech",
         "language": "en", "people": ["Maria"]},
    ], hash_embedder)
    return app


def texts(app: Flask, q: str, mode: str = "keyword") -> list[str]:
    r = app.test_client().get("/api/search", query_string={"q": q, "mode": mode, "min_score": 0})
    assert r.status_code == 200, r.get_json()
    return [h["dialogue"] for h in r.get_json()["hits"]]


def test_each_form_filters(library: Flask) -> None:
    assert texts(library, '"lighthouse keeper"') == ["The lighthouse keeper climbed the stairs"]
    assert "The keeper of the lighthouse slept during the storm" not in texts(library, "lighthouse keeper -storm")
    assert texts(library, "lighthouse person:maria") == ["The lighthouse budget was approved"]
    assert all("budget" not in t for t in texts(library, "lighthouse video:harbour"))
    assert texts(library, "lighthouse source:subtitle") == ["The keeper of the lighthouse slept during the storm"]
    assert texts(library, "灯塔 lang:zh") == ["灯塔看守人爬上楼梯"]
    assert texts(library, "灯塔 lang:en") == []


@pytest.mark.parametrize("q", ['lighthouse "unbalanced', "-", "person:", "source:", 'video:"', "- - -",
                               "(" * 100, '"-person:"' * 100, ("-x person: \"a b\" lang: " * 400)[:4000]])
@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_hostile_syntax_never_fails(library: Flask, q: str, mode: str) -> None:
    r = library.test_client().get("/api/search", query_string={"q": q, "mode": mode})
    assert r.status_code in (200, 400) and r.is_json


def test_too_long_query_and_bad_threshold_are_clear_400s(library: Flask) -> None:
    c = library.test_client()
    r = c.get("/api/search", query_string={"q": "x" * 4001})
    assert r.status_code == 400 and "too long" in r.get_json()["error"]
    for bad in ("2", "-0.1", "nan", "abc"):
        r = c.get("/api/search", query_string={"q": "x", "min_score": bad})
        assert r.status_code == 400 and "min_score" in r.get_json()["error"], bad


def test_scores_are_in_0_1_and_the_threshold_hides_weak_hits(library: Flask) -> None:
    c = library.test_client()
    for mode in ("keyword", "semantic", "hybrid"):
        hits = c.get("/api/search", query_string={"q": "lighthouse keeper", "mode": mode,
                                                  "min_score": 0}).get_json()["hits"]
        assert hits and all(0.0 <= h["score"] <= 1.0 for h in hits)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    strict = c.get("/api/search", query_string={"q": "lighthouse keeper stairs", "mode": "keyword",
                                                 "min_score": 0.7}).get_json()
    assert [h["dialogue"] for h in strict["hits"]] == ["The lighthouse keeper climbed the stairs"]
    assert strict["below_threshold"] >= 1 and strict["min_score"] == 0.7
