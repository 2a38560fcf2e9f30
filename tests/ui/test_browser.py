"""The page in a real headless Chromium: search, see the hit, the player starts at the
event, and no script runs from untrusted text."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import chromium_path
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import XSS, add_video
from vidx.config import Settings

pytestmark = pytest.mark.slow
# VIDX_SCREENSHOTS=1 make test refreshes the README's screenshots in docs/screenshots (read at
# import: each test runs without the shell's VIDX_ variables)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("VIDX_SCREENSHOTS") else None

CHROMIUM = chromium_path()
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def server(settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> Iterator[str]:
    from waitress.server import create_server

    from search_ui import create_app

    video = settings.watch_dir / "talk.mp4"
    shutil.copy(talk_video, video)
    add_video(settings, video, [
        {"description": "The lighthouse keeper climbs the stairs", "dialogue": "The lighthouse keeper climbed the "
         "stairs at dawn.", "start_sec": 26.0, "end_sec": 29.0, "source": "subtitle"},
        {"description": "A red room", "start_sec": 0.0, "end_sec": 8.0},
    ] + [{"description": f"lighthouse payload {p}", "dialogue": p, "start_sec": 10.0 + i, "end_sec": 11.0 + i}
         for i, p in enumerate(XSS)]
      + [{"description": "Line: subtitle payload", "dialogue": "<script>alert(1)</script> <img src=x onerror=alert(2)>",
          "start_sec": 20.0, "end_sec": 21.0, "source": "subtitle"}], hash_embedder)
    app = create_app(settings, embedder_factory=lambda: hash_embedder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = create_server(app, host="127.0.0.1", port=port, threads=4)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    srv.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")
def test_search_and_play_in_a_real_browser(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(server + "/")
        page.fill("input[name=q]", "lighthouse keeper")
        page.select_option("select[name=mode]", "keyword")
        page.click("button[type=submit]")
        page.wait_for_selector("li.hit")
        first = page.locator("li.hit").first
        assert first.locator(".range").inner_text() == "00:26–00:29"
        assert first.locator(".snippet em").first.inner_text().lower() == "lighthouse"
        assert page.locator("li.hit img, li.hit svg, li.hit b").count() == 0
        # the player seeks to the event's start and plays the real file
        video = first.locator("video")
        video.evaluate("v => { v.muted = true; v.preload = 'auto'; v.load(); }")
        page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle(), timeout=20000)
        video.evaluate("v => v.play()")
        page.wait_for_function("v => v.currentTime >= 26", arg=video.element_handle(), timeout=20000)
        t = video.evaluate("v => v.currentTime")
        assert 26.0 <= t <= 29.5
        page.screenshot(path=str(tmp_path / "page.png"), full_page=False)
        browser.close()
    assert dialogs == []
    assert not [e for e in console_errors if "Content Security Policy" in e]
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")
def test_page_works_without_javascript(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(java_script_enabled=False)
        page = ctx.new_page()
        page.goto(server + "/?q=lighthouse&mode=hybrid")
        assert page.locator("li.hit").count() >= 1
        src: Any = page.locator("li.hit video").first.get_attribute("src")
        assert src.startswith("/media/clip/") and "#t=" in src
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")
def test_video_page_from_a_hit_seeks_from_timeline_and_transcript(server: str, tmp_path: Path,
                                                                  settings: Settings) -> None:
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    shots = SHOTS or tmp_path
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server + "/?q=lighthouse+keeper&mode=keyword")
        page.wait_for_selector("li.hit")
        if shots.is_dir():
            page.screenshot(path=str(shots / "search.png"))
        # keyboard: "/" focuses the box, arrow down reaches the first hit, Enter plays it
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.name") == "q"
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.classList.contains('hit')")
        page.locator("li.hit").first.locator("video").evaluate("v => { v.muted = true; }")
        page.keyboard.press("Enter")
        page.wait_for_function("v => !v.paused", arg=page.locator("li.hit video").first.element_handle(),
                               timeout=20000)
        page.locator("li.hit").first.locator("a.open").click()
        page.wait_for_selector("#main-player")
        assert "/videos/" in page.url and "t=26.00" in page.url
        video = page.locator("#main-player")
        video.evaluate("v => { v.muted = true; }")
        page.wait_for_function("v => v.readyState >= 1 && Math.abs(v.currentTime - 26) < 0.5",
                               arg=video.element_handle(), timeout=20000)
        assert page.locator(".ev.current").count() >= 1  # the hit's event is highlighted
        # a timeline event seeks the player
        page.locator(".tl-event[data-start='0.0']").first.click()
        page.wait_for_function("v => v.currentTime < 1", arg=video.element_handle(), timeout=10000)
        # a transcript line seeks the player
        line = page.locator(".lines li.line").first
        t = float(line.get_attribute("data-start") or 0)
        line.locator("a.seek").click()
        page.wait_for_function(f"v => Math.abs(v.currentTime - {t}) < 1", arg=video.element_handle(), timeout=10000)
        assert page.locator(".event-list").inner_text().count("<script>") >= 1  # untrusted text shown as text
        if shots.is_dir():
            page.screenshot(path=str(shots / "video.png"))
        page.goto(server + "/status")
        page.wait_for_selector("table.files")
        assert page.locator("table.files tr[data-path]").count() >= 1
        if shots.is_dir():
            page.screenshot(path=str(shots / "status.png"))
        browser.close()
    assert dialogs == []



@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")
def test_modes_threshold_filters_and_more_like_this_in_a_real_browser(server: str) -> None:
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for mode in ("keyword", "semantic", "hybrid"):
            page.goto(server + "/")
            page.fill("input[name=q]", "lighthouse keeper")
            page.select_option("select[name=mode]", mode)
            page.fill("input[name=min_score]", "0")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.wait_for_selector("li.hit")
            assert page.locator("li.hit .score").count() >= 1, mode
        # moving the threshold up hides weak hits and says why
        before = page.locator("li.hit").count()
        page.fill("input[name=min_score]", "0.99")
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.wait_for_selector("li.none, li.hit")
        assert "min_score=0.99" in page.url
        assert page.locator("li.hit").count() < before
        assert "below the relevance threshold" in page.locator("ol.hits").inner_text() or \
            page.locator("li.hit").count() >= 1
        # a filter chip narrows to one source
        page.goto(server + "/?q=lighthouse&mode=keyword&min_score=0")
        with page.expect_navigation():
            page.locator(".facet a.chip", has_text="subtitle").first.click()
        page.wait_for_selector("li.hit")
        assert "source%3Asubtitle" in page.url or "source:subtitle" in page.url
        assert set(page.locator("li.hit .source").all_inner_texts()) == {"subtitle"}
        # more like this
        with page.expect_navigation():
            page.locator("li.hit a.similar").first.click()
        page.wait_for_selector("text=Moments like")
        # untrusted text on the video page (transcript) and the similar page fires nothing
        page.goto(server + "/?q=subtitle+payload&mode=keyword&min_score=0")
        with page.expect_navigation():
            page.locator("li.hit a.open").first.click()
        page.wait_for_selector(".lines")
        assert "<script>alert(1)</script>" in page.locator(".lines").inner_text()
        browser.close()
    assert dialogs == []
