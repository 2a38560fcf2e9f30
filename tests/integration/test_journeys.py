"""User journeys through the real `vidx` command, as a user runs them.

Elasticsearch: `vidx es-setup` -> `vidx run` (drop a video, wait for done) -> search in each
mode over HTTP -> `vidx reindex` after changing the embedding model -> `vidx verify` ->
`vidx kibana-setup`, against a fake Elasticsearch and a fake Kibana served over HTTP on
loopback (independent of vidx: own tokenizer, highlighter and aggregation paging).
The same journey on the embedded store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fakes.es_server import serve
from tests.fakes.kibana_server import serve_kibana

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDX_")}
    env.update(VIDX_WATCH_DIR=str(tmp / "watch"), VIDX_DATA_DIR=str(tmp / "data"), VIDX_ANALYZER="basic",
               VIDX_OCR="false", VIDX_STABLE_SECONDS="0.5", VIDX_RESCAN_SECONDS="1", VIDX_POLL_SECONDS="0.2",
               VIDX_CONFIG=str(tmp / "none.toml"), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def vidx(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidx", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=env["VIDX_DATA_DIR"].rsplit("/", 1)[0])


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def send_json(url: str, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A JSON request as curl sends it (no token): (status, decoded answer)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(cond: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"vidx exited ({proc.returncode}) while waiting for {what}: {proc.stderr.read()}")
        try:
            if cond():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """`vidx run` as a child process; stopped with SIGTERM like a service manager does."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**env, "VIDX_PORT": str(self.port)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "vidx", "run"], env=self.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=env["VIDX_DATA_DIR"].rsplit("/", 1)[0])
        wait_for(lambda: get_json(self.url + "/healthz")[0] == 200, 120, "the UI", self.proc)

    def status(self) -> dict[str, str]:
        return {Path(v["path"]).name: v["state"] for v in get_json(self.url + "/api/status")[1]["videos"]}

    def search(self, q: str, mode: str) -> list[dict[str, Any]]:
        code, data = get_json(f"{self.url}/api/search?q={urllib.request.quote(q)}&mode={mode}&size=5")
        assert code == 200, data
        return data["hits"]  # type: ignore[no-any-return]

    def stop(self) -> tuple[float, str]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return time.monotonic() - t0, err


def drop(talk_video: Path, watch: Path, stem: str = "talk") -> None:
    watch.mkdir(parents=True, exist_ok=True)
    shutil.copy(talk_video.with_suffix(".srt"), watch / f"{stem}.srt")
    shutil.copy(talk_video, watch / f"{stem}.mp4")


def check_search(run: Running) -> None:
    kw = run.search("lighthouse keeper", "keyword")
    assert (kw[0]["start_sec"], kw[0]["end_sec"]) == (26.0, 29.0)
    assert "<em>" in " ".join(kw[0]["highlights"].get("dialogue", []))
    sem = run.search("the man who looks after the lighthouse went upstairs at sunrise", "semantic")
    assert any(h["start_sec"] <= 26.0 and h["end_sec"] >= 29.0 for h in sem[:3])
    hyb = run.search("keeper of the beacon", "hybrid")
    assert hyb[0]["start_sec"] <= 26.0 <= hyb[0]["end_sec"]


def other_model(tmp: Path) -> str:
    """The bundled MiniLM under another name: for vidx another embedding model."""
    from vidx.embed import resolve_model

    dest = tmp / "other-minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), dest)
    return str(dest)


def test_elasticsearch_journey(tmp_path: Path, talk_video: Path) -> None:
    with serve() as (es_url, fake), serve_kibana() as (kb_url, kibana):
        env = base_env(tmp_path, VIDX_ES_URL=es_url, VIDX_KIBANA_URL=kb_url)
        setup = vidx(env, "es-setup")
        assert setup.returncode == 0, setup.stderr
        assert json.loads(setup.stdout)["embedding_model"] == "intfloat/multilingual-e5-small"

        run = Running(env)
        try:
            drop(talk_video, tmp_path / "watch")
            wait_for(lambda: run.status().get("talk.mp4") == "done", 120, "talk.mp4 indexed", run.proc)
            check_search(run)
        finally:
            seconds, err = run.stop()
        assert run.proc.returncode == 0, err
        print(f"[figure] ES journey: SIGTERM to exit {seconds:.2f}s")
        assert seconds <= 10
        assert "failed" not in err.lower() or "0 failed" in err.lower()

        index_before = fake.aliases["vidx-events"]
        env2 = {**env, "VIDX_EMBED_MODEL": other_model(tmp_path)}
        re_ = vidx(env2, "reindex", "-q")
        assert re_.returncode == 0, re_.stderr
        assert fake.aliases["vidx-events"] != index_before  # a new index behind the alias
        docs = fake.docs("vidx-events")
        assert docs and {d["embedding_model"] for d in docs.values()} == {env2["VIDX_EMBED_MODEL"]}

        ver = vidx(env2, "verify", "--json")
        assert ver.returncode == 0, ver.stdout + ver.stderr
        assert json.loads(ver.stdout)["ok"] is True
        # unset, VIDX_EMBED_MODEL follows what the index holds; set to another model, verify says what to do
        assert vidx(env, "verify").returncode == 0
        stale = vidx({**env, "VIDX_EMBED_MODEL": "multilingual-e5-small"}, "verify")
        assert stale.returncode == 1 and "vidx reindex" in stale.stdout

        kb = vidx(env, "kibana-setup")
        assert kb.returncode == 0, kb.stderr
        assert any(o.get("type") == "index-pattern" or o.get("type") == "dashboard" for o in kibana.imported)


def test_daemon_refuses_to_start_on_a_mismatched_index(tmp_path: Path, talk_video: Path) -> None:
    """Fail fast: a schema/model mismatch stops `vidx run` with the fix, before any analysis."""
    with serve() as (es_url, fake):
        env = base_env(tmp_path, VIDX_ES_URL=es_url)
        assert vidx(env, "es-setup", "--dims", "384").returncode == 0
        drop(talk_video, tmp_path / "watch")
        env2 = {**env, "VIDX_EMBED_MODEL": other_model(tmp_path), "VIDX_PORT": str(free_port())}
        out = vidx(env2, "run", timeout=120)
        assert out.returncode == 1
        assert "vidx reindex" in out.stderr
        assert fake.docs("vidx-events") == {}  # nothing analysed, nothing written


def test_embedded_journey(tmp_path: Path, talk_video: Path) -> None:
    env = base_env(tmp_path)
    run = Running(env)
    try:
        drop(talk_video, tmp_path / "watch")
        wait_for(lambda: run.status().get("talk.mp4") == "done", 120, "talk.mp4 indexed", run.proc)
        check_search(run)
        second = vidx(env, "index", str(tmp_path / "watch" / "talk.mp4"))
        assert second.returncode == 1 and "already writing" in second.stderr  # one writer at a time
    finally:
        seconds, err = run.stop()
    assert run.proc.returncode == 0, err
    assert seconds <= 10
    ver = vidx(env, "verify")
    assert ver.returncode == 0 and ver.stdout.strip().endswith("ok"), ver.stdout + ver.stderr


def test_sigterm_during_a_vlm_window_stops_fast_and_resumes_at_that_window(tmp_path: Path, talk_video: Path) -> None:
    """`vidx run` with the openai analyzer; SIGTERM while the server is still answering the
    second window: the process exits within 10 s, and the next start asks only that window."""
    import threading

    from tests.vlm.conftest import ChatServer
    from tests.vlm.test_openai_provider import realistic

    asked = threading.Event()
    hold = threading.Event()

    def slow_second(start: float, end: float, n: int) -> str | int:
        if start > 0:
            asked.set()
            hold.wait(60)  # a long generation on a busy GPU
        return realistic(start, end, 1)

    server = ChatServer(slow_second)
    try:
        env = base_env(tmp_path, VIDX_ANALYZER="openai", VIDX_OPENAI_BASE_URL=server.url, VIDX_WINDOW_SECONDS="20",
                       VIDX_WINDOW_OVERLAP="4", VIDX_VLM_FPS="1", VIDX_VLM_MAX_PIXELS=str(64 * 64))
        run = Running(env)
        try:
            drop(talk_video, tmp_path / "watch")
            wait_for(asked.is_set, 120, "the second window's request", run.proc)
        finally:
            seconds, err = run.stop()
        print(f"[figure] SIGTERM during a VLM window: exited in {seconds:.2f}s")
        assert seconds <= 10, err
        first_calls = dict(server.calls)
        assert first_calls.get((0.0, 16.0)) == 1
        hold.set()
        run = Running(env)
        try:
            wait_for(lambda: run.status().get("talk.mp4") == "done", 120, "talk.mp4 indexed", run.proc)
        finally:
            run.stop()
        assert server.calls[(0.0, 16.0)] == 1  # the first window came from the checkpoint
        assert server.calls[(12.0, 32.0)] == first_calls[(12.0, 32.0)] + 1  # the interrupted one was asked again
    finally:
        hold.set()
        server.httpd.shutdown()


def test_a_lecture_with_speech_is_searchable_in_the_web_page(tmp_path: Path) -> None:
    """`vidx run` on the defaults (embedded store, CPU analyzer, bundled speech model): a lecture
    with a spoken soundtrack and no subtitles; its phrases are found at their seconds in the page."""
    from tests.media import espeak_available, make_speech_video

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; make test does it)")
    lecture = make_speech_video(tmp_path / "lecture.mp4", [(4.0, "Today we talk about solar panels."),
                                                          (14.0, "The turbine needs maintenance every spring.")],
                                22.0, scenes=[(11.0, (200, 200, 200)), (11.0, (20, 20, 120))])
    env = base_env(tmp_path, VIDX_OCR="true")
    env.pop("VIDX_ANALYZER")
    run = Running(env)
    try:
        (tmp_path / "watch").mkdir(exist_ok=True)
        shutil.copy(lecture, tmp_path / "watch" / "lecture.mp4")
        wait_for(lambda: run.status().get("lecture.mp4") == "done", 180, "lecture.mp4 indexed", run.proc)
        hits = run.search("turbine maintenance", "keyword")
        assert hits[0]["source"] == "speech" and abs(hits[0]["start_sec"] - 14.0) <= 1.5
        with urllib.request.urlopen(run.url + "/?q=turbine+maintenance&mode=hybrid", timeout=30) as r:
            page = r.read().decode()
        assert "<em>turbine</em>" in page.lower() or "<em>Turbine</em>" in page
        tr = get_json(f"{run.url}/api/videos/{hits[0]['video_id']}/transcript")[1]
        assert [round(x["start_sec"]) for x in tr["lines"]] and any("solar" in x["text"].lower() for x in tr["lines"])
    finally:
        run.stop()


def test_upload_through_the_browser_reaches_done_on_the_status_page(tmp_path: Path, talk_video: Path) -> None:
    """`vidx run`; a user opens /status in Chromium, uploads a video with the form, and watches
    it reach done without reloading the page; then finds it by search."""
    from tests.conftest import chromium_path

    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Chromium is not installed (make install-test installs it)")
    from playwright.sync_api import sync_playwright

    from tests.ui.test_browser import ARGS

    upload = tmp_path / "upload" / "talk.mp4"
    upload.parent.mkdir()
    shutil.copy(talk_video, upload)
    run = Running(base_env(tmp_path))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page()
            page.goto(run.url + "/status")
            page.set_input_files("form.upload input[type=file]", str(upload))
            page.click("form.upload button[type=submit]")
            page.wait_for_selector("text=talk.mp4 was added")
            page.wait_for_selector("tr[data-path$='talk.mp4'] td.state:text('done')", timeout=120_000)
            browser.close()
        assert (tmp_path / "watch" / "talk.mp4").is_file()
        assert run.status() == {"talk.mp4": "done"}
        assert run.search("scene", "keyword")  # its scenes are searchable
    finally:
        run.stop()


def test_a_taken_port_is_one_line_that_names_the_setting(tmp_path: Path) -> None:
    """`vidx run` and `vidx serve` on a port another program holds: one line, exit code 2, no URL
    announced and no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = base_env(tmp_path, VIDX_PORT=str(port))
        for cmd in ("run", "serve"):
            r = vidx(env, cmd, timeout=120)
            assert r.returncode == 2, (cmd, r.stderr)
            lines = [x for x in r.stderr.splitlines() if x.strip() and "WARNING" not in x and " INFO " not in x]
            assert lines == [f"vidx: port {port} on 127.0.0.1 is already in use (another vidx?): stop it, or set "
                             "VIDX_PORT to a free port"], r.stderr
            assert "Traceback" not in r.stderr and "UI on http" not in r.stderr
