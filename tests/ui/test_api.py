from __future__ import annotations

import shutil
import time
from pathlib import Path

import av
import pytest
from flask import Flask

from tests.fakes.embedder import HashEmbedder
from tests.media import make_video
from tests.ui.conftest import XSS, add_video
from vidx.config import Settings
from vidx.ledger import Ledger
from vidx.media import CLIP_PAD_S, clip_name


def test_healthz(app: Flask) -> None:
    r = app.test_client().get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


@pytest.mark.parametrize("qs", [
    {"q": "x", "mode": "fuzzy"},
    {"q": "x", "size": "0"},
    {"q": "x", "size": "1000"},
    {"q": "x", "size": "ten"},
    {"q": "x", "video_id": "../../etc/passwd"},
    {"q": "x" * 10_000_000},
])
def test_bad_parameters_are_400_json(app: Flask, qs: dict[str, str]) -> None:
    r = app.test_client().get("/api/search", query_string=qs)
    assert r.status_code == 400
    assert r.is_json and r.get_json()["error"]


def test_ten_megabyte_query_is_refused_quickly(app: Flask) -> None:
    r = app.test_client().get("/", query_string={"q": "é" * 5_000_000})
    assert r.status_code == 400 and "too long" in r.get_data(as_text=True)


def test_unknown_api_route_is_json_404(app: Flask) -> None:
    r = app.test_client().get("/api/nope<script>")
    assert r.status_code == 404 and r.is_json and "<script>" not in r.get_data(as_text=True)


def test_status_shape(app: Flask, settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> None:
    add_video(settings, talk_video, [{"description": "x", "start_sec": 1, "end_sec": 2}], hash_embedder)
    data = app.test_client().get("/api/status").get_json()
    (v,) = data["videos"]
    assert v["state"] == "done" and v["events"] == 1 and v["path"] == str(talk_video)
    assert set(v) >= {"video_id", "path", "state", "events", "error", "progress"}


def test_search_hit_shape(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    video = settings.watch_dir / "v.mp4"
    add_video(settings, video, [{"description": "a quiet harbour at night", "start_sec": 3, "end_sec": 7}],
              hash_embedder)
    for mode in ("keyword", "semantic", "hybrid"):
        data = app.test_client().get("/api/search", query_string={"q": "harbour", "mode": mode}).get_json()
        assert data["total"] >= 1
        h = data["hits"][0]
        assert set(h) >= {"event_id", "video_id", "video_path", "start_sec", "end_sec", "description", "dialogue",
                          "ocr_text", "people", "location", "action", "objects", "score", "clip_url",
                          "thumbnail_url", "highlights"}
        assert (h["start_sec"], h["end_sec"]) == (3, 7)
        assert h["clip_url"].endswith(f"#t=3.00,{7 + CLIP_PAD_S:.2f}")  # plays on a little after the event


@pytest.mark.parametrize("attack", [
    "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd", "..%252f", "..\\..\\windows",
    "%00", "．．/．．/etc", "NUL", "CON", "x" * 5000,
])
def test_media_routes_resist_traversal(app: Flask, attack: str) -> None:
    c = app.test_client()
    for url in (f"/media/clip/{attack}", f"/media/thumb/{attack}.jpg", f"/media/clip/{attack}/x"):
        r = c.get(url)
        assert r.status_code in (400, 404), url
        assert b"root:" not in r.data


def test_video_outside_the_media_root_is_not_served(app: Flask, settings: Settings, hash_embedder: HashEmbedder,
                                                     tmp_path: Path, talk_video: Path) -> None:
    outside = tmp_path / "elsewhere" / "secret.mp4"
    outside.parent.mkdir()
    shutil.copy(talk_video, outside)
    (e,) = add_video(settings, outside, [{"description": "secret"}], hash_embedder)
    assert app.test_client().get(f"/media/clip/{e.event_id}").status_code == 404
    link = settings.watch_dir / "link.mp4"
    link.symlink_to(outside)  # a symlink in the root that leads out of it
    (e2,) = add_video(settings, link, [{"description": "linked"}], hash_embedder)
    assert app.test_client().get(f"/media/clip/{e2.event_id}").status_code == 404


def test_clip_range_requests(app: Flask, settings: Settings, hash_embedder: HashEmbedder, talk_video: Path) -> None:
    video = settings.watch_dir / "talk.mp4"
    shutil.copy(talk_video, video)
    (e,) = add_video(settings, video, [{"description": "x"}], hash_embedder)
    c = app.test_client()
    size = video.stat().st_size
    r = c.get(f"/media/clip/{e.event_id}", headers={"Range": "bytes=0-1023"})
    assert r.status_code == 206 and r.mimetype == "video/mp4" and len(r.data) == 1024
    assert r.headers["Content-Range"] == f"bytes 0-1023/{size}"
    assert c.get(f"/media/clip/{e.event_id}", headers={"Range": "bytes=-100"}).status_code == 206
    assert c.get(f"/media/clip/{e.event_id}", headers={"Range": f"bytes={size + 10}-"}).status_code == 416
    assert c.get(f"/media/clip/{e.event_id}").status_code == 200


def test_unplayable_codec_is_served_as_an_h264_clip(app: Flask, settings: Settings,
                                                    hash_embedder: HashEmbedder) -> None:
    video = settings.watch_dir / "old.avi"
    make_video(video, scenes=[(3.0, (200, 0, 0)), (3.0, (0, 0, 200))], fps=10, codec="mpeg4")
    (e,) = add_video(settings, video, [{"description": "x", "start_sec": 3.0, "end_sec": 5.0}], hash_embedder)
    client = app.test_client()
    r = client.get(f"/media/clip/{e.event_id}", headers={"Range": "bytes=0-"})
    for _ in range(200):  # made off the request thread: 503 + Retry-After until it is ready
        if r.status_code != 503:
            break
        assert r.is_json and r.headers["Retry-After"] == "1"
        time.sleep(0.1)
        r = client.get(f"/media/clip/{e.event_id}", headers={"Range": "bytes=0-"})
    assert r.status_code == 206 and r.mimetype == "video/mp4"
    clip = settings.clips_dir / e.video_id / clip_name(e.event_id)
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.name == "h264"
        frames = list(c.decode(vs))
    assert 15 <= len(frames) <= 25 + 10 * CLIP_PAD_S  # 2 s at 10 fps cut from 3 s, and the pad after it


def test_security_headers(app: Flask) -> None:
    r = app.test_client().get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'self'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_api_key_protects_every_route(make_settings, hash_embedder: HashEmbedder) -> None:  # type: ignore[no-untyped-def]
    from search_ui import create_app

    s = make_settings(ui_api_key="s3cret")
    app = create_app(s, embedder_factory=lambda: hash_embedder)
    c = app.test_client()
    for url in ("/api/search?q=x", "/api/status", "/media/clip/" + "0" * 32, "/media/thumb/x.jpg", "/metrics",
                "/api/openapi.json", "/api/docs", f"/api/videos/{'0' * 32}/transcript"):
        assert c.get(url).status_code == 401, url
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    for page in ("/", "/status", f"/videos/{'0' * 32}"):  # a browser is sent to the sign-in form
        r = c.get(page)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), page
    assert c.get("/api/status", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/api/status", headers={"Authorization": "Basic dTpzM2NyZXQ="}).status_code == 200  # u:s3cret
    assert c.get("/healthz").status_code == 200


def test_page_escapes_untrusted_text(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    from html.parser import HTMLParser

    video = settings.watch_dir / "x.mp4"
    add_video(settings, video, [
        {"description": f"villain {p}", "dialogue": f"villain says {p}", "ocr_text": p, "people": [p],
         "start_sec": i, "end_sec": i + 1}
        for i, p in enumerate(XSS)
    ] + [{"description": "villain " + "A" * 100_000, "start_sec": 50, "end_sec": 51}], hash_embedder)
    r = app.test_client().get("/", query_string={"q": "villain <script>alert(9)</script>", "mode": "keyword",
                                                 "size": 50, "min_score": 0})
    html = r.get_data(as_text=True)

    class Check(HTMLParser):
        tags: list[str] = []
        bad: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            for k, v in attrs:
                if k.startswith("on") or (v or "").strip().lower().startswith("javascript:"):
                    self.bad.append(f"{tag} {k}={v}")

    chk = Check()
    chk.feed(html)
    assert chk.tags.count("script") == 1  # only our own /static/app.js
    assert "svg" not in chk.tags and "img" not in chk.tags and "b" not in chk.tags
    assert not chk.bad
    assert "{{7*7}}" in html  # not evaluated as a template
    assert "<em>villain</em>" in html
    assert len(html) < 200_000  # 100 KB of model text is cut on the page


def test_elasticsearch_down_is_a_json_503(settings: Settings, hash_embedder: HashEmbedder) -> None:
    from search_ui import create_app
    from tests.es_store import make_elastic_store

    store = make_elastic_store()
    store.ensure_schema(hash_embedder.model_id, hash_embedder.dims)
    Ledger(settings.ledger_path)
    client = create_app(settings, store=store, embedder_factory=lambda: hash_embedder).test_client()
    store.fake.down = True
    for url in ("/api/status", "/api/search?q=harbour&mode=hybrid"):
        resp = client.get(url)
        assert resp.status_code == 503 and resp.is_json, url
        err = resp.get_json()["error"]
        assert "cannot be reached" in err
        assert "127.0.0.1" not in err and "9200" not in err and "http" not in err  # no internal URL
    page = client.get("/?q=harbour")
    assert page.status_code == 503 and b"cannot be reached" in page.data and b"Traceback" not in page.data
    assert b"127.0.0.1:9200" not in page.data


def test_transcript_in_each_format(app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    import pysubs2

    video = settings.watch_dir / "meeting.mp4"
    video.write_bytes(b"x")
    evs = add_video(settings, video, [
        {"start_sec": 0.0, "end_sec": 9.0, "description": "Scene 1", "source": "scene"},
        {"start_sec": 1.25, "end_sec": 3.5, "dialogue": "Good morning --> everyone.", "source": "speech",
         "language": "en"},
        {"start_sec": 4.0, "end_sec": 6.0, "dialogue": "<script>alert(1)</script>\n\nsecond line", "source": "speech"},
    ], hash_embedder)
    vid = evs[0].video_id
    c = app.test_client()
    data = c.get(f"/api/videos/{vid}/transcript").get_json()
    assert [(x["start_sec"], x["text"]) for x in data["lines"]] == [
        (1.25, "Good morning --> everyone."), (4.0, "<script>alert(1)</script>\n\nsecond line")]
    for fmt, mime in (("srt", "application/x-subrip"), ("vtt", "text/vtt")):
        r = c.get(f"/api/videos/{vid}/transcript?format={fmt}")
        assert r.status_code == 200 and r.mimetype == mime
        assert r.headers["Content-Disposition"] == f'attachment; filename="meeting.{fmt}"'
        subs = pysubs2.SSAFile.from_string(r.get_data(as_text=True), format_=fmt)
        assert [(x.start, x.end) for x in subs] == [(1250, 3500), (4000, 6000)]  # one cue per line, times kept
        assert "second line" in subs[1].plaintext
    assert c.get(f"/api/videos/{vid}/transcript?format=doc").status_code == 400
    assert c.get(f"/api/videos/{'0' * 32}/transcript").status_code == 404
    r = c.get("/api/videos/..%2f..%2fetc/transcript")
    assert r.status_code == 404 and r.is_json


def _late_audio_mkv(path: Path, beep_at: float, audio_starts: float = 3.0, seconds: float = 10.0) -> Path:
    """An MKV whose audio starts ``audio_starts`` s after its picture, with a 1 kHz beep at
    video time ``beep_at``."""
    from fractions import Fraction

    import numpy as np

    rate = 16000
    with av.open(str(path), "w", format="matroska") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 36, "yuv420p"
        ast = out.add_stream("mp2", rate=rate)
        ast.layout = "mono"
        for n in range(int(seconds * 10)):
            f = av.VideoFrame.from_ndarray(np.full((36, 64, 3), (n * 5) % 255, dtype=np.uint8), format="rgb24")
            f.pts, f.time_base = n, Fraction(1, 10)
            for pkt in vs.encode(f):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        t = np.arange(int((seconds - audio_starts) * rate)) / rate + audio_starts
        track = np.where((t >= beep_at) & (t < beep_at + 0.5), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        track = (track * 32767).astype(np.int16)
        first = int(audio_starts * rate)
        for i in range(0, len(track), 1152):
            af = av.AudioFrame.from_ndarray(track[None, i:i + 1152], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, first + i, Fraction(1, rate)
            for pkt in ast.encode(af):
                out.mux(pkt)
        for pkt in ast.encode():
            out.mux(pkt)
    return path


def test_clip_audio_is_on_the_picture_clock_and_the_clip_keeps_the_last_word(
        app: Flask, settings: Settings, hash_embedder: HashEmbedder) -> None:
    """Defect 10: a file whose audio starts 3 s after its picture: the clip's sound is heard
    with its picture, and a clip covers its event plus a short pad (the last word is not cut)."""
    import numpy as np


    video = _late_audio_mkv(settings.watch_dir / "late.mkv", beep_at=5.0)
    with av.open(str(video)) as c:  # the file is what the test says
        a = c.streams.audio[0]
        assert abs(float(a.start_time * a.time_base) - 3.0) < 0.1
    (e,) = add_video(settings, video, [{"description": "beep", "start_sec": 4.0, "end_sec": 5.5}], hash_embedder)
    client = app.test_client()
    hit = client.get("/api/search", query_string={"q": "beep", "mode": "keyword"}).get_json()["hits"][0]
    assert hit["clip_end"] >= 1.5 + CLIP_PAD_S - 1e-6  # the player stops after the pad
    r = client.get(f"/media/clip/{e.event_id}")
    for _ in range(300):
        if r.status_code != 503:
            break
        time.sleep(0.1)
        r = client.get(f"/media/clip/{e.event_id}")
    assert r.status_code == 200
    clip = settings.clips_dir / e.video_id / clip_name(e.event_id)
    with av.open(str(clip)) as c:
        assert float(c.duration or 0) / 1e6 >= 1.5 + CLIP_PAD_S - 0.15
        st = c.streams.audio[0]
        samples = []
        for fr in c.decode(st):
            samples.append(fr.to_ndarray().mean(axis=0))
            rate = fr.sample_rate
    x = np.concatenate(samples)
    loud = np.flatnonzero(np.abs(x) > 0.1)
    assert len(loud), "the beep is not in the clip"
    onset = loud[0] / rate
    assert abs(onset - 1.0) <= 0.1, onset  # the beep at 5.0 s is heard 1.0 s into a clip from 4.0 s
