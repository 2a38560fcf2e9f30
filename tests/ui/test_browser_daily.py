"""The daily UI in a real Chromium: the library pages and sorts, every page fits a phone
(390 px) without sideways scrolling, and the search page's controls stay on screen."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import chromium_path
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from tests.ui.test_library import make_library
from vidx.config import Settings

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium_path() is None,
                                 reason="Chromium is not installed (make install-test installs it)")]

CHROMIUM = chromium_path()
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
# VIDX_SCREENSHOTS=1 make test refreshes the README's screenshots in docs/screenshots
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" if os.environ.get("VIDX_SCREENSHOTS") else None
LONG = "a_very_long_file_name_without_any_spaces_that_a_phone_must_wrap_" * 2 + ".mp4"

# every element that reaches past the right edge of the viewport (the page would scroll sideways)
OVERFLOW_JS = """() => {
  const w = document.documentElement.clientWidth;
  const over = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) { over.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(r.right)); }
  }
  return {scroll: document.documentElement.scrollWidth, width: w, over: over.slice(0, 6)};
}"""


@contextmanager
def serve(app: Any) -> Iterator[str]:
    from waitress.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=srv.run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()


@pytest.fixture
def daily(settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> Iterator[tuple[str, str]]:
    from search_ui import create_app

    make_library(settings, hash_embedder)
    video = settings.watch_dir / LONG
    shutil.copy(talk_video, video)
    evs = add_video(settings, video, [
        {"description": "The lighthouse keeper climbs the stairs of the tower by the harbour at dawn",
         "dialogue": "The lighthouse keeper climbed the stairs at dawn.", "start_sec": 26.0, "end_sec": 29.0,
         "source": "subtitle", "people": ["keeper"], "objects": ["lamp", "stairs"], "location": "lighthouse"},
        {"description": "A red room with a lighthouse painting", "start_sec": 0.0, "end_sec": 8.0},
    ], hash_embedder)
    with serve(create_app(settings, embedder_factory=lambda: hash_embedder)) as url:
        yield url, evs[0].video_id


def _fits(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    if url.endswith("/api/docs"):
        page.wait_for_selector(".opblock", timeout=20000)  # Swagger UI has drawn the routes
    got = page.evaluate(OVERFLOW_JS)
    assert got["scroll"] <= got["width"] and got["over"] == [], f"{url}: {got}"


def test_every_page_fits_a_phone(daily: tuple[str, str], make_settings: Callable[..., Settings],
                                 hash_embedder: HashEmbedder) -> None:
    from playwright.sync_api import sync_playwright

    from search_ui import create_app

    base, vid = daily
    locked = make_settings(data_dir=Path(str(make_settings().data_dir) + "-locked"), ui_api_key="k" * 24)
    with sync_playwright() as p, serve(create_app(locked, embedder_factory=lambda: hash_embedder)) as login_base:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        for url in (base + "/", base + "/?q=lighthouse+keeper&mode=keyword&min_score=0", base + "/library",
                    base + "/library?sort=name&page=3", base + f"/videos/{vid}?t=26", base + "/status",
                    base + "/api/docs", login_base + "/login"):
            _fits(page, url)
        # the search page's controls are on screen and usable with a thumb
        page.goto(base + "/")
        box = page.locator("form.search button[type=submit]").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        page.fill("input[name=q]", "lighthouse keeper")
        with page.expect_navigation():
            page.locator("form.search button[type=submit]").tap()
        assert page.locator("li.hit").count() >= 1
        browser.close()


def test_library_pages_and_sorts_in_a_real_browser(daily: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = daily
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/")
        with page.expect_navigation():
            page.locator("header a", has_text="Library").click()
        assert page.url.endswith("/library")
        if SHOTS:
            page.screenshot(path=str(SHOTS / "library.png"))
        first = page.locator(".card-name").all_inner_texts()
        assert len(first) == 24 and first[0] == LONG  # newest first: the video added last
        page.select_option("select[name=sort]", "name")
        with page.expect_navigation():
            page.click("form.library-filter button[type=submit]")
        names = page.locator(".card-name").all_inner_texts()
        assert names == sorted(names, key=str.casefold) and names[0] == "a_very_long_file_name_without_any_spaces_"\
            "that_a_phone_must_wrap_a_very_long_file_name_without_any_spaces_that_a_phone_must_wrap_.mp4"
        with page.expect_navigation():
            page.locator("a[rel=next]").click()
        second = page.locator(".card-name").all_inner_texts()
        assert "page=2" in page.url and second[0] > names[-1] and not set(second) & set(names)
        # a state chip narrows the list; a card opens its video
        with page.expect_navigation():
            page.locator("a.chip", has_text="failed").click()
        assert page.locator("li.card").count() == 6
        page.goto(base + "/library?q=talk-00")
        with page.expect_navigation():
            page.locator("li.card a.card-link").first.click()
        assert "/videos/" in page.url and page.locator("h1.video-title").inner_text().startswith("talk-00")
        browser.close()


def test_result_players_start_at_their_event_and_a_transcoded_clip_plays_on_the_first_press(
        daily: tuple[str, str], settings: Settings, hash_embedder: HashEmbedder) -> None:
    from playwright.sync_api import sync_playwright

    from tests.media import make_video

    base, _ = daily
    src = make_video(settings.watch_dir / "old.avi", fps=10, codec="mpeg4", container="avi", audio="mp3")
    add_video(settings, src, [{"start_sec": 2.0, "end_sec": 5.0, "description": "a weathervane turns on the roof",
                               "source": "scene"}], hash_embedder)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        # a file the browser plays: before any press the player stands at the event's start
        page.goto(base + "/?q=lighthouse+keeper&mode=keyword")
        v = page.locator("li.hit video").first
        page.wait_for_function("v => v.readyState >= 1 && Math.abs(v.currentTime - 26) < 0.3",
                               arg=v.element_handle(), timeout=20000)
        # a file it cannot play is transcoded on the first press, which is enough to watch it
        page.goto(base + "/?q=weathervane&mode=keyword")
        v = page.locator("li.hit video").first
        assert v.get_attribute("preload") == "none"  # no transcoding until someone asks
        v.evaluate("v => { v.muted = true; }")
        page.locator("li.hit").first.focus()
        page.keyboard.press("Enter")  # the page's shortcut: the same play() as the player's button
        page.wait_for_selector(".clip-note:has-text('Preparing the clip')", timeout=10000)
        page.wait_for_function("v => !v.paused && v.currentTime > 0.3", arg=v.element_handle(), timeout=60000)
        assert page.locator(".clip-note").is_hidden()
        browser.close()


def test_video_page_rows_seek_keys_jump_and_a_moment_link_is_offered(daily: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, vid = daily
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + f"/videos/{vid}")
        video = page.locator("#main-player")
        video.evaluate("v => { v.muted = true; }")
        page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle(), timeout=20000)
        ticks = page.locator(".tl-ticks span").all_inner_texts()
        assert ticks[0] == "00:00" and len(ticks) == 5 and ticks[-1] == "00:29"
        # a click on the text of an event row (not its time link) seeks to the event
        page.locator(".event-list li", has_text="lighthouse keeper").locator(".text").click()
        page.wait_for_function("v => Math.abs(v.currentTime - 26) < 0.5", arg=video.element_handle(), timeout=10000)
        # j goes back to the previous event, k forward to the next
        page.locator("h1").click()
        page.keyboard.press("j")
        page.wait_for_function("v => v.currentTime < 1", arg=video.element_handle(), timeout=10000)
        page.keyboard.press("k")
        page.wait_for_function("v => Math.abs(v.currentTime - 26) < 0.5", arg=video.element_handle(), timeout=10000)
        page.keyboard.press(" ")
        page.wait_for_function("v => v.paused", arg=video.element_handle(), timeout=10000)
        page.click("#copy-moment")
        url = page.locator("#moment-url").input_value()
        assert url.startswith(f"{base}/videos/{vid}?t=26.")
        page.goto(url)
        page.wait_for_function("v => v.readyState >= 1 && Math.abs(v.currentTime - 26) < 0.6",
                               arg=page.locator("#main-player").element_handle(), timeout=20000)
        browser.close()


def test_api_docs_try_it_out_calls_the_api_from_the_page(daily: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = daily
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/api/docs")
        op = page.locator("#operations-default-search")
        op.wait_for(timeout=20000)
        op.locator(".opblock-summary").click()
        op.locator("button.try-out__btn").click()
        op.locator("input[placeholder='q']").fill("lighthouse keeper")
        op.locator("button.execute").click()
        page.wait_for_selector("#operations-default-search .live-responses-table .response-col_status", timeout=20000)
        status = op.locator(".live-responses-table .response .response-col_status").first.inner_text().strip()
        assert status == "200"
        assert "lighthouse" in op.locator(".live-responses-table .microlight").first.inner_text()
        # response schemas are shown for the route
        assert op.locator(".responses-wrapper").inner_text().count("Hit") >= 1 or "hits" in op.inner_text()
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_the_chinese_ui_in_a_real_browser(daily: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = daily
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
                                  viewport=PHONE, is_mobile=True, has_touch=True)
        page = ctx.new_page()
        page.goto(base + "/")
        assert page.locator("form.search button[type=submit]").inner_text() == "搜索"
        page.fill("input[name=q]", "lighthouse keeper")
        with page.expect_navigation():
            page.locator("form.search button[type=submit]").tap()
        if SHOTS:
            page.screenshot(path=str(SHOTS / "phone.png"))
        assert "个片段" in page.locator("p.count").inner_text() and page.locator("li.hit a.open").first.inner_text() == "打开视频"
        got = page.evaluate(OVERFLOW_JS)
        assert got["scroll"] <= got["width"], got
        with page.expect_navigation():
            page.locator("header a", has_text="视频库").click()
        assert page.locator("h1").inner_text() == "视频库"
        with page.expect_navigation():
            page.locator("a.lang", has_text="English").click()
        assert page.locator("h1").inner_text() == "Library"
        page.goto(base + "/status")  # the choice is remembered
        assert page.locator("h1").inner_text() == "Status"
        browser.close()


def test_a_line_inside_a_scene_is_one_result_in_a_real_browser(daily: tuple[str, str], settings: Settings,
                                                               hash_embedder: HashEmbedder) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = daily
    add_video(settings, settings.watch_dir / "harbour.mp4", [
        {"start_sec": 40.0, "end_sec": 70.0, "source": "scene", "description": "boats in the harbour at dusk",
         "dialogue": "the weathervane spins over the harbour"},
        {"start_sec": 52.0, "end_sec": 55.0, "source": "subtitle", "dialogue": "the weathervane spins over the harbour"},
        {"start_sec": 50.0, "end_sec": 58.0, "source": "vlm", "description": "a weathervane spins on a roof"},
    ], hash_embedder)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/?q=weathervane+spins&mode=keyword")
        assert page.locator("li.hit").count() == 1
        hit = page.locator("li.hit").first
        assert hit.locator(".range").inner_text() == "00:52–00:55" and hit.locator(".source").first.inner_text() == "subtitle"
        hit.locator("details.context summary").click()
        assert hit.locator("details.context li").count() == 2
        with page.expect_navigation():
            page.locator("a.group-toggle").click()
        assert page.locator("li.hit").count() == 3  # every event, on request
        browser.close()
