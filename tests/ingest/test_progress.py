"""Progress in a log file is plain lines, not a redrawn bar; on a terminal it is a bar."""

from __future__ import annotations

import io
from pathlib import Path

from ingest.progress import ConsoleProgress
from tests.integration.test_journeys import base_env, vidx


def test_progress_to_a_file_is_a_few_plain_lines() -> None:
    out = io.StringIO()
    p = ConsoleProgress(out)
    assert p.plain
    p.start("k", "talk.mp4")
    for i in range(1001):
        p.update("k", i / 1000, f"decoding {i}")
    p.finish("k", "done", 12, None)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    assert lines[0] == "talk.mp4: started" and lines[-1].startswith("talk.mp4: done, 12 events (")
    assert 10 <= len(lines) <= 13 and lines[1] == "talk.mp4:   0%  decoding 0"


def test_a_terminal_gets_a_bar() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    p = ConsoleProgress(out)
    p.start("k", "talk.mp4")
    p.update("k", 0.5, "speech")
    p.finish("k", "failed", 0, "the file is empty")
    assert not p.plain and "\r" in out.getvalue() and "failed: the file is empty" in out.getvalue()


def test_vidx_index_writes_plain_progress_lines_into_a_log(tmp_path: Path, talk_video: Path) -> None:
    import shutil

    env = base_env(tmp_path, VIDX_ASR="off")
    (tmp_path / "watch").mkdir()
    shutil.copy(talk_video, tmp_path / "watch" / "talk.mp4")
    r = vidx(env, "index", str(tmp_path / "watch"))
    assert r.returncode == 0, r.stderr
    mine = [x for x in r.stderr.splitlines() if x.startswith("talk.mp4: ")]
    assert mine[0] == "talk.mp4: started" and mine[-1].startswith("talk.mp4: done, ") and "\r" not in r.stderr
