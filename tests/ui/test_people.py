"""People through the HTTP API on a library larger than any window: hundreds of lines per
speaker, named, hidden, merged and deleted; the daemon's name sync (run here directly) puts
the names into the stored events, and search, facets and transcripts follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import XSS, add_video
from vidx.config import Settings
from vidx.people import PeopleDB, VoicePrint
from vidx.people_sync import sync_pending
from vidx.schema import Event
from vidx.store.embedded import EmbeddedStore

LINES_A = (300, 120)  # lines of speaker 0 and 1 in video A
LINES_B = (200, 80)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(256).astype(np.float32)
    return v / np.linalg.norm(v)


def speech(n0: int, n1: int, words: tuple[str, str]) -> list[dict[str, object]]:
    out = []
    for i in range(n0 + n1):
        who = 0 if i < n0 else 1
        t = float(i * 3)
        out.append({"start_sec": t, "end_sec": t + 2.5, "source": "speech",
                    "dialogue": f"{words[who]} line {i} about the budget", "description": f"Spoken: line {i}"})
    return out


@pytest.fixture
def library(app: Flask, settings: Settings, hash_embedder: HashEmbedder, tmp_path: Path) -> dict[str, object]:
    ada, bob, cy = unit(1), unit(2), unit(3)
    near_ada = ada + 0.15 * unit(9)
    near_ada /= np.linalg.norm(near_ada)
    a = add_video(settings, tmp_path / "standup.mp4", speech(*LINES_A, ("alpha", "bravo")), hash_embedder)
    b = add_video(settings, tmp_path / "review.mp4", speech(*LINES_B, ("alpha", "charlie")), hash_embedder)
    db = PeopleDB(settings.people_path)
    for events, prints, n0 in ((a, [ada, bob], LINES_A[0]), (b, [near_ada, cy], LINES_B[0])):
        vid = events[0].video_id
        turns = {e.event_id: (0 if i < n0 else 1) for i, e in enumerate(events)}
        db.register_video(vid, [VoicePrint(k, p, 10.0, (0.0, 2.5), events[0 if k == 0 else n0].event_id)
                                for k, p in enumerate(prints)], turns, "test-voice")
        db.rename(db.speakers_of(vid)[events[0].event_id][0], None)  # queue the names for the sync below
    store = EmbeddedStore(settings.store_path)
    sync_pending(db, store, lambda: hash_embedder)
    return {"db": db, "store": store, "a": a, "b": b, "emb": hash_embedder}


def sync(lib: dict[str, object]) -> None:
    sync_pending(lib["db"], lib["store"], lambda: lib["emb"])  # type: ignore[arg-type]


def test_people_are_listed_named_and_found_across_videos(app: Flask, library: dict[str, object]) -> None:
    c = app.test_client()
    people = c.get("/api/people").get_json()["people"]
    assert len(people) == 3
    [shared] = [p for p in people if p["videos"] == 2]
    assert shared["moments"] == LINES_A[0] + LINES_B[0] and shared["name"].startswith("Speaker ")
    assert shared["sample"]["clip_url"].startswith("/media/clip/")
    r = c.patch(f"/api/people/{shared['id']}", json={"name": "Ada Quill"})
    assert r.status_code == 200 and r.get_json()["name"] == "Ada Quill"
    before = c.get('/api/search?q=person:"Ada Quill"').get_json()
    assert before["total"] == 0  # not yet in the index: the daemon writes names
    sync(library)
    out = c.get('/api/search?q=person:"Ada Quill"&size=10&page=25').get_json()
    assert out["total"] == LINES_A[0] + LINES_B[0]  # exact: far more than one window
    every = [h for p in range(1, 6) for h in
             c.get(f'/api/search?q=person:"Ada Quill"&size=100&page={p}').get_json()["hits"]]
    assert len(every) == 500 and all(h["dialogue"].startswith("alpha") for h in every)
    facets = c.get("/api/search?q=budget&facets=1&size=1").get_json()["facets"]
    person = dict((f["value"], f["count"]) if isinstance(f, dict) else tuple(f) for f in facets["person"])
    assert person["Ada Quill"] == 500
    # keyword search finds her by name too (her lines' text names her)
    assert c.get("/api/search?q=Quill&mode=keyword").get_json()["total"] == 500
    vid = library["a"][0].video_id  # type: ignore[index]
    srt = c.get(f"/api/videos/{vid}/transcript?format=srt").get_data(as_text=True)
    assert srt.count("Ada Quill: alpha") == LINES_A[0] and "Ada Quill: bravo" not in srt
    vtt = c.get(f"/api/videos/{vid}/transcript?format=vtt").get_data(as_text=True)
    assert vtt.count("<v Ada Quill>alpha") == LINES_A[0]
    lines = c.get(f"/api/videos/{vid}/transcript?format=json").get_json()["lines"]
    assert {ln["speaker"]["name"] for ln in lines} == {"Ada Quill", f"Speaker {lines[-1]['speaker']['id']}"}
    page = c.get(f"/people/{shared['id']}").get_data(as_text=True)
    assert "Ada Quill" in page and page.count('class="mark speech"') == 500


def test_hide_merge_split_and_delete(app: Flask, library: dict[str, object], settings: Settings) -> None:
    c = app.test_client()
    people = c.get("/api/people").get_json()["people"]
    [shared] = [p for p in people if p["videos"] == 2]
    bob, cy = [p for p in people if p["videos"] == 1]
    c.patch(f"/api/people/{shared['id']}", json={"name": "Ada Quill"})
    c.patch(f"/api/people/{shared['id']}", json={"hidden": True})
    sync(library)
    assert all(p["id"] != shared["id"] for p in c.get("/api/people").get_json()["people"])
    assert any(p["id"] == shared["id"] for p in c.get("/api/people?hidden=1").get_json()["people"])
    facets = c.get("/api/search?q=budget&facets=1&size=1").get_json()["facets"]
    assert "Ada Quill" not in str(facets.get("person", []))
    assert c.get('/api/search?q=person:"Ada Quill"').get_json()["total"] == 0
    # merge: the two other voices were one person all along
    r = c.post(f"/api/people/{bob['id']}/merge", json={"into": cy["id"]})
    assert r.status_code == 200 and r.get_json()["moments"] == LINES_A[1] + LINES_B[1]
    assert c.get(f"/api/people/{bob['id']}").status_code == 404
    c.patch(f"/api/people/{cy['id']}", json={"name": "Cy Bell"})
    sync(library)
    assert c.get('/api/search?q=person:"Cy Bell"').get_json()["total"] == LINES_A[1] + LINES_B[1]
    # split it again: the voice of one video becomes its own person
    db: PeopleDB = library["db"]  # type: ignore[assignment]
    vid_a = library["a"][0].video_id  # type: ignore[index]
    new = db.split(cy["id"], vid_a)
    sync(library)
    assert c.get('/api/search?q=person:"Cy Bell"').get_json()["total"] == LINES_B[1]
    assert c.get(f"/api/people/{new}").get_json()["moments"] == LINES_A[1]
    # delete: the prints go, the lines lose the name
    assert c.delete(f"/api/people/{cy['id']}", json={}).status_code == 200
    sync(library)
    assert c.get('/api/search?q=person:"Cy Bell"').get_json()["total"] == 0
    import sqlite3

    with sqlite3.connect(settings.people_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM voices WHERE person_id = ?", (cy["id"],)).fetchone()[0] == 0


def test_bad_requests_get_clear_errors(app: Flask, library: dict[str, object]) -> None:
    c = app.test_client()
    pid = c.get("/api/people").get_json()["people"][0]["id"]
    assert c.patch("/api/people/9999", json={"name": "X"}).status_code == 404
    for body in ({"name": "Ada, Quill"}, {"name": ""}, {"name": "x" * 121}, {"hidden": "yes"}, {"colour": 1}, {}):
        r = c.patch(f"/api/people/{pid}", json=body)
        assert r.status_code == 400 and r.get_json()["error"], body
    assert c.patch(f"/api/people/{pid}", data="name=x", content_type="text/plain").status_code in (400, 403)
    assert c.post(f"/api/people/{pid}/merge", json={"into": pid}).status_code == 400
    assert c.post(f"/api/people/{pid}/merge", json={"into": "2"}).status_code == 400
    assert c.post(f"/api/people/{pid}/merge", json={"into": 9999}).status_code == 404
    assert c.get("/api/people/abc").status_code == 404


@pytest.mark.parametrize("name", XSS[:3])
def test_hostile_names_are_shown_as_text(app: Flask, library: dict[str, object], name: str) -> None:
    c = app.test_client()
    pid = c.get("/api/people").get_json()["people"][0]["id"]
    if '"' in name or "," in name:
        assert c.patch(f"/api/people/{pid}", json={"name": name}).status_code == 400
        return
    assert c.patch(f"/api/people/{pid}", json={"name": name}).status_code == 200
    sync(library)
    for url in ("/people", f"/people/{pid}"):
        html = c.get(url).get_data(as_text=True)
        assert name not in html and "&lt;" in html
    vid = library["a"][0].video_id  # type: ignore[index]
    vtt = c.get(f"/api/videos/{vid}/transcript?format=vtt").get_data(as_text=True)
    assert "<script" not in vtt and "<img" not in vtt


def test_voiceprints_never_leave_the_data_folder(app: Flask, library: dict[str, object]) -> None:
    c = app.test_client()
    people = c.get("/api/people?hidden=1").get_json()
    pid = people["people"][0]["id"]
    text = str(people) + str(c.get(f"/api/people/{pid}").get_json())
    assert "print" not in text.lower().replace("voiceprint", "")


def test_a_video_leaving_the_library_forgets_its_voices(settings: Settings, library: dict[str, object]) -> None:
    db: PeopleDB = library["db"]  # type: ignore[assignment]
    a: list[Event] = library["a"]  # type: ignore[assignment]
    db.forget_video(a[0].video_id)
    people = db.persons()
    assert len(people) == 2 and all(p.videos == 1 for p in people)  # the speaker only heard in A is gone


def test_a_video_analysed_again_keeps_its_named_people(settings: Settings, library: dict[str, object]) -> None:
    """Re-analysis (vidx reindex) registers the same voices and faces again: the named person
    stays the same person, with the name, not a new 'Speaker N'."""
    from vidx.people import FacePrint

    db: PeopleDB = library["db"]  # type: ignore[assignment]
    a: list[Event] = library["a"]  # type: ignore[assignment]
    vid = a[0].video_id
    pid = db.speakers_of(vid)[a[0].event_id][0]
    db.rename(pid, "Ada Quill")
    turns = {e.event_id: (0 if i < LINES_A[0] else 1) for i, e in enumerate(a)}
    face = unit(7)[:128] / np.linalg.norm(unit(7)[:128])
    for _ in range(2):
        mapping = db.register_video(vid, [VoicePrint(0, unit(1), 10.0, (0.0, 2.5)),
                                          VoicePrint(1, unit(2), 10.0, (0.0, 2.5))], turns, "test-voice")
        assert mapping[0] == pid
        db.register_faces(vid, [FacePrint(t, face, 1.0, (0, 0, 50, 50)) for t in (1.0, 2.0, 3.0)], "test-face")
    assert db.person(pid).name == "Ada Quill" and db.person(pid).videos == 2
    assert len([p for p in db.persons() if p.has_face]) == 1


def test_person_finds_lines_and_faces_speaker_only_lines_and_split_undoes_a_merge(
        app: Flask, settings: Settings, library: dict[str, object], tmp_path: Path) -> None:
    from vidx.people import FacePrint
    from vidx.query import parse

    assert parse('speaker:"Ada Quill" budget').person == ["Ada Quill"]
    assert parse('speaker:"Ada Quill" budget').source == ["speech"]
    c = app.test_client()
    db: PeopleDB = library["db"]  # type: ignore[assignment]
    a: list[Event] = library["a"]  # type: ignore[assignment]
    ada = db.speakers_of(a[0].video_id)[a[0].event_id][0]
    db.rename(ada, "Ada Quill")
    scenes = add_video(settings, tmp_path / "portrait.mp4",
                       [{"start_sec": 10.0 * i, "end_sec": 10.0 * (i + 1), "source": "scene",
                         "description": f"A room, scene {i}"} for i in range(3)], library["emb"])  # type: ignore[arg-type]
    face = unit(11)[:128] / np.linalg.norm(unit(11)[:128])
    vid = scenes[0].video_id
    db.register_faces(vid, [FacePrint(t, face, 1.1, (0, 0, 60, 60), b"\xff\xd8\xff") for t in (12.0, 15.0, 18.0)],
                      "test-face")
    seen = next(p for p in db.persons() if p.has_face)
    assert c.post(f"/api/people/{seen.id}/merge", json={"into": ada}).status_code == 200
    sync(library)
    both = c.get('/api/search?q=person:"Ada Quill"&size=1').get_json()
    assert both["total"] == LINES_A[0] + LINES_B[0] + 1  # her lines and the one scene her face is in
    scene_hits = c.get('/api/search?q=person:"Ada Quill" source:scene').get_json()["hits"]
    assert [(h["start_sec"], h["end_sec"]) for h in scene_hits] == [(10.0, 20.0)]
    said = c.get('/api/search?q=speaker:"Ada Quill"&size=1').get_json()
    assert said["total"] == LINES_A[0] + LINES_B[0]
    page = c.get(f"/people/{ada}").get_data(as_text=True)
    assert page.count('class="mark speech"') == LINES_A[0] + LINES_B[0] and page.count('class="mark scene"') == 1
    # the face was someone else after all: split it off again
    r = c.post(f"/api/people/{ada}/split", json={"video_id": vid})
    assert r.status_code == 200 and r.get_json()["has_face"] and not r.get_json()["has_voice"]
    sync(library)
    assert c.get('/api/search?q=person:"Ada Quill"&size=1').get_json()["total"] == LINES_A[0] + LINES_B[0]
    assert c.post(f"/api/people/{ada}/split", json={"video_id": vid}).status_code == 400  # nothing of her there
    assert c.post(f"/api/people/{ada}/split", json={}).status_code == 400
