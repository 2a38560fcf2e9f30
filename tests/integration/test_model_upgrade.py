"""Upgrading a library made with the previous default embedding model (English MiniLM), through
the real `vidx` command: the library keeps answering as it is, `vidx reindex --embed-only` moves
it to the multilingual default without analysing any video again, `vidx verify` agrees, and a
question in English now finds the Chinese line."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDX_")}
    env.update(VIDX_WATCH_DIR=str(tmp / "watch"), VIDX_DATA_DIR=str(tmp / "data"), VIDX_ANALYZER="basic",
               VIDX_OCR="false", VIDX_CONFIG=str(tmp / "none.toml"), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def vidx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidx", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=env["VIDX_DATA_DIR"].rsplit("/", 1)[0])


def search(env: dict[str, str], q: str, mode: str) -> dict[str, Any]:
    out = vidx(env, "search", q, "--mode", mode, "--size", "3", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def at(res: dict[str, Any], second: float) -> bool:
    """The top hit covers that second of the video."""
    return bool(res["hits"]) and res["hits"][0]["start_sec"] <= second <= res["hits"][0]["end_sec"]


def stored_model(tmp: Path) -> str:
    with sqlite3.connect(tmp / "data" / "events.sqlite3") as db:
        return str(db.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()[0])


def test_a_minilm_library_keeps_working_then_moves_to_the_multilingual_default(tmp_path: Path,
                                                                                talk_video: Path) -> None:
    (tmp_path / "watch").mkdir()
    shutil.copy(talk_video, tmp_path / "watch" / "talk.mp4")
    shutil.copy(talk_video.with_suffix(".srt"), tmp_path / "watch" / "talk.srt")
    old = env_for(tmp_path, VIDX_EMBED_MODEL="all-MiniLM-L6-v2")  # as the previous release indexed it
    out = vidx(old, "index", "-q", str(tmp_path / "watch" / "talk.mp4"))
    assert out.returncode == 0, out.stderr
    assert stored_model(tmp_path) == "sentence-transformers/all-MiniLM-L6-v2"

    # the upgrade: VIDX_EMBED_MODEL unset, the default is now multilingual; the library still answers
    new = env_for(tmp_path)
    before = search(new, "keeper of the beacon", "semantic")
    assert at(before, 27.0), before["hits"]
    assert vidx(new, "verify").returncode == 0

    moved = vidx(new, "reindex", "--embed-only")
    assert moved.returncode == 0, moved.stderr
    assert "re-embedding" in moved.stderr  # progress on the way
    assert stored_model(tmp_path) == "intfloat/multilingual-e5-small"
    ver = vidx(new, "verify", "--json")
    assert ver.returncode == 0 and json.loads(ver.stdout)["ok"] is True, ver.stdout + ver.stderr

    # an English question finds the Chinese line, which the English model could not
    en = search(new, "see you at the railway station tomorrow morning", "semantic")
    assert at(en, 18.0), en["hits"]
    # the same events, nothing analysed again
    assert at(search(new, "lighthouse keeper", "keyword"), 27.0)


def test_an_elasticsearch_minilm_index_keeps_working_then_moves_to_the_default(tmp_path: Path,
                                                                                talk_video: Path) -> None:
    from tests.fakes.es_server import serve

    (tmp_path / "watch").mkdir()
    shutil.copy(talk_video, tmp_path / "watch" / "talk.mp4")
    shutil.copy(talk_video.with_suffix(".srt"), tmp_path / "watch" / "talk.srt")
    with serve() as (es_url, fake):
        old = env_for(tmp_path, VIDX_ES_URL=es_url, VIDX_EMBED_MODEL="all-MiniLM-L6-v2")
        assert vidx(old, "es-setup").returncode == 0
        out = vidx(old, "index", "-q", str(tmp_path / "watch" / "talk.mp4"))
        assert out.returncode == 0, out.stderr
        before = fake.aliases["vidx-events"]

        new = env_for(tmp_path, VIDX_ES_URL=es_url)
        setup = vidx(new, "es-setup")  # idempotent setup after the upgrade: the index keeps its model
        assert setup.returncode == 0, setup.stderr
        assert json.loads(setup.stdout)["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert at(search(new, "keeper of the beacon", "semantic"), 27.0)

        moved = vidx(new, "reindex", "--embed-only")
        assert moved.returncode == 0, moved.stderr
        assert fake.aliases["vidx-events"] != before  # a new index behind the alias
        docs = fake.docs("vidx-events")
        assert docs and {d["embedding_model"] for d in docs.values()} == {"intfloat/multilingual-e5-small"}
        ver = vidx(new, "verify", "--json")
        assert ver.returncode == 0 and json.loads(ver.stdout)["ok"] is True, ver.stdout + ver.stderr
        assert at(search(new, "see you at the railway station tomorrow morning", "semantic"), 18.0)
