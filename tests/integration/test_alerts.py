"""Saved searches that notify, as a user meets them: `vidx run`, save a search through the
HTTP API with an Apprise ``json://`` URL, drop a video, receive one notification with the
moment's time and text; a notifier that is down is retried, shown on the status page, and
its notification arrives once it is back."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_journeys import Running, base_env, drop, free_port, wait_for

pytestmark = pytest.mark.slow
KEY = "k" * 32


@contextmanager
def receiver(port: int = 0) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A webhook that records every JSON body posted to it (written here, not by vidx)."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append({"path": self.path, "body": json.loads(body or b"null")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1], got
    finally:
        srv.shutdown()
        srv.server_close()


def api(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Keyed(Running):
    def status(self) -> dict[str, str]:
        return {Path(v["path"]).name: v["state"] for v in api(self.url + "/api/status")[1]["videos"]}


def test_a_saved_search_notifies_once_per_new_video_and_survives_a_notifier_that_is_down(
        tmp_path: Path, talk_video: Path) -> None:
    env = base_env(tmp_path, VIDX_UI_API_KEY=KEY, VIDX_ALERT_RETRY_SECONDS="0.5",
                   VIDX_PUBLIC_URL="https://vidx.example.org")
    down_port = free_port()  # nothing listens here yet
    with receiver() as (port, got):
        run = Keyed(env)
        try:
            code, saved = api(run.url + "/api/saved-searches", "POST",
                              {"q": "lighthouse keeper", "mode": "keyword", "notify": f"json://127.0.0.1:{port}/hook"})
            assert code == 201 and saved["notify_to"] == f"json://127.0.0.1:{port}"
            code, later = api(run.url + "/api/saved-searches", "POST",
                              {"q": "lighthouse", "mode": "keyword", "notify": f"http://127.0.0.1:{down_port}/hook"})
            assert code == 201
            code, err = api(run.url + "/api/saved-searches", "POST", {"q": "x", "notify": "not a url"})
            assert code == 400 and "notify" in err["error"]
            code, err = api(run.url + "/api/saved-searches", "POST", {"q": "  ", "mode": "keyword"})
            assert code == 400 and "q" in err["error"]

            drop(talk_video, tmp_path / "watch")
            wait_for(lambda: run.status().get("talk.mp4") == "done", 120, "talk.mp4 indexed", run.proc)
            wait_for(lambda: len(got) >= 1, 30, "the notification", run.proc)
            # the json:// notification: Apprise's JSON with our title and body
            (note,) = got
            assert note["path"] == "/hook"
            message = note["body"]["message"]
            assert "00:26" in message and "The lighthouse keeper climbed the stairs at dawn." in message
            assert "https://vidx.example.org/videos/" in message and "?t=26.00" in message
            assert "lighthouse keeper" in note["body"]["title"] and "talk.mp4" in note["body"]["title"]

            # the webhook that is down: retried, and the status page says why
            def waiting() -> dict[str, Any]:
                items = api(run.url + "/api/saved-searches")[1]["saved_searches"]
                return next(s for s in items if s["id"] == later["id"])["notifications"]  # type: ignore[no-any-return]

            wait_for(lambda: waiting()["waiting"] == 1 and bool(waiting()["last_error"]), 30, "a failed try", run.proc)
            assert "cannot be reached" in waiting()["last_error"]
            req = urllib.request.Request(run.url + "/status", headers={"Authorization": f"Bearer {KEY}"})
            page = urllib.request.urlopen(req, timeout=30).read().decode()
            assert "cannot be reached" in page and "tried again later" in page
            with receiver(down_port) as (_, late):
                wait_for(lambda: len(late) == 1, 60, "the retried notification", run.proc)
                body = late[0]["body"]  # a plain https? webhook gets vidx's own JSON
                assert body["video"]["name"] == "talk.mp4" and body["search"]["q"] == "lighthouse"
                assert any(m["time"] == "00:26" and "lighthouse keeper" in m["text"] for m in body["moments"])
                wait_for(lambda: waiting() == {**waiting(), "waiting": 0, "sent": 1}, 30, "sent", run.proc)
            assert len(got) == 1  # one notification per search and video, never repeated
            code, _ = api(run.url + f"/api/saved-searches/{saved['id']}", "DELETE")
            assert code == 204 and api(run.url + f"/api/saved-searches/{saved['id']}", "DELETE")[0] == 404
            assert [s["id"] for s in api(run.url + "/api/saved-searches")[1]["saved_searches"]] == [later["id"]]
        finally:
            _, err = run.stop()
    assert run.proc.returncode == 0, err

