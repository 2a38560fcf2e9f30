"""A generated video + .srt -> `vidx index` (real CLI process, real decoder, OCR and MiniLM)
-> keyword, semantic and hybrid search find the right line at the right time; the clip
streams with 206 and the page shows it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDX_")}
    env.update(VIDX_WATCH_DIR=str(tmp / "watch"), VIDX_DATA_DIR=str(tmp / "data"), VIDX_ANALYZER="auto",
               VIDX_CONFIG=str(tmp / "none.toml"), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def vidx(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidx", *args], capture_output=True, text=True,
                          env=_env(tmp), timeout=300, cwd=tmp)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, talk_video: Path) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    (tmp / "watch").mkdir()
    shutil.copy(talk_video, tmp / "watch" / "talk.mp4")
    shutil.copy(talk_video.with_suffix(".srt"), tmp / "watch" / "talk.srt")
    out = vidx(tmp, "index", str(tmp / "watch" / "talk.mp4"))
    assert out.returncode == 0, out.stderr
    assert "talk.mp4: started" in out.stderr and "talk.mp4: done, 8 events" in out.stderr  # progress (plain lines)
    return tmp


def search(tmp: Path, q: str, mode: str, size: int = 5) -> dict[str, Any]:
    out = vidx(tmp, "search", q, "--mode", mode, "--size", str(size), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_keyword_finds_the_line_at_its_time(indexed: Path) -> None:
    res = search(indexed, "lighthouse keeper", "keyword")
    top = res["hits"][0]
    assert (top["start_sec"], top["end_sec"]) == (26.0, 29.0)
    assert "<em>lighthouse</em>" in " ".join(top["highlights"]["dialogue"]).lower()
    assert top["clip_url"].startswith("/media/clip/") and top["thumbnail_url"].endswith(".jpg")


def test_semantic_finds_a_paraphrase_sharing_no_words(indexed: Path) -> None:
    res = search(indexed, "the man who looks after the lighthouse went upstairs at sunrise", "semantic", 2)
    spans = [(h["start_sec"], h["end_sec"]) for h in res["hits"]]
    assert (26.0, 29.0) in spans
    assert res["hits"][0]["start_sec"] <= 26.0 and res["hits"][0]["end_sec"] >= 29.0


def test_hybrid_ranks_the_line_first(indexed: Path) -> None:
    res = search(indexed, "keeper of the beacon", "hybrid")
    assert res["hits"][0]["start_sec"] <= 26.0 <= res["hits"][0]["end_sec"]


def test_chinese_query_finds_chinese_dialogue(indexed: Path) -> None:
    res = search(indexed, "火车站", "keyword")
    assert (res["hits"][0]["start_sec"], res["hits"][0]["end_sec"]) == (17.0, 20.0)


def test_scenes_and_on_screen_text(indexed: Path) -> None:
    res = search(indexed, "exit 42", "keyword", 10)
    scene = next(h for h in res["hits"] if h["ocr_text"] and h["source"] == "scene")
    assert "EXIT" in scene["ocr_text"].upper()
    assert 15.5 <= scene["start_sec"] <= 16.5  # the blue scene starts at 16 s


def test_status_json(indexed: Path) -> None:
    out = vidx(indexed, "status", "--json")
    data = json.loads(out.stdout)
    (v,) = data["videos"]
    assert v["state"] == "done" and v["events"] == 8 and v["progress"] == 1.0 and v["error"] is None
    assert set(v) >= {"video_id", "path", "state", "events", "error", "progress"}
    # when it came, when it was indexed, how big and how long it took (the status page shows them)
    from datetime import datetime

    added, started, finished = (datetime.fromisoformat(v[k]) for k in ("added_at", "started_at", "finished_at"))
    assert added <= started <= finished and 0 < v["seconds_spent"] <= (finished - started).total_seconds() + 1
    assert v["size_bytes"] == Path(v["path"]).stat().st_size


def test_api_clip_thumbnail_and_page(indexed: Path, real_embedder: Any) -> None:
    from search_ui import create_app
    from vidx.config import load_settings

    s = load_settings(watch_dir=indexed / "watch", data_dir=indexed / "data")
    app = create_app(s, embedder_factory=lambda: real_embedder)
    c = app.test_client()
    api = c.get("/api/search", query_string={"q": "lighthouse keeper", "mode": "hybrid"}).get_json()
    cli = search(indexed, "lighthouse keeper", "hybrid", 20)
    assert [h["event_id"] for h in api["hits"]] == [h["event_id"] for h in cli["hits"]]
    assert api["total"] == cli["total"]
    hit = api["hits"][0]
    r = c.get(hit["clip_url"].split("#")[0], headers={"Range": "bytes=0-1023"})
    assert r.status_code == 206 and r.mimetype.startswith("video/") and len(r.data) == 1024
    t = c.get(hit["thumbnail_url"])
    assert t.status_code == 200 and t.mimetype == "image/jpeg" and t.data[:2] == b"\xff\xd8"
    page = c.get("/", query_string={"q": "lighthouse keeper", "mode": "keyword"}).get_data(as_text=True)
    assert "00:26–00:29" in page and "<em>lighthouse</em>" in page.lower()
    assert f'src="{hit["clip_url"]}"' in page or "/media/clip/" in page


def test_index_exits_1_when_a_file_fails(indexed: Path) -> None:
    bad = indexed / "watch" / "broken.mp4"
    bad.write_bytes(b"garbage" * 100)
    out = vidx(indexed, "index", "-q", str(bad))
    assert out.returncode == 1
    assert "FAILED" in out.stderr and "broken.mp4" in out.stderr
