"""The openai provider end to end against a local chat-completions server."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.daemon import build_pipeline
from tests.fakes.embedder import HashEmbedder
from tests.vlm.conftest import ChatServer, Responder, answer
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.store.embedded import EmbeddedStore


def _settings(make_settings: Callable[..., Settings], url: str, **kw: object) -> Settings:
    return make_settings(**{"analyzer": "openai", "openai_base_url": url, "window_seconds": 20, "window_overlap": 4,
                            "vlm_fps": 1, "vlm_max_pixels": 64 * 64, **kw})


def realistic(start: float, end: float, call: int) -> str | int:
    """Answers like a real model; windows are (0, 16) and (12, 32): the first ends at the
    scene cut at 16 s, the second starts 4 s earlier (the overlap)."""
    if start == 0.0:
        return answer([
            {"start": "00:01.0", "end": "00:04.0", "description": "A presenter welcomes the audience",
             "people": ["presenter"], "location": "red studio", "action": "greeting", "dialogue": "",
             "objects": ["microphone"], "ocr_text": "", "emotion": "warm"},
            {"start": 9.0, "end": 15.5, "description": "The presenter discusses the quarterly budget",
             "people": ["presenter"], "location": "green studio", "action": "talking", "objects": ["chart"]},
        ])
    if call == 0:
        return "Sorry, I will describe the video in prose: there is a yellow room."
    return answer([
        {"start": "00:12.0", "end": "00:16.0", "description": "The presenter discusses the quarterly budget numbers",
         "people": ["presenter"], "location": "green studio", "action": "talking", "objects": ["chart"]},
        {"start": "00:17.0", "end": "00:19.8", "description": "A sign reads EXIT 42 on a blue wall",
         "people": [], "location": "blue corridor", "objects": ["sign", "wall"], "ocr_text": "EXIT 42"},
        {"start": "00:26.00", "end": "00:29.00", "description": "The presenter talks about a lighthouse keeper",
         "people": ["presenter"], "location": "yellow studio", "action": "talking", "objects": []},
    ])


def test_openai_provider_end_to_end(make_settings: Callable[..., Settings], chat_server: Callable[[Responder],
                                    ChatServer], talk_video: Path) -> None:
    server = chat_server(realistic)
    s = _settings(make_settings, server.url, vlm_concurrency=1)  # one at a time: each prompt knows the last
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    shutil.copy(talk_video.with_suffix(".srt"), dest.with_suffix(".srt"))
    emb = HashEmbedder()
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=lambda: emb)
    out = pipeline.process(dest)
    assert out.state == "done", out.error
    assert out.warnings == 0

    # what was sent: frames inline as base64 JPEG with their absolute timestamps, never a URL
    first = server.requests[0]
    parts = first["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    markers = [float(re.match(r"<([\d.]+) seconds>", p["text"]).group(1))  # type: ignore[union-attr]
               for p in parts if p["type"] == "text" and p["text"].startswith("<")]
    assert len(images) == len(markers) == 17  # 0..16 s at 1 frame/s
    assert all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images)
    assert markers[0] == 0.0 and all(b > a for a, b in zip(markers, markers[1:]))
    assert "http://" not in json.dumps(server.requests).replace(server.url, "")
    assert first["model"] == "Qwen/Qwen3-VL-8B-Instruct"
    second_window = [r for r in server.requests if "covers 12.0 to 32.0" in json.dumps(r)]
    assert len(second_window) == 2  # the garbage answer got exactly one repair retry
    m2 = [float(p["text"][1:-9]) for p in second_window[0]["messages"][1]["content"]
          if p["type"] == "text" and p["text"].startswith("<")]
    assert 12.0 <= m2[0] <= 12.5 and m2[-1] <= 32.0
    assert "presenter" in json.dumps(second_window[0])  # names from the first window are passed on

    store = pipeline.store
    events = store.events_for_video(Ledger(s.ledger_path).rows()[0].video_id)  # type: ignore[attr-defined]
    vlm = [e for e in events if e.source == "vlm"]
    # the budget talk was seen by both windows (overlap 12-16 s): merged into one event
    assert [(e.start_sec, e.end_sec) for e in vlm] == [(1.0, 4.0), (9.0, 16.0), (17.0, 19.8), (26.0, 29.0)]
    assert vlm[1].description == "The presenter discusses the quarterly budget"
    assert "quarterly budget numbers look strong" in vlm[1].dialogue
    keeper = vlm[3]
    assert keeper.model == "Qwen/Qwen3-VL-8B-Instruct" and keeper.analyzer == "openai/events-v3"
    assert keeper.prompt_version == "events-v3"
    assert "lighthouse keeper climbed" in keeper.dialogue  # subtitle merged by time overlap
    assert any(e.source == "subtitle" and e.start_sec == 26.0 for e in events)
    hits = store.search_keyword("EXIT sign", 3).hits
    assert hits[0].event.start_sec == 17.0 and hits[0].event.ocr_text == "EXIT 42"


def test_window_with_garbage_twice_is_recorded_and_video_done_with_warning(
        make_settings: Callable[..., Settings], chat_server: Callable[[Responder], ChatServer],
        talk_video: Path) -> None:
    server = chat_server(lambda s, e, n: realistic(s, e, n) if s == 0.0 else "no JSON, sorry")
    s = _settings(make_settings, server.url)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder)
    out = pipeline.process(dest)
    assert out.state == "done" and out.warnings == 1
    row = Ledger(s.ledger_path).rows()[0]
    assert row.warnings == 1 and "could not be parsed" in (row.error or "")
    key = pipeline.analyzer.checkpoint_key  # type: ignore[attr-defined]
    assert key.startswith("openai/events-v3|Qwen/Qwen3-VL-8B-Instruct|")  # plus the window plan's settings
    windows = Ledger(s.ledger_path).windows(row.video_id or "", key)
    assert windows[1].status == "failed" and "no JSON, sorry" in (windows[1].raw or "")
    assert windows[0].status == "ok" and len(windows[0].result) == 2
    assert len(server.calls) == 2


def test_crash_resumes_at_the_next_unanalysed_window(make_settings: Callable[..., Settings],
                                                     chat_server: Callable[[Responder], ChatServer],
                                                     talk_video: Path) -> None:
    down = {"on": True}

    def flaky(start: float, end: float, n: int) -> str | int:
        if start > 0 and down["on"]:
            return 500  # the server dies during the second window
        return realistic(start, end, 1)

    server = chat_server(flaky)
    s = _settings(make_settings, server.url)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    first = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest)
    assert first.state == "pending" and "500" in (first.error or "")
    calls_before = dict(server.calls)
    down["on"] = False
    second = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest)
    assert second.state == "done"
    assert server.calls[(0.0, 16.0)] == calls_before[(0.0, 16.0)] == 1  # window 1 was not asked again
    assert server.calls[(12.0, 32.0)] > calls_before[(12.0, 32.0)]
    # every thumbnail shows its own event, also those of the window resumed from the ledger
    import io

    import numpy as np
    from PIL import Image

    from tests.media import DEFAULT_SCENES

    store = EmbeddedStore(s.store_path)
    vlm = [h.event for h in store.search_keyword("presenter sign", 20).hits if h.event.source == "vlm"]
    assert any(e.start_sec < 12 for e in vlm) and any(e.start_sec > 16 for e in vlm)
    for e in vlm:
        rgb = np.asarray(Image.open(io.BytesIO((s.thumbs_dir / e.video_id / f"{e.event_id}.jpg").read_bytes())))
        scene = DEFAULT_SCENES[int(e.start_sec // 8)][1]
        assert int(np.argmax(np.median(rgb.reshape(-1, 3), axis=0))) == int(np.argmax(scene)), e.start_sec


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def test_unreachable_server_is_a_clear_error(make_settings: Callable[..., Settings]) -> None:
    from ingest.vlm.base import VlmUnavailable
    from ingest.vlm.openai_compat import OpenAIProvider

    s = make_settings(analyzer="openai", openai_base_url=f"http://127.0.0.1:{_free_port()}/v1", openai_timeout=2)
    provider = OpenAIProvider(s)  # the daemon starts while the server is still loading its model
    with pytest.raises(VlmUnavailable, match="cannot list models"):
        _ = provider.model_id


def test_videos_wait_for_a_vlm_server_that_is_down_without_using_up_attempts(
        make_settings: Callable[..., Settings], chat_server: Callable[..., ChatServer], talk_video: Path) -> None:
    port = _free_port()
    s = make_settings(analyzer="openai", openai_base_url=f"http://127.0.0.1:{port}/v1", openai_timeout=5,
                      window_seconds=20, window_overlap=4, vlm_fps=1, vlm_max_pixels=64 * 64, max_attempts=1)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder)
    for _ in range(2):  # more outages than VIDX_MAX_ATTEMPTS allows failures
        out = pipeline.process(dest)
        assert out.state == "pending" and "waiting for a service" in (out.error or "")
    (row,) = pipeline.ledger.rows()
    assert (row.state, row.attempts) == ("pending", 0)
    server = chat_server(realistic, port)  # the server comes up
    out = pipeline.process(dest)
    assert out.state == "done", out.error
    assert sum(server.calls.values()) >= 2 and pipeline.ledger.rows()[0].error is None


def test_auto_choice_logs_why(make_settings: Callable[..., Settings]) -> None:
    from ingest.analyzers import choose_analyzer

    assert choose_analyzer(make_settings(analyzer="auto"))[0] == "basic"
    name, why = choose_analyzer(make_settings(analyzer="auto", openai_base_url="http://x:8000/v1"))
    assert name == "openai" and "VIDX_OPENAI_BASE_URL" in why
    name, why = choose_analyzer(make_settings(analyzer="auto", qwen_model="/nonexistent/qwen"))
    assert name == "basic" and "Qwen3-VL not usable" in why



def test_embedding_model_change_reindexes_without_asking_the_vlm_again(
        make_settings: Callable[..., Settings], chat_server: Callable[[Responder], ChatServer], talk_video: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild after VIDX_EMBED_MODEL changes re-embeds the windows the ledger kept: zero VLM calls."""
    from vidx import cli

    server = chat_server(realistic)
    s = _settings(make_settings, server.url)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    assert build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder).process(dest).state \
        == "done"
    asked = len(server.requests)
    before = {(h.event.start_sec, h.event.description)
              for h in EmbeddedStore(s.store_path).search_keyword("presenter", 20).hits}

    other = HashEmbedder(dims=32)
    other.model_id = "test/other-embedder"
    monkeypatch.setattr("vidx.embed.load_embedder", lambda *a, **k: other)
    assert cli.cmd_reindex(cli.build_parser().parse_args(["reindex", "-q"]), s) == 0
    assert len(server.requests) == asked  # every window came from the ledger
    store = EmbeddedStore(s.store_path)
    assert store.embedding_model() == "test/other-embedder"
    after = {(h.event.start_sec, h.event.description) for h in store.search_keyword("presenter", 20).hits}
    assert after == before


def test_a_slow_vlm_server_leaves_the_video_waiting_not_failed_as_a_hung_decoder(
        make_settings: Callable[..., Settings], chat_server: Callable[[Responder], ChatServer],
        talk_video: Path) -> None:
    """Defect 4: every try times out, and the tries together last longer than VIDX_STALL_SECONDS:
    the video waits for the service (pending, no attempt used), it is not a hung decoder."""
    import time

    def slow(start: float, end: float, call: int) -> str | int:
        time.sleep(1.4)
        return answer([])

    server = chat_server(slow)
    s = _settings(make_settings, server.url, openai_timeout=0.6, openai_retries=3, openai_backoff=0.3,
                  stall_seconds=1.2, vlm_concurrency=2, max_attempts=1)
    dest = s.watch_dir / "talk.mp4"
    shutil.copy(talk_video, dest)
    pipeline = build_pipeline(s, store=EmbeddedStore(s.store_path), embedder_factory=HashEmbedder)
    out = pipeline.process(dest)
    assert out.state == "pending", out.error
    assert "waiting for a service" in (out.error or "") and "hang" not in (out.error or "")
    (row,) = pipeline.ledger.rows()
    assert row.attempts == 0


def test_a_stall_limit_shorter_than_one_vlm_request_is_refused_at_start_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VIDX_DATA_DIR": str(tmp_path / "data"),
           "VIDX_WATCH_DIR": str(tmp_path / "watch"), "VIDX_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "VIDX_OPENAI_TIMEOUT": "600", "VIDX_STALL_SECONDS": "300"}
    (tmp_path / "watch").mkdir()
    proc = subprocess.run([sys.executable, "-m", "vidx", "status"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "VIDX_STALL_SECONDS" in proc.stderr and "VIDX_OPENAI_TIMEOUT" in proc.stderr
    assert "Traceback" not in proc.stderr
