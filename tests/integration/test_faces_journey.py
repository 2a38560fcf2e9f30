"""Faces, as a user meets them: a generated video shows one real face photo (Grace Hopper,
from matplotlib's sample data) in two scenes at different sizes, positions and brightness,
and another (the astronaut of scikit-image's data) in a third. `vidx run` indexes it; the
API lists two people with face thumbnails; naming one makes `person:"…"` find exactly the
scenes with her face; hiding takes a person out of the facets; merging joins the scenes."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_journeys import Running, base_env, get_json, send_json, vidx, wait_for

pytestmark = pytest.mark.slow

SCENES = [(12.0, "hopper", 0.6, (0.2, 0.3), 1.0), (12.0, "astronaut", 0.5, (0.8, 0.5), 1.15),
          (6.0, None, 0.0, (0.0, 0.0), 1.0), (12.0, "hopper", 0.4, (0.9, 0.8), 0.8)]


def _photos_or_skip() -> None:
    from tests.media import face_photo

    if face_photo("hopper") is None or face_photo("astronaut") is None:
        pytest.skip("the face photos come with matplotlib and scikit-image (make install-test installs both)")


def scenes_of(url: str, name: str) -> list[float]:
    q = urllib.parse.quote(f'person:"{name}"')
    code, out = get_json(f"{url}/api/search?q={q}&size=50")
    return sorted(h["start_sec"] for h in out["hits"] if h["source"] == "scene") if code == 200 else []


def test_faces_are_people_named_searched_hidden_and_merged(tmp_path: Path) -> None:
    from tests.media import make_face_video

    _photos_or_skip()
    make_face_video(tmp_path / "portraits.mp4", SCENES)
    env = base_env(tmp_path)
    run = Running(env)
    try:
        (tmp_path / "watch").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "portraits.mp4", tmp_path / "watch" / "portraits.mp4")
        wait_for(lambda: run.status().get("portraits.mp4") == "done", 240, "portraits.mp4 indexed", run.proc)
        code, listing = get_json(run.url + "/api/people")
        people = listing["people"]
        assert len(people) == 2 and all(p["has_face"] and not p["has_voice"] for p in people), people
        with urllib.request.urlopen(run.url + people[0]["thumbnail_url"], timeout=30) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and r.read(3) == b"\xff\xd8\xff"
        # which is which: the person seen in two scenes is Grace Hopper
        grace = max(people, key=lambda p: p["faces"])
        other = next(p for p in people if p["id"] != grace["id"])
        assert send_json(f"{run.url}/api/people/{grace['id']}", "PATCH", {"name": "Grace Hopper"})[0] == 200
        assert send_json(f"{run.url}/api/people/{other['id']}", "PATCH", {"name": "Eileen Collins"})[0] == 200
        wait_for(lambda: scenes_of(run.url, "Grace Hopper") == [0.0, 30.0], 60, "Grace Hopper in scenes 1 and 4")
        assert scenes_of(run.url, "Eileen Collins") == [12.0]
        code, person = get_json(f"{run.url}/api/people/{grace['id']}")
        assert sorted(m["start_sec"] for m in person["moment_list"]) == [0.0, 30.0]

        def facet_names() -> set[str]:
            code, out = get_json(f"{run.url}/api/search?q=scene&mode=keyword&facets=1&size=1")
            return {f[0] if isinstance(f, list) else f["value"] for f in out["facets"].get("person", [])}

        assert facet_names() == {"Grace Hopper", "Eileen Collins"}
        assert send_json(f"{run.url}/api/people/{other['id']}", "PATCH", {"hidden": True})[0] == 200
        wait_for(lambda: facet_names() == {"Grace Hopper"}, 60, "a hidden person leaves the facets")
        assert send_json(f"{run.url}/api/people/{other['id']}", "PATCH", {"hidden": False})[0] == 200
        code, kept = send_json(f"{run.url}/api/people/{other['id']}/merge", "POST", {"into": grace["id"]})
        assert code == 200 and kept["name"] == "Grace Hopper"
        wait_for(lambda: scenes_of(run.url, "Grace Hopper") == [0.0, 12.0, 30.0], 60, "merged: three scenes")
        assert scenes_of(run.url, "Eileen Collins") == []
    finally:
        run.stop()


def test_people_faces_off_reads_no_faces(tmp_path: Path) -> None:
    from tests.media import make_face_video

    _photos_or_skip()
    video = make_face_video(tmp_path / "portraits.mp4", SCENES[:2])
    env = base_env(tmp_path, VIDX_PEOPLE_FACES="false")
    done = vidx(env, "index", str(video), "-q")
    assert done.returncode == 0, done.stderr
    assert "faces" not in done.stderr.split("indexed")[-1]
    listed = vidx(env, "people", "list", "--json")
    assert json.loads(listed.stdout or "[]") == []


