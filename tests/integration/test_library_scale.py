"""A library far larger than any candidate window, through the real `vidx` command and HTTP API.

A 40-minute lecture with 2,000 subtitle lines and a short meeting are indexed with
`vidx index`; `vidx search --json` and `GET /api/search` must then give true totals, the last
page, filters and facets, counted here from the subtitle files the test wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_journeys import base_env, free_port, get_json, vidx, wait_for
from tests.media import make_video, write_srt

pytestmark = pytest.mark.slow

TOPICS = ["harbour", "tunnel", "orchard", "museum", "market"]


def lecture_cues(n: int = 2000) -> list[tuple[float, float, str]]:
    cues = []
    for i in range(n):
        topic = TOPICS[i % 5]
        text = f"Line {i}: the budget for the {topic}" if i % 3 == 0 else f"Line {i}: a note about the {topic}"
        cues.append((i * 1.2, i * 1.2 + 1.0, text))
    return cues


def meeting_cues() -> list[tuple[float, float, str]]:
    return [(i * 2.0, i * 2.0 + 1.5, f"Item {i}: " + ("the road budget" if i % 3 == 0 else "any other business"))
            for i in range(30)]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    tmp = tmp_path_factory.mktemp("scale")
    watch = tmp / "watch"
    watch.mkdir()
    make_video(watch / "lecture.mp4", scenes=[(2410.0, (20, 40, 60))], fps=1, size=(64, 36))
    write_srt(watch / "lecture.srt", lecture_cues())
    make_video(watch / "b.mp4", scenes=[(61.0, (60, 20, 20))], fps=2, size=(64, 36))
    write_srt(watch / "b.srt", meeting_cues())
    env = base_env(tmp, VIDX_ASR="off")
    r = vidx(env, "index", "-q", str(watch), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return env, tmp


def search_json(env: dict[str, str], query: str, *args: str) -> dict[str, Any]:
    r = vidx(env, "search", "--json", query, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_totals_pages_filters_and_facets_are_true_through_the_cli(library: tuple[dict[str, str], Path]) -> None:
    env, _ = library
    lecture_budget = sum(1 for *_, t in lecture_cues() if "budget" in t)
    meeting_budget = sum(1 for *_, t in meeting_cues() if "budget" in t)
    assert lecture_budget == 667 and meeting_budget == 10
    r = search_json(env, "budget source:subtitle", "--mode", "keyword", "--size", "100")
    assert r["total"] == lecture_budget + meeting_budget and r["total_relation"] == "eq"
    assert r["pages"] == 7
    last = search_json(env, "budget source:subtitle", "--mode", "keyword", "--size", "100", "--page", "7")
    assert len(last["hits"]) == (lecture_budget + meeting_budget) - 600
    assert dict(map(tuple, r["facets"]["video"])) == {"lecture.mp4": lecture_budget, "b.mp4": meeting_budget}
    # a filter on a video whose few matches are far below the best of the library
    b = search_json(env, "budget video:b.mp4 source:subtitle", "--mode", "hybrid", "--size", "100")
    assert b["total"] == meeting_budget and {h["video_path"].rsplit("/", 1)[-1] for h in b["hits"]} == {"b.mp4"}
    # only filters: every line of the meeting, by time
    only = search_json(env, "video:b.mp4 source:subtitle", "--size", "100")
    assert only["total"] == 30 and [h["start_sec"] for h in only["hits"]] == sorted(h["start_sec"]
                                                                                    for h in only["hits"])
    # time range in the long lecture: lines 500-599 (600 s to 720 s)
    rng = search_json(env, "budget source:subtitle", "--mode", "keyword", "--from", "600", "--to", "719.9")
    assert rng["total"] == sum(1 for s, e, t in lecture_cues() if "budget" in t and e > 600 and s < 719.9)
    # exclusion
    ex = search_json(env, "budget -orchard source:subtitle", "--mode", "keyword")
    assert ex["total"] == sum(1 for *_, t in lecture_cues() + meeting_cues() if "budget" in t and "orchard" not in t)


def test_a_line_and_the_scene_around_it_are_one_moment_through_the_cli(library: tuple[dict[str, str], Path]) -> None:
    env, _ = library
    lines = [t for s, e, t in lecture_cues() if "orchard" in t and e > 0 and s < 59.0]
    args = ("--mode", "keyword", "--from", "0", "--to", "59", "--size", "100", "--min-score", "0.3")
    flat = search_json(env, "orchard video:lecture.mp4", *args)
    # the first minute's scene holds the lines spoken in it, so it matches too
    assert flat["total"] == len(lines) + 1 and sum(h["source"] == "scene" for h in flat["hits"]) == 1
    grouped = search_json(env, "orchard video:lecture.mp4", *args, "--group", "moment")
    assert grouped["total"] == len(lines) and grouped["total_relation"] == "eq" and grouped["events_total"] == len(lines) + 1
    assert {h["source"] for h in grouped["hits"]} == {"subtitle"}
    assert sorted(h["dialogue"] for h in grouped["hits"]) == sorted(lines)
    assert [len(h["context"]) for h in grouped["hits"]].count(1) == 1  # the scene, folded into one line
    assert grouped["hits"][0]["score"] == flat["hits"][0]["score"]


def test_the_api_and_the_cli_give_the_same_json(library: tuple[dict[str, str], Path]) -> None:
    env, tmp = library
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vidx", "serve"], env={**env, "VIDX_PORT": str(port)},
                            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(proc.stderr or []), daemon=True)
    reader.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(url + "/healthz")[0] == 200, 120, "vidx serve", proc)
        # the server loads the model and the index as it starts, before the first search asks
        wait_for(lambda: any("search ready in" in line for line in log), 120, "search warm-up", proc)
        params = {"q": "budget harbour", "mode": "hybrid", "size": "20", "page": "3"}
        code, api = get_json(f"{url}/api/search?{urllib.parse.urlencode(params)}")
        assert code == 200 and api["total"] > 600
        cli = search_json(env, "budget harbour", "--mode", "hybrid", "--size", "20", "--page", "3")
        assert cli == api
        code, api = get_json(f"{url}/api/search?{urllib.parse.urlencode({**params, 'group': 'moment'})}")
        assert code == 200 and api["group"] == "moment"
        assert api == search_json(env, "budget harbour", "--mode", "hybrid", "--size", "20", "--page", "3",
                                  "--group", "moment")
        code, err = get_json(f"{url}/api/search?{urllib.parse.urlencode({'q': 'budget ' * 5000})}")
        assert code == 400 and "too long" in err["error"]
        many = " ".join(f"w{i}x" for i in range(60))
        code, err = get_json(f"{url}/api/search?{urllib.parse.urlencode({'q': many})}")
        assert code == 400 and "at most 32" in err["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_serve_with_several_worker_processes(library: tuple[dict[str, str], Path]) -> None:
    """VIDX_WEB_WORKERS=2: two processes answer the API as one does, and SIGTERM stops them all."""
    env, tmp = library
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vidx", "serve"],
                            env={**env, "VIDX_PORT": str(port), "VIDX_WEB_WORKERS": "2"},
                            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get_json(url + "/healthz")[0] == 200, 120, "vidx serve", proc)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        params = {"q": "budget orchard", "mode": "keyword", "size": "10", "page": "2"}
        answers = [get_json(f"{url}/api/search?{urllib.parse.urlencode(params)}") for _ in range(6)]
        assert all(code == 200 for code, _ in answers)
        assert all(a == answers[0][1] for _, a in answers)
        assert answers[0][1] == search_json(env, "budget orchard", "--mode", "keyword", "--page", "2")
        # the same port again: vidx's own message, not a traceback
        other = subprocess.run([sys.executable, "-m", "vidx", "serve"],
                               env={**env, "VIDX_PORT": str(port), "VIDX_WEB_WORKERS": "2"},
                               capture_output=True, text=True, cwd=tmp, timeout=60)
        assert other.returncode != 0 and "already in use" in other.stderr and "Traceback" not in other.stderr
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{w}").exists() for w in workers)


def test_subtitle_lines_with_impossible_times_do_not_fail_the_video(tmp_path: Path) -> None:
    """A cue before 0, one past the end and one ending before it starts: the video is indexed
    with its good lines, the bad ones clamped or dropped with one warning."""
    watch = tmp_path / "watch"
    watch.mkdir()
    make_video(watch / "clip.mp4", scenes=[(10.0, (30, 30, 90))], fps=5, size=(64, 36))
    (watch / "clip.ass").write_text(
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, "
        "SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
        "Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,"
        "20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,-0:00:01.00,0:00:02.00,Default,,0,0,0,,the early lighthouse line\n"
        "Dialogue: 0,0:00:03.00,0:00:04.50,Default,,0,0,0,,the middle lighthouse line\n"
        "Dialogue: 0,0:00:08.00,0:00:14.00,Default,,0,0,0,,the late lighthouse line\n"
        "Dialogue: 0,0:00:30.00,0:00:31.00,Default,,0,0,0,,the lighthouse line after the end\n"
        "Dialogue: 0,0:00:06.00,0:00:05.00,Default,,0,0,0,,the backwards lighthouse line\n", encoding="utf-8")
    env = base_env(tmp_path, VIDX_ASR="off")
    r = vidx(env, "index", str(watch / "clip.mp4"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ValidationError" not in r.stderr and "1 warnings" in r.stderr
    hits = search_json(env, "lighthouse source:subtitle", "--mode", "keyword", "--size", "20")["hits"]
    spans = sorted((h["start_sec"], h["end_sec"], h["dialogue"]) for h in hits)
    assert spans[0][:2] == (0.0, 2.0) and spans[0][2] == "the early lighthouse line"
    assert (3.0, 4.5, "the middle lighthouse line") in spans
    assert spans[-1][0] == 8.0 and spans[-1][1] <= 10.5 and spans[-1][2] == "the late lighthouse line"
    assert not any("after the end" in s[2] or "backwards" in s[2] for s in spans)


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_title_tag_in_latin1_or_gbk_does_not_stop_indexing(tmp_path: Path, container: str) -> None:
    """Containers whose metadata is not UTF-8 (a Latin-1 or GBK title) index like any other."""
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (it writes the raw metadata bytes)")
    watch = tmp_path / "watch"
    watch.mkdir()
    plain = tmp_path / "plain.mp4"
    make_video(plain, scenes=[(4.0, (90, 30, 30))], fps=5, size=(64, 36))
    for enc, title in (("latin1", "Café crème été"), ("gbk", "城市预算会议")):
        out = watch / f"{enc}.{container}"
        subprocess.run([b"ffmpeg", b"-loglevel", b"error", b"-y", b"-i", str(plain).encode(), b"-c", b"copy",
                        b"-metadata", b"title=" + title.encode(enc), str(out).encode()], check=True)
        write_srt(out.with_suffix(".srt"), [(0.5, 2.0, f"the {enc} harbour line")])
    env = base_env(tmp_path, VIDX_ASR="off")
    r = vidx(env, "index", str(watch), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 indexed, 0 failed" in r.stderr
    for enc in ("latin1", "gbk"):
        hits = search_json(env, f"{enc} harbour", "--mode", "keyword")["hits"]
        assert hits and hits[0]["video_path"].endswith(f"{enc}.{container}")


def test_files_that_are_not_videos_are_described_in_words_without_paths(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "empty.mp4").write_bytes(b"")
    (watch / "notes.mp4").write_text("These are meeting notes, not a video.\n" * 20, encoding="utf-8")
    (watch / "photo.mp4").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 8)
    env = base_env(tmp_path, VIDX_ASR="off")
    r = vidx(env, "index", str(watch), timeout=300)
    assert r.returncode == 1
    status = json.loads(vidx(env, "status", "--json").stdout)
    errors = {Path(v["path"]).name: v["error"] for v in status["videos"]}
    assert "the file is empty" in errors["empty.mp4"]
    assert "not a video: it looks like text" in errors["notes.mp4"]
    assert "not a video: it looks like an image (JPEG)" in errors["photo.mp4"]
    for e in errors.values():
        assert str(tmp_path) not in e and "Errno" not in e, e


def test_subtitle_files_get_a_language_from_their_name_or_their_text(tmp_path: Path) -> None:
    """`talk.zh.srt` says zh; `b.srt` says nothing and its text is detected as English; a part of
    the name that is not a language (`c.forced.srt`) is ignored and the German text detected; a
    bilingual `bi.srt` gets zh on its Chinese lines and en on its English ones."""
    watch = tmp_path / "watch"
    watch.mkdir()
    for stem in ("talk", "b", "c", "bi"):
        make_video(watch / f"{stem}.mp4", scenes=[(8.0, (40, 90, 40))], fps=5, size=(64, 36))
    write_srt(watch / "talk.zh.srt", [(0.5, 2.0, "Budget: 我们明天早上在火车站见面"), (3.0, 5.0, "会议的预算已经批准了 budget")])
    write_srt(watch / "b.srt", [(0.5, 2.0, "The road budget was approved at the meeting."),
                                (3.0, 5.0, "We will meet at the station tomorrow morning, budget in hand.")])
    write_srt(watch / "c.forced.srt", [(0.5, 2.0, "Der Haushalt für die Straße wurde gestern beschlossen, budget."),
                                      (3.0, 5.0, "Wir treffen uns morgen früh am Bahnhof.")])
    write_srt(watch / "bi.srt", [(0.5, 1.5, "The ferry leaves at noon."), (1.6, 2.5, "渡轮中午出发。"),
                                 (3.0, 4.0, "Bring your ferry tickets."), (4.1, 5.0, "请带好渡轮船票。")])
    env = base_env(tmp_path, VIDX_ASR="off")
    r = vidx(env, "index", str(watch), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    bi = search_json(env, "video:bi.mp4 source:subtitle")["hits"]
    assert {h["dialogue"]: h["language"] for h in bi} == {
        "The ferry leaves at noon.": "en", "渡轮中午出发。": "zh", "Bring your ferry tickets.": "en", "请带好渡轮船票。": "zh"}
    assert [h["dialogue"] for h in search_json(env, "video:bi.mp4 lang:zh source:subtitle")["hits"]] == [
        "渡轮中午出发。", "请带好渡轮船票。"]
    r = search_json(env, "budget source:subtitle", "--mode", "keyword", "--size", "50")
    by_video = {h["video_path"].rsplit("/", 1)[-1]: h["language"] for h in r["hits"]}
    assert by_video == {"talk.mp4": "zh", "b.mp4": "en", "c.mp4": "de"}
    assert dict(map(tuple, r["facets"]["language"])) == {"zh": 2, "en": 2, "de": 1}
    assert {h["video_path"].rsplit("/", 1)[-1] for h in search_json(env, "lang:zh source:subtitle")["hits"]} \
        == {"talk.mp4", "bi.mp4"}


def test_a_vlm_provider_plugin_is_selectable_by_its_entry_point_name(tmp_path: Path) -> None:
    """A provider installed under the entry-point group vidx.vlm_providers is a valid
    VIDX_ANALYZER and `vidx index --analyzer` choice, and its answers become events."""
    site = tmp_path / "site"
    (site / "vidx_echo_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "vidx_echo_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vidx-echo-plugin\nVersion: 1.0\n", encoding="utf-8")
    (site / "vidx_echo_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[vidx.vlm_providers]\necho = vidx_echo_plugin:make\n", encoding="utf-8")
    (site / "vidx_echo_plugin.py").write_text(
        "import json\n"
        "class Echo:\n"
        "    name = 'echo'\n"
        "    model_id = 'test/echo-1'\n"
        "    def __init__(self, settings):\n"
        "        self.settings = settings\n"
        "    def generate(self, clip, prompt, system):\n"
        "        return json.dumps([{'start': clip.start, 'end': min(clip.end, clip.start + 2),\n"
        "                            'description': 'a zeppelin drifts over the quay'}])\n"
        "    def follow_up(self, clip, prompt, system, previous, message):\n"
        "        return previous\n"
        "def make(settings):\n"
        "    return Echo(settings)\n", encoding="utf-8")
    watch = tmp_path / "watch"
    watch.mkdir()
    make_video(watch / "harbour.mp4", scenes=[(6.0, (20, 60, 90))], fps=5, size=(64, 36))
    env = base_env(tmp_path, VIDX_ASR="off")
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    helped = vidx(env, "index", "--help")
    assert "echo" in helped.stdout
    r = vidx(env, "index", "--analyzer", "echo", str(watch), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    hits = search_json(env, "zeppelin quay", "--mode", "keyword")["hits"]
    assert hits and hits[0]["model"] == "test/echo-1" and hits[0]["description"] == "a zeppelin drifts over the quay"
    bad = vidx({**env, "VIDX_ANALYZER": "nosuch"}, "config")
    assert bad.returncode == 2 and "unknown analyzer 'nosuch'" in bad.stderr and "echo" in bad.stderr


def test_a_soundtrack_longer_than_the_picture_is_not_a_truncated_file(tmp_path: Path) -> None:
    """An MKV (no per-stream duration) whose audio runs 12 s past a 5 s picture: indexed without
    "decoding stopped", and its duration is the picture's."""
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (it muxes the test file)")
    watch = tmp_path / "watch"
    watch.mkdir()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x36:rate=5:duration=5",
                    "-f", "lavfi", "-i", "sine=duration=12:sample_rate=16000", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", str(watch / "concert.mkv")], check=True)
    env = base_env(tmp_path, VIDX_ASR="off")
    r = vidx(env, "index", str(watch), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "decoding stopped" not in r.stderr and "ends early" not in r.stderr
    (video,) = json.loads(vidx(env, "status", "--json").stdout)["videos"]
    assert video["state"] == "done" and not video.get("warnings")
    assert abs(float(video.get("duration_sec") or 0) - 5.0) < 0.5, video
