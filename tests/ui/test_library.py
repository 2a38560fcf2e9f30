"""The library: every video as a card, sorted, filtered and paged, on a library far larger
than one page (GET /api/videos and /library)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.schema import Event, event_id_for
from vidx.store.embedded import EmbeddedStore

N_DONE, N_FAILED, N_PENDING = 131, 6, 3
T0 = 1_780_000_000.0


def _lang(i: int) -> str:
    return "zh" if i % 5 == 0 else ("" if i % 7 == 0 else "en")


def make_library(settings: Settings, emb: HashEmbedder) -> dict[str, Any]:
    """131 indexed videos (events in English, Chinese or no language), 6 failed, 3 pending;
    each added a minute after the one before, in an order unlike the names'."""
    store = EmbeddedStore(settings.store_path)
    store.ensure_schema(emb.model_id, emb.dims)
    ledger = Ledger(settings.ledger_path)
    truth: dict[str, Any] = {"videos": {}}
    order = [(i * 37) % N_DONE for i in range(N_DONE)]  # added order is a permutation of the names
    for rank, i in enumerate(order):
        path = str(settings.watch_dir / f"talk-{i:03d}.mp4")
        vid = f"{i:032x}"
        n = 1 + i % 4
        events = []
        for k in range(n):
            e = Event(event_id=event_id_for(vid, "t", float(k), k + 1.0, k), video_id=vid, video_path=path,
                      start_sec=float(k), end_sec=k + 1.0, dialogue=f"line {k} of talk {i}", source="subtitle",
                      language=_lang(i) if k == 0 or _lang(i) != "zh" else "en")
            e.embedding = [float(x) for x in emb.embed_query(e.embedding_text())]
            events.append(e)
        store.replace_video_events(vid, events)
        ledger.observe(path, 1000 + i, 1, "")
        ledger.set(path, state="done", video_id=vid, events=n, progress=1.0, duration_sec=60.0 + i,
                   created_at=T0 + 60 * rank)
        langs = sorted({e.language for e in events if e.language})
        truth["videos"][f"talk-{i:03d}.mp4"] = {"added": T0 + 60 * rank, "langs": langs, "state": "done",
                                                "events": n, "duration": 60.0 + i}
    for j in range(N_FAILED + N_PENDING):
        name = f"broken-{j}.mp4" if j < N_FAILED else f"waiting-{j}.mp4"
        path = str(settings.watch_dir / name)
        ledger.observe(path, 5, 1, "")
        state = "failed" if j < N_FAILED else "pending"
        ledger.set(path, state=state, error="the file is empty" if state == "failed" else None,
                   created_at=T0 + 60 * (N_DONE + j))
        truth["videos"][name] = {"added": T0 + 60 * (N_DONE + j), "langs": [], "state": state, "events": 0,
                                 "duration": None}
    return truth


@pytest.fixture
def library(settings: Settings, hash_embedder: HashEmbedder) -> tuple[Flask, dict[str, Any]]:
    from search_ui import create_app

    truth = make_library(settings, hash_embedder)
    return create_app(settings, embedder_factory=lambda: hash_embedder), truth


def _all_pages(c: Any, query: str, size: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    first = c.get(f"/api/videos?{query}&size={size}").get_json()
    out = list(first["videos"])
    for page in range(2, first["pages"] + 1):
        out += c.get(f"/api/videos?{query}&size={size}&page={page}").get_json()["videos"]
    return out, first


def test_library_api_pages_sorts_and_filters_every_video(library: tuple[Flask, dict[str, Any]]) -> None:
    app, truth = library
    c = app.test_client()
    everything = truth["videos"]
    # newest first by default, every video once across all pages, the last page partly full
    got, first = _all_pages(c, "sort=newest", 25)
    assert first["total"] == len(everything) == 140 and first["pages"] == 6
    assert len(c.get("/api/videos?size=25&page=6").get_json()["videos"]) == 140 - 5 * 25
    assert [v["name"] for v in got] == sorted(everything, key=lambda n: -everything[n]["added"])
    assert c.get("/api/videos?size=25&page=7").get_json()["videos"] == []
    # by name, oldest, longest, most events
    assert [v["name"] for v in _all_pages(c, "sort=name", 40)[0]] == sorted(everything, key=str.casefold)
    assert [v["name"] for v in _all_pages(c, "sort=oldest", 40)[0]] == sorted(everything, key=lambda n: everything[n]["added"])
    longest = [v["duration_sec"] for v in _all_pages(c, "sort=longest", 40)[0]]
    assert longest[:N_DONE] == sorted((everything[n]["duration"] for n in everything if everything[n]["duration"]),
                                      reverse=True) and longest[N_DONE:] == [None] * 9
    assert [v["events"] for v in _all_pages(c, "sort=events", 40)[0]] == sorted(
        (everything[n]["events"] for n in everything), reverse=True)
    # filters: state, language, name; the facets are counts of the name search's videos
    failed, meta = _all_pages(c, "state=failed", 4)
    assert meta["total"] == N_FAILED and {v["name"] for v in failed} == {n for n in everything if n.startswith("broken")}
    assert all(v["error"] == "the file is empty" and v["page_url"] is None for v in failed)
    zh, meta = _all_pages(c, "lang=zh", 10)
    assert {v["name"] for v in zh} == {n for n, t in everything.items() if "zh" in t["langs"]}
    assert dict(map(tuple, meta["facets"]["language"])) == {
        "en": sum("en" in t["langs"] for t in everything.values()),
        "zh": sum("zh" in t["langs"] for t in everything.values())}
    assert dict(map(tuple, meta["facets"]["state"])) == {"done": N_DONE, "failed": N_FAILED, "pending": N_PENDING}
    named, meta = _all_pages(c, "q=TALK-01", 200)
    assert sorted(v["name"] for v in named) == [f"talk-{i:03d}.mp4" for i in range(10, 20)]
    assert dict(map(tuple, meta["facets"]["state"])) == {"done": 10}
    one = next(v for v in got if v["name"] == "talk-005.mp4")
    assert one["languages"] == ["en", "zh"] and one["page_url"] == f"/videos/{5:032x}"
    assert one["added_at"].endswith("+00:00") and one["size_bytes"] == 1005
    # the older offset/limit form still pages
    assert c.get("/api/videos?limit=25&offset=50").get_json()["page"] == 3
    for bad, word in (("sort=random", "sort"), ("state=gone", "state"), ("page=0", "page"), ("size=5000", "size"),
                      ("limit=abc", "whole")):
        r = c.get(f"/api/videos?{bad}")
        assert r.status_code == 400 and word in r.get_json()["error"], bad


def test_library_page_shows_cards_pages_and_is_linked_from_every_page(library: tuple[Flask, dict[str, Any]]) -> None:
    app, truth = library
    c = app.test_client()
    html = c.get("/library?sort=name&page=2").get_data(as_text=True)
    names = re.findall(r'<span class="card-name">([^<]+)</span>', html)
    assert names == sorted(truth["videos"], key=str.casefold)[24:48]
    assert 'rel="prev"' in html and 'rel="next"' in html and "page 2 of 6" in html
    assert 'href="/videos/' in html and "/media/poster/" not in html  # no thumbnails were made: no broken images
    html = c.get("/library?state=failed").get_data(as_text=True)
    assert html.count('class="card state-failed"') == N_FAILED and "the file is empty" in html
    assert c.get("/library?sort=sideways").status_code == 400
    assert "No video matches" in c.get("/library?q=nothing-like-this").get_data(as_text=True)
    for url in ("/", "/status", "/library", f"/videos/{5:032x}"):
        assert 'href="/library"' in c.get(url).get_data(as_text=True), url


def test_a_poster_is_the_most_detailed_thumbnail(library: tuple[Flask, dict[str, Any]], settings: Settings) -> None:
    app, _ = library
    c = app.test_client()
    vid = f"{5:032x}"
    folder = settings.thumbs_dir / vid
    folder.mkdir(parents=True)
    (folder / f"{'a' * 32}.jpg").write_bytes(b"\xff\xd8" + b"0" * 100)
    (folder / f"{'b' * 32}.jpg").write_bytes(b"\xff\xd8" + b"1" * 5000)
    listed = next(v for v in c.get("/api/videos?q=talk-005").get_json()["videos"])
    assert listed["poster_url"] == f"/media/poster/{vid}.jpg"
    r = c.get(f"/media/poster/{vid}.jpg")
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and len(r.data) == 5002
    assert c.get(f"/media/poster/{6:032x}.jpg").status_code == 404
    assert c.get("/media/poster/..%2f..%2fetc.jpg").status_code == 404


def test_store_languages_per_video_agree_with_the_events(library: tuple[Flask, dict[str, Any]],
                                                        settings: Settings) -> None:
    _, truth = library
    langs = EmbeddedStore(settings.store_path).video_languages()
    assert {f"talk-{int(v, 16):03d}.mp4": ls for v, ls in langs.items()} == {
        n: t["langs"] for n, t in truth["videos"].items() if t["state"] == "done"}
