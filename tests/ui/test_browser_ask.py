"""Asking in a real Chromium: the Ask tab streams the answer from a (fake, independent)
OpenAI-compatible server, its [1] plays the cited moment inline, the page fits a phone; the
video page shows the summary and chapters, and a chapter seeks the player."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.chat_server import ChatServer, chat_server
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from tests.ui.test_browser_daily import ARGS, CHROMIUM, OVERFLOW_JS, PHONE, SHOTS, serve
from vidx.config import Settings

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make install-test installs it)")]


def _reply(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    lab = next(m.group(1) for m in re.finditer(r"^\[(E\d+)\][^\n]*\n(?:  just before:[^\n]*\n)?  ([^\n]*)",
                                               user, re.MULTILINE) if "lighthouse" in m.group(2))
    return json.dumps({"answer": f"The keeper climbed the lighthouse stairs at dawn [{lab}].", "citations": [lab]})


@pytest.fixture
def site(settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> Iterator[tuple[str, str, ChatServer]]:
    from search_ui import create_app

    video = settings.watch_dir / "harbour-talk.mp4"
    shutil.copy(talk_video, video)
    evs = add_video(settings, video, [
        {"start_sec": 0.0, "end_sec": 16.0, "source": "scene", "ocr_text": "Harbour safety\nBriefing",
         "description": "A red room"},
        {"start_sec": 16.0, "end_sec": 32.0, "source": "scene", "ocr_text": "The lighthouse\nNight watch",
         "description": "A blue room"},
        {"start_sec": 9.0, "end_sec": 12.5, "source": "subtitle", "dialogue": "The quarterly budget numbers look strong."},
        {"start_sec": 26.0, "end_sec": 29.0, "source": "subtitle",
         "dialogue": "The lighthouse keeper climbed the stairs at dawn."},
    ], hash_embedder)
    with chat_server(_reply) as srv, serve(create_app(settings.model_copy(update={"llm_url": srv.url}),
                                                      embedder_factory=lambda: hash_embedder)) as url:
        yield url, evs[0].video_id, srv


def test_the_ask_tab_streams_an_answer_whose_citation_plays_its_moment(site: tuple[str, str, ChatServer]) -> None:
    from playwright.sync_api import sync_playwright

    base, _vid, srv = site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + "/")
        page.click("nav.nav >> text=Ask")
        page.fill("#ask-form input[name=q]", "Who climbed the lighthouse stairs?")
        page.press("#ask-form input[name=q]", "Enter")
        page.wait_for_selector("ol.citations li.citation", timeout=20000)
        assert page.locator(".answer-text").inner_text() == "The keeper climbed the lighthouse stairs at dawn [1]."
        assert srv.requests and srv.requests[-1]["stream"] is True  # streamed, not asked whole
        assert "?q=Who+climbed" in page.url or "?q=Who%20climbed" in page.url
        cite = page.locator("#cite-1")
        assert "00:26–00:29" in cite.inner_text() and "harbour-talk.mp4" in cite.inner_text()
        video = cite.locator("video")
        video.evaluate("v => { v.muted = true; }")
        if SHOTS:
            page.screenshot(path=str(SHOTS / "ask.png"))
        page.click("a.cite[data-n='1']")
        page.wait_for_function("v => !v.paused && v.currentTime >= 25.9 && v.currentTime < 30",
                               arg=video.element_handle(), timeout=20000)
        # without script the server renders the same answer (a shared link)
        page2 = browser.new_page(java_script_enabled=False)
        page2.goto(page.url)
        assert page2.locator(".answer-text").inner_text() == "The keeper climbed the lighthouse stairs at dawn [1]."
        # on a phone the page fits
        phone = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
        phone.goto(page.url)
        phone.wait_for_selector("ol.citations li.citation")
        fit = phone.evaluate(OVERFLOW_JS)
        assert fit["scroll"] <= fit["width"] + 1, fit
        browser.close()


def test_the_video_page_shows_the_summary_and_a_chapter_seeks(site: tuple[str, str, ChatServer]) -> None:
    from playwright.sync_api import sync_playwright

    base, vid, srv = site
    srv.reply = lambda body: json.dumps(
        {"summary": "A harbour safety briefing, then the lighthouse night watch.",
         "titles": [{"label": "S1", "title": "Safety briefing"}, {"label": "S2", "title": "Night watch"}]})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(base + f"/videos/{vid}")
        page.wait_for_selector("#video-summary .summary-text", timeout=20000)  # fetched after the page showed
        assert page.locator("#video-summary .summary-text").inner_text() == (
            "A harbour safety briefing, then the lighthouse night watch.")
        page.reload()  # now cached: rendered with the page, chapters included
        assert page.locator("#video-summary ol.chapters li").all_inner_texts() == ["00:00 Safety briefing",
                                                                                 "00:16 Night watch"]
        video = page.locator("#main-player")
        video.evaluate("v => { v.muted = true; }")
        page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle(), timeout=20000)
        if SHOTS:
            page.screenshot(path=str(SHOTS / "video-summary.png"))
        page.locator("#video-summary ol.chapters a", has_text="00:16").click()
        page.wait_for_function("v => Math.abs(v.currentTime - 16) < 0.5", arg=video.element_handle(), timeout=10000)
        browser.close()
