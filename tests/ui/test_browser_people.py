"""The People pages in a real Chromium: faces and voices listed with a thumbnail and a voice
sample, named in place, merged from a person's page, and the pages fit a phone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from tests.ui.test_browser_daily import ARGS, CHROMIUM, OVERFLOW_JS, PHONE, SHOTS, serve
from vidx.config import Settings
from vidx.people import FacePrint, PeopleDB, VoicePrint

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")]


def unit(seed: int, dims: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    return v / np.linalg.norm(v)


def face_thumb() -> bytes:
    from tests.media import face_photo
    from vidx.media import jpeg_bytes

    photo = face_photo("hopper")
    if photo is None:
        pytest.skip("matplotlib (the face photo) is not installed")
    return jpeg_bytes(np.asarray(photo.resize((112, 112))), 112)


@pytest.fixture
def site(settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> Iterator[tuple[str, PeopleDB]]:
    from search_ui import create_app

    video = settings.watch_dir / "board-meeting.mp4"
    shutil.copy(talk_video, video)
    lines = [{"start_sec": 2.0 + 4 * i, "end_sec": 5.0 + 4 * i, "source": "speech",
              "dialogue": f"Line {i} about the harbour budget"} for i in range(6)]
    scenes = [{"start_sec": 0.0, "end_sec": 16.0, "source": "scene", "description": "A red room"},
              {"start_sec": 16.0, "end_sec": 32.0, "source": "scene", "description": "A blue room"}]
    evs = add_video(settings, video, lines + scenes, hash_embedder)
    vid = evs[0].video_id
    db = PeopleDB(settings.people_path)
    db.register_video(vid, [VoicePrint(0, unit(1, 256), 12.0, (2.0, 5.0), evs[0].event_id),
                            VoicePrint(1, unit(2, 256), 12.0, (6.0, 9.0), evs[1].event_id)],
                      {e.event_id: i % 2 for i, e in enumerate(evs[:6])}, "test-voice")
    face = unit(3, 128) * 0.2
    db.register_faces(vid, [FacePrint(t, face, 1.2, (10, 10, 60, 60), face_thumb()) for t in (0.5, 5.5, 10.5)],
                      "test-face")
    with serve(create_app(settings, embedder_factory=lambda: hash_embedder)) as url:
        yield url, db


def test_people_are_named_and_merged_in_a_browser(site: tuple[str, PeopleDB]) -> None:
    from playwright.sync_api import sync_playwright

    base, db = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/people")
        cards = page.locator("li.person")
        assert cards.count() == 3
        assert page.locator("audio.voice-sample").count() == 2
        img = page.locator("img.face").first
        img.wait_for()
        assert page.evaluate("(el) => el.complete && el.naturalWidth > 0", img.element_handle())
        face_card = page.locator("li.person", has=page.locator("img.face"))
        face_card.locator("input[name=name]").fill("Ada Quill")
        with page.expect_navigation():  # the form posts, then the list comes back (no race with the old page)
            face_card.locator("button[type=submit]").click()
        assert page.locator("li.person a.card-name", has_text="Ada Quill").count() == 1
        if SHOTS:
            page.screenshot(path=str(SHOTS / "people.png"))
        # a voice is the same person as the face: merge it from the voice's page
        voice = next(x for x in db.persons() if x.has_voice)
        ada = next(x for x in db.persons() if x.name == "Ada Quill")
        page.goto(f"{base}/people/{voice.id}")
        page.select_option("select[name=into]", str(ada.id))
        page.locator("form", has=page.locator("select[name=into]")).locator("button").click()
        page.wait_for_url(f"{base}/people/{ada.id}")
        assert "Ada Quill" in page.locator("h1").inner_text()
        merged = db.person(ada.id)
        assert merged.has_face and merged.has_voice and merged.moments == 3
        phone = browser.new_page(viewport=PHONE)
        for url in ("/people", f"/people/{ada.id}"):
            phone.goto(base + url)
            got = phone.evaluate(OVERFLOW_JS)
            assert got["scroll"] <= got["width"] and got["over"] == [], f"{url}: {got}"
        browser.close()
