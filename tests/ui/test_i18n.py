"""The UI in Chinese and English: chosen from Accept-Language, switched with ?lang= (kept in
a cookie), every message of the UI translated, dates in the page's language."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from search_ui.i18n import CATALOGUES
from tests.fakes.embedder import HashEmbedder
from tests.ui.conftest import add_video
from vidx.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _messages() -> set[object]:
    from babel.messages.extract import extract_from_dir

    method_map = [("search_ui/**.py", "python"), ("search_ui/templates/**.html", "jinja2.ext:babel_extract")]
    opts = {"search_ui/templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return {msg for _, _, msg, _, _ in extract_from_dir(".", method_map, opts)}
    finally:
        os.chdir(cwd)


def test_every_message_of_the_ui_has_a_chinese_translation() -> None:
    from babel.messages.pofile import read_po

    with (CATALOGUES / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        cat = read_po(f)
    translated = {m.id for m in cat if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [m.string])}
    wanted = _messages()
    assert len(wanted) > 100
    assert wanted - translated == set()


def test_chinese_from_accept_language_with_a_switch_kept_in_a_cookie(app: Flask, settings: Settings,
                                                                     hash_embedder: HashEmbedder) -> None:
    video = settings.watch_dir / "talk.mp4"
    video.write_bytes(b"x")
    add_video(settings, video, [{"start_sec": 26.0, "end_sec": 29.0, "dialogue": "the lighthouse keeper",
                                 "source": "subtitle"}], hash_embedder)
    c = app.test_client()
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    page = c.get("/?q=lighthouse&mode=keyword", headers=zh).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page and ">搜索</button>" in page and "1 个片段 (1 个事件)" in page
    assert "打开视频" in page and "已索引 1 个视频" in page
    lib = c.get("/library", headers=zh).get_data(as_text=True)
    assert "视频库" in lib and "已完成" in lib and "年" in lib  # a date in Chinese
    assert "状态" in c.get("/status", headers=zh).get_data(as_text=True)
    en = c.get("/?q=lighthouse&mode=keyword", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert '<html lang="en">' in en and ">Search</button>" in en and "1 moment (1 event) for" in en
    # the switch: ?lang=en keeps the query and is remembered for later pages
    r = c.get("/?q=lighthouse&mode=keyword&lang=en", headers=zh)
    assert ">Search</button>" in r.get_data(as_text=True) and "vidx_lang=en" in r.headers["Set-Cookie"]
    assert ">Search</button>" in c.get("/", headers=zh).get_data(as_text=True)
    assert 'href="?q=lighthouse&amp;mode=keyword&amp;lang=zh"' in c.get("/?q=lighthouse&mode=keyword").get_data(
        as_text=True)
    # untrusted text inside a translated sentence stays text
    xss = c.get("/?q=%3Cscript%3Ealert(1)%3C/script%3E&mode=keyword&lang=zh").get_data(as_text=True)
    assert "<script>alert(1)" not in xss and "&lt;script&gt;" in xss
