"""Clips of a source the browser cannot play, under load, through the real HTTP server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.fakes.embedder import HashEmbedder
from tests.media import make_video
from tests.ui.conftest import add_video
from vidx.config import Settings
from vidx.media import CLIP_PAD_S

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_twenty_clip_requests_never_stall_healthz_or_search(settings: Settings, hash_embedder: HashEmbedder) -> None:
    from waitress.server import create_server

    from search_ui import create_app

    src = make_video(settings.watch_dir / "old.avi", fps=10, codec="mpeg4", container="avi", audio="mp3")
    evs = add_video(settings, src, [{"start_sec": float(i), "end_sec": float(i) + 1.5,
                                     "description": f"moment number {i}"} for i in range(20)], hash_embedder)
    app = create_app(settings, embedder_factory=lambda: hash_embedder)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    try:
        code, _, body = _get(base + "/api/search?q=moment&mode=keyword&size=20")
        hits = json.loads(body)["hits"]
        assert code == 200 and len(hits) == 20
        # a transcoded clip starts at the event: the fragment says 0 to its length plus the tail
        assert all(h["clip_url"].endswith(f"#t=0.00,{h['end_sec'] - h['start_sec'] + CLIP_PAD_S:.2f}") for h in hits)

        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                assert _get(base + "/healthz")[0] == 200
                assert _get(base + "/api/search?q=moment&mode=keyword")[0] == 200
                latencies.append(time.monotonic() - t0)
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()

        def fetch(e: Any) -> tuple[int, str]:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                code, headers, _ = _get(f"{base}/media/clip/{e.event_id}")
                if code != 503:
                    return code, headers.get("Content-Type", "")
                assert headers.get("Retry-After")
                time.sleep(0.2)
            return 0, ""

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(fetch, evs))
        stop.set()
        prober.join(10)
        assert results == [(200, "video/mp4")] * 20
        print(f"[figure] 20 clips: healthz+search max {max(latencies):.3f}s over {len(latencies)} probes")
        assert latencies and max(latencies) < 1.0, max(latencies)
    finally:
        server.close()
        app.extensions["vidx"]["clips"].shutdown()


def test_clip_cache_is_capped_oldest_first(make_settings: Any, hash_embedder: HashEmbedder) -> None:
    from search_ui.clips import ClipMaker

    s = make_settings(clip_cache_mb=16)
    maker = ClipMaker(s)
    folder = s.clips_dir / ("a" * 32)
    folder.mkdir(parents=True)
    for i in range(3):
        p = folder / f"{i}.mp4"
        p.write_bytes(b"\0" * (7 * 1024 * 1024))
        t = time.time() - 100 + i
        import os

        os.utime(p, (t, t))
    maker.prune()
    assert sorted(p.name for p in folder.iterdir()) == ["1.mp4", "2.mp4"]
