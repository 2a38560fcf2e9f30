"""People, as a user meets them: two generated meetings that share one voice are dropped into
the watch folder of `vidx run`; the People page and API list the voices; one is named through
the API; `person:"…"` then finds what that voice said in both meetings and no one else's line;
the SRT puts the name before each of her lines. The voices are espeak-ng voices this speaker
model tells apart (bench/people_bench.py measured the set)."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_journeys import Running, base_env, get_json, send_json, vidx, wait_for

pytestmark = pytest.mark.slow

ADA = "en-us+f3"
ADA_LINES_A = ["The quarterly budget goes to the board on Monday.",
               "I moved the warehouse inventory into the new system.",
               "Our supplier raised the price of copper wire again."]
ADA_LINES_B = ["The parking rules change when the garage reopens.",
               "I signed the contract with the cleaning company."]
OTHER_A = ("en-us+klatt", ["The heating in the east wing broke down overnight.",
                           "We need two more volunteers for the charity run."])
OTHER_B = ("en-029", ["The printer on the third floor is jammed with paper.",
                      "My team finished the customer survey last Thursday."])


def meeting(ada: list[str], other: tuple[str, list[str]]) -> list[tuple[float, str, str]]:
    """Turns that alternate, each line alone with a pause after it."""
    out: list[tuple[float, str, str]] = []
    t = 1.0
    voice, theirs = other
    turns = [(ADA, x) for x in ada] + [(voice, x) for x in theirs]
    order = [turns[i // 2] if i % 2 == 0 else turns[len(ada) + i // 2] for i in range(len(turns))
             if (i % 2 == 0 and i // 2 < len(ada)) or (i % 2 == 1 and i // 2 < len(theirs))]
    for v, text in order:
        out.append((t, text, v))
        t += 0.075 * len(text) + 1.6
    return out


def test_a_voice_named_once_is_found_in_both_meetings(tmp_path: Path) -> None:
    from tests.media import espeak_available, make_speech_video

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; make test does it)")
    a, b = meeting(ADA_LINES_A, OTHER_A), meeting(ADA_LINES_B, OTHER_B)
    make_speech_video(tmp_path / "standup.mp4", a, a[-1][0] + 6)
    make_speech_video(tmp_path / "review.mp4", b, b[-1][0] + 6)
    env = base_env(tmp_path)
    run = Running(env)
    try:
        (tmp_path / "watch").mkdir(exist_ok=True)
        for name in ("standup.mp4", "review.mp4"):
            shutil.copy(tmp_path / name, tmp_path / "watch" / name)
        wait_for(lambda: run.status().get("standup.mp4") == "done" and run.status().get("review.mp4") == "done",
                 300, "both meetings indexed", run.proc)
        code, listing = get_json(run.url + "/api/people")
        assert code == 200, listing
        people = listing["people"]
        assert len(people) == 3, people  # Ada, and one other voice per meeting
        [shared] = [p for p in people if p["videos"] == 2]
        assert shared["has_voice"] and shared["moments"] == len(ADA_LINES_A) + len(ADA_LINES_B)
        assert shared["name"].startswith("Speaker ")
        with urllib.request.urlopen(run.url + "/people", timeout=30) as r:
            page = r.read().decode()
        assert shared["name"] in page and "voice-sample" in page

        code, named = send_json(f"{run.url}/api/people/{shared['id']}", "PATCH", {"name": "Ada Quill"})
        assert code == 200 and named["name"] == "Ada Quill", named
        q = urllib.parse.quote('person:"Ada Quill"')

        def found() -> list[dict[str, Any]]:
            code, out = get_json(f"{run.url}/api/search?q={q}&size=50")
            return out["hits"] if code == 200 else []

        wait_for(lambda: len(found()) == len(ADA_LINES_A) + len(ADA_LINES_B), 60,
                 "the daemon writes the name into her lines")
        hits = found()
        # her lines by time: each one of them found, no one else's
        want = {("standup.mp4", t) for t, _, v in a if v == ADA} | {("review.mp4", t) for t, _, v in b if v == ADA}
        got = {(h["video_path"].rsplit("/", 1)[-1], h["start_sec"]) for h in hits}
        for name, t in want:
            assert any(n == name and abs(s - t) <= 1.0 for n, s in got), (name, t, got)
        others = {("standup.mp4", t) for t, _, v in a if v != ADA} | {("review.mp4", t) for t, _, v in b if v != ADA}
        assert not any(n == name and abs(s - t) <= 1.0 for name, t in others for n, s in got), got
        vid = next(h["video_id"] for h in hits if h["video_path"].endswith("standup.mp4"))
        with urllib.request.urlopen(f"{run.url}/api/videos/{vid}/transcript?format=srt", timeout=30) as r:
            srt = r.read().decode()
        assert srt.count("Ada Quill: ") == len(ADA_LINES_A), srt
        code, tr = get_json(f"{run.url}/api/videos/{vid}/transcript?format=json")
        assert {ln["speaker"]["name"] for ln in tr["lines"] if ln["speaker"]} >= {"Ada Quill"}
        code, person = get_json(f"{run.url}/api/people/{shared['id']}")
        assert code == 200 and len(person["moment_list"]) == len(ADA_LINES_A) + len(ADA_LINES_B)
    finally:
        run.stop()
    # the terminal, with no daemon running: list, name, and the name is in the index at once
    listed = vidx(env, "people", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    other = next(p for p in json.loads(listed.stdout) if p["videos"] == 1)
    named = vidx(env, "people", "rename", str(other["id"]), "Bo Chen")
    assert named.returncode == 0 and f"done: {other['lines']} line(s)" in named.stdout, named.stdout + named.stderr
    found = vidx(env, "search", 'person:"Bo Chen"', "--json")
    assert json.loads(found.stdout)["total"] == other["lines"]
    assert vidx(env, "people", "merge", str(other["id"]), "x").returncode == 2
    assert vidx(env, "people", "rename", "999", "Nobody").returncode == 1


def test_people_off_makes_no_voiceprints(tmp_path: Path) -> None:
    from tests.media import espeak_available, make_speech_video

    if not espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng; make test does it)")
    a = meeting(ADA_LINES_A, OTHER_A)
    video = make_speech_video(tmp_path / "standup.mp4", a, a[-1][0] + 6)
    env = base_env(tmp_path, VIDX_PEOPLE="off")
    done = vidx(env, "index", str(video), "-q")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data" / "people.sqlite3").exists()
    out = json.loads(vidx(env, "search", "warehouse inventory", "--json").stdout)
    assert out["total"] >= 1 and all(not h["people"] for h in out["hits"])
    # the upgrade path: people turned on later, found from what is stored (no speech recognition again)
    env.pop("VIDX_PEOPLE")
    again = vidx(env, "reindex", "--people")
    assert again.returncode == 0 and "2 speaker(s)" in again.stdout, again.stdout + again.stderr
    people = json.loads(vidx(env, "people", "list", "--json").stdout)
    assert sorted(p["lines"] for p in people) == [len(OTHER_A[1]), len(ADA_LINES_A)]
    ada = next(p for p in people if p["lines"] == len(ADA_LINES_A))
    found = json.loads(vidx(env, "search", f'person:"{ada["name"]}"', "--json").stdout)
    assert found["total"] == len(ADA_LINES_A)
    ada_times = [t for t, _, v in a if v == ADA]
    assert all(any(abs(h["start_sec"] - t) <= 1.0 for t in ada_times) for h in found["hits"]), found["hits"]
