"""Upload (atomic, size limit, extension check, safe names), sign-in with a session cookie,
CSRF on state changes, and /metrics."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from search_ui.upload import safe_name
from tests.fakes.embedder import HashEmbedder
from vidx.config import Settings


def _csrf(c: FlaskClient, page: str = "/status") -> str:
    html = c.get(page).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def test_upload_through_the_form_lands_in_the_watch_folder(app: Flask, settings: Settings) -> None:
    c = app.test_client()
    token = _csrf(c)
    data = {"file": (io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"x" * 5000), "../../Ferien 2024 夏天.MP4"),
            "csrf_token": token, "then": "status"}
    r = c.post("/api/upload", data=data, content_type="multipart/form-data")
    assert r.status_code == 303 and "/status" in r.headers["Location"]
    files = sorted(p.name for p in settings.watch_dir.iterdir())
    assert files == ["Ferien 2024 夏天.mp4"]  # no folder part, letters kept, no temporary file left
    assert c.get(r.headers["Location"]).status_code == 200
    # the same name again never overwrites
    data["file"] = (io.BytesIO(b"y" * 100), "Ferien 2024 夏天.mp4")
    assert c.post("/api/upload", data=data, content_type="multipart/form-data").status_code == 303
    assert sorted(p.name for p in settings.watch_dir.iterdir()) == ["Ferien 2024 夏天 (2).mp4", "Ferien 2024 夏天.mp4"]


@pytest.mark.parametrize("name, body, status, words", [
    ("notes.txt", b"text", 415, "not a video type"),
    ("noextension", b"x", 415, "not a video type"),
    ("empty.mp4", b"", 400, "empty"),
    ("", b"x", 400, "no file"),
])
def test_each_refusal_has_a_clear_error_and_leaves_nothing(app: Flask, settings: Settings, name: str, body: bytes,
                                                            status: int, words: str) -> None:
    c = app.test_client()
    token = _csrf(c)
    r = c.post("/api/upload", data={"file": (io.BytesIO(body), name), "csrf_token": token},
               content_type="multipart/form-data")
    assert r.status_code == status and words in r.get_json()["error"]
    assert list(settings.watch_dir.iterdir()) == []


def test_too_large_is_413(make_settings: Callable[..., Settings], hash_embedder: HashEmbedder) -> None:
    from search_ui import create_app

    s = make_settings(upload_max_mb=1)
    c = create_app(s, embedder_factory=lambda: hash_embedder).test_client()
    token = _csrf(c)
    r = c.post("/api/upload", data={"file": (io.BytesIO(b"x" * (2 * 1024 * 1024)), "big.mp4"), "csrf_token": token},
               content_type="multipart/form-data")
    assert r.status_code == 413 and r.is_json
    assert list(s.watch_dir.iterdir()) == []


def test_state_changes_need_the_csrf_token(app: Flask, settings: Settings) -> None:
    c = app.test_client()
    r = c.post("/api/upload", data={"file": (io.BytesIO(b"x" * 10), "a.mp4")}, content_type="multipart/form-data")
    assert r.status_code == 403 and "CSRF" in r.get_json()["error"]
    assert list(settings.watch_dir.iterdir()) == []


def test_sign_in_with_a_session_cookie(make_settings: Callable[..., Settings], hash_embedder: HashEmbedder) -> None:
    from search_ui import create_app

    s = make_settings(ui_api_key="s3cret")
    c = create_app(s, embedder_factory=lambda: hash_embedder).test_client()
    assert c.get("/status").status_code == 302
    token = _csrf(c, "/login")
    bad = c.post("/login", data={"key": "wrong", "csrf_token": token, "next": "/status"})
    assert bad.status_code == 401 and b"Wrong key" in bad.data
    r = c.post("/login", data={"key": "s3cret", "csrf_token": token, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["Location"] == "/"  # never off the site
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get("/status").status_code == 200 and c.get("/api/status").status_code == 200
    token = _csrf(c)
    up = c.post("/api/upload", data={"file": (io.BytesIO(b"x" * 10), "a.mkv"), "csrf_token": token},
                content_type="multipart/form-data")
    assert up.status_code == 201
    # with the key itself, no CSRF token is needed (API clients)
    api = c.application.test_client().post("/api/upload", data={"file": (io.BytesIO(b"x" * 10), "b.mkv")},
                                           headers={"Authorization": "Bearer s3cret"},
                                           content_type="multipart/form-data")
    assert api.status_code == 201
    c.post("/logout", data={"csrf_token": token})
    assert c.get("/api/status").status_code == 401


def test_binding_beyond_loopback_without_a_key_warns(make_settings: Callable[..., Settings],
                                                     hash_embedder: HashEmbedder,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from search_ui import create_app

    create_app(make_settings(host="0.0.0.0"), embedder_factory=lambda: hash_embedder)
    assert any("without VIDX_UI_API_KEY" in r.message for r in caplog.records)


def test_metrics_in_prometheus_text_format(app: Flask) -> None:
    c = app.test_client()
    c.get("/api/search?q=lighthouse&mode=keyword")
    c.get("/api/search?q=x&mode=nope")
    text = c.get("/metrics").get_data(as_text=True)
    assert 'vidx_searches_total{mode="keyword"} 1.0' in text
    assert 'vidx_http_requests_total{method="GET",route="/api/search",status="400"} 1.0' in text
    assert "vidx_http_request_seconds_bucket" in text and "vidx_ingest_queue" in text


@pytest.mark.parametrize("raw, want", [("../../etc/passwd.mp4", "passwd.mp4"), (".hidden.mkv", "hidden.mkv"),
                                       ("CON.mp4", "_CON.mp4"), ("a\x00b\nc.MOV", "abc.mov"),
                                       ("C:\\Users\\x\\clip.avi", "clip.avi"), ("...", "upload")])
def test_safe_names(raw: str, want: str) -> None:
    assert safe_name(raw) == want


def test_requeue_button_leaves_a_request_the_daemon_takes(app: Flask, settings: Settings) -> None:
    from ingest.daemon import Daemon, build_pipeline
    from vidx.ledger import Ledger
    from vidx.store.embedded import EmbeddedStore

    ledger = Ledger(settings.ledger_path)
    ledger.observe("/w/bad.mp4", 1, 1, "")
    ledger.set("/w/bad.mp4", state="failed", error="cannot open", attempts=3)
    ledger.observe("/w/ok.mp4", 1, 1, "")
    ledger.set("/w/ok.mp4", state="done")
    c = app.test_client()
    html = c.get("/status").get_data(as_text=True)
    assert html.count("try again") == 1
    token = _csrf(c)
    assert c.post("/api/requeue", data={"path": "/w/ok.mp4", "csrf_token": token}).status_code == 409
    assert c.post("/api/requeue", data={"path": "/nope.mp4", "csrf_token": token}).status_code == 404
    assert c.post("/api/requeue", data={"path": "/w/bad.mp4"}).status_code == 403  # no CSRF token
    r = c.post("/api/requeue", data={"path": "/w/bad.mp4", "csrf_token": token, "then": "status"})
    assert r.status_code == 303
    assert ledger.get("/w/bad.mp4").state == "failed"  # type: ignore[union-attr]  # the UI wrote no ledger row
    emb = HashEmbedder()
    d = Daemon(settings, build_pipeline(settings, store=EmbeddedStore(settings.store_path),
                                        embedder_factory=lambda: emb))
    assert d.take_requests() == 1
    row = ledger.get("/w/bad.mp4")
    assert row is not None and row.state == "pending" and row.attempts == 0
    assert list(settings.requests_dir.iterdir()) == []


def test_a_foreign_host_header_is_refused_so_dns_rebinding_reads_nothing(app: Flask) -> None:
    """A web page that rebinds its own name to 127.0.0.1 sends its name as Host: refused."""
    c = app.test_client()
    for path in ("/api/search?q=lighthouse", "/", "/api/status", "/status"):
        r = c.get(path, headers={"Host": "evil.example:8080"})
        assert r.status_code == 400, path
        assert b"lighthouse" not in r.data and b"csrf" not in r.data.lower()
    for host in ("localhost:8080", "127.0.0.1:8080", "localhost"):
        assert c.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_trusted_hosts_follow_the_setting(settings: Settings, hash_embedder: HashEmbedder) -> None:
    from search_ui import create_app

    named = create_app(settings.model_copy(update={"trusted_hosts": "vidx.lan, .home.arpa"}),
                       embedder_factory=lambda: hash_embedder).test_client()
    assert named.get("/healthz", headers={"Host": "vidx.lan"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "tv.home.arpa"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "localhost"}).status_code == 400
    lan = create_app(settings.model_copy(update={"host": "0.0.0.0"}), embedder_factory=lambda: hash_embedder)
    assert lan.test_client().get("/healthz", headers={"Host": "192.168.1.20:8080"}).status_code == 200


def test_two_uploads_of_one_name_at_the_same_moment_both_keep_their_bytes(app: Flask, settings: Settings,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests finish receiving at the same instant, then name their files: neither
    replaces the other, and each answer names the file it became."""
    import os
    import threading


    barrier = threading.Barrier(2)
    renaming = threading.Barrier(2)
    real_replace = os.replace

    def slow_replace(src: str, dst: str) -> None:  # a rename that takes a moment: both requests get there
        try:
            renaming.wait(2)
        except threading.BrokenBarrierError:
            pass
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", slow_replace)

    class Arriving(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            chunk = super().read(n)
            if not chunk:
                barrier.wait(10)  # both bodies complete: the two requests race to the name
            return chunk

    answers: dict[str, str] = {}

    def upload(body: bytes) -> None:
        c: FlaskClient = app.test_client()
        r = c.post("/api/upload", data={"file": (Arriving(body), "meeting.mp4"), "csrf_token": _csrf(c)},
                   content_type="multipart/form-data")
        assert r.status_code == 201, r.get_data(as_text=True)
        answers[body.decode()[:1]] = r.get_json()["name"]

    threads = [threading.Thread(target=upload, args=(ch.encode() * 3000,)) for ch in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(answers.values()) == ["meeting (2).mp4", "meeting.mp4"]
    for ch, name in answers.items():
        assert (settings.watch_dir / name).read_bytes() == ch.encode() * 3000
    assert sorted(p.name for p in settings.watch_dir.iterdir()) == ["meeting (2).mp4", "meeting.mp4"]
