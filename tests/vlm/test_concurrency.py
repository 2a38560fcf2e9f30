"""Several windows in flight on an OpenAI-compatible server (VIDX_VLM_CONCURRENCY): answers
that arrive out of order, 429s and a server that stays busy lose no window and keep order."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.daemon import build_pipeline
from tests.fakes.embedder import HashEmbedder
from tests.media import make_video
from tests.vlm.conftest import ChatServer, Responder, answer
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.store.embedded import EmbeddedStore

SCENES = [(10.0, (200, 30, 30)), (10.0, (30, 160, 40))] * 5  # 100 s: ten windows of 10 s


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", SCENES, fps=4, size=(96, 54))


class Busy:
    """The responder: each window's answer names the window; answers take a different time
    per window (so they arrive out of order); ``busy`` windows get 429 first."""

    def __init__(self, busy_first: set[float], busy_always: set[float] | None = None) -> None:
        self.busy_first, self.busy_always = busy_first, busy_always or set()
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.finished: list[float] = []

    def __call__(self, start: float, end: float, call: int) -> str | int:
        if start in self.busy_always or (start in self.busy_first and call == 0):
            return 429
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05 + 0.25 * ((int(start) // 10 * 7) % 4) / 3)  # 0.05-0.3 s: out of order
        with self.lock:
            self.now -= 1
            self.finished.append(start)
        return answer([{"start": start + 1, "end": start + 4, "description": f"window starting at {start:g} s",
                        "people": [f"person{int(start)}"]}])


def _settings(make_settings: Callable[..., Settings], url: str, **kw: object) -> Settings:
    return make_settings(**{"analyzer": "openai", "openai_base_url": url, "window_seconds": 10,
                            "window_overlap": 0, "vlm_fps": 1, "vlm_max_pixels": 32 * 32,
                            "vlm_concurrency": 4, "openai_backoff": 0.01, "openai_retries": 3, **kw})


def _prompts(server: ChatServer) -> dict[float, str]:
    out = {}
    for req in server.requests:
        text = json.dumps(req)
        m = re.search(r"covers (\d+\.\d) to", text)
        assert m
        out[float(m.group(1))] = text
    return out


def test_windows_in_flight_arrive_out_of_order_and_are_stored_once_in_order(
        make_settings: Callable[..., Settings], chat_server: Callable[[Responder], ChatServer],
        long_video: Path) -> None:
    busy = Busy(busy_first={20.0, 50.0})
    server = chat_server(busy)
    s = _settings(make_settings, server.url)
    dest = s.watch_dir / "long.mp4"
    dest.write_bytes(long_video.read_bytes())
    out = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest)
    assert out.state == "done", out.error
    starts = [float(10 * i) for i in range(10)]
    assert 2 <= busy.most <= 4  # several in flight, never more than VIDX_VLM_CONCURRENCY
    assert busy.finished != sorted(busy.finished)  # they did finish out of order
    assert server.calls[(20.0, 30.0)] == 2 and server.calls[(50.0, 60.0)] == 2  # a 429, then asked again
    assert all(server.calls[(a, a + 10)] == 1 for a in starts if a not in (20.0, 50.0))
    row = Ledger(s.ledger_path).rows()[0]
    with sqlite3.connect(s.ledger_path) as db:  # read as a user would, not through vidx's ledger code
        stored = db.execute("SELECT idx, start_sec, status FROM windows WHERE video_id = ? ORDER BY rowid",
                            (row.video_id,)).fetchall()
    assert sorted(i for i, _, _ in stored) == list(range(10))  # one row per window, none twice
    assert sorted((i, a) for i, a, _ in stored) == list(enumerate(starts))
    assert {st for _, _, st in stored} == {"ok"}
    vlm = sorted((e.start_sec, e.description) for e in EmbeddedStore(s.store_path).events_for_video(row.video_id)
                 if e.source == "vlm")
    assert vlm == [(a + 1, f"window starting at {a:g} s") for a in starts]  # each once, in time order
    # window n's prompt carries what windows up to n-4 found: the same prompt on every run
    prompts = _prompts(server)
    assert "person0" not in prompts[30.0] and "person0" in prompts[40.0]
    assert "person50" in prompts[90.0] and "person60" not in prompts[90.0]


def test_a_server_that_stays_busy_leaves_the_video_waiting_and_loses_no_window(
        make_settings: Callable[..., Settings], chat_server: Callable[[Responder], ChatServer],
        long_video: Path) -> None:
    busy = Busy(busy_first=set(), busy_always={60.0})
    server = chat_server(busy)
    s = _settings(make_settings, server.url, openai_retries=2)
    dest = s.watch_dir / "long.mp4"
    dest.write_bytes(long_video.read_bytes())
    first = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest)
    assert first.state == "pending" and "busy" in (first.error or ""), first.error
    assert server.calls[(60.0, 70.0)] == 3  # the first try and two more, backing off
    answered = {a for (a, _), n in server.calls.items() if a != 60.0}
    busy.busy_always.clear()
    second = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest)
    assert second.state == "done", second.error
    for a in answered:  # answered before the server gave up: kept, not asked again
        assert server.calls[(a, a + 10)] == 1, a
    assert server.calls[(60.0, 70.0)] == 4
