from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from tests.fakes.embedder import HashEmbedder  # noqa: E402
from tests.media import TALK_CUES, make_video, write_srt  # noqa: E402
from tests.ui.conftest import app  # noqa: E402,F401  (fixtures every test folder may use)
from tests.vlm.conftest import chat_server  # noqa: E402,F401
from vidx.config import Settings, load_settings  # noqa: E402


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VIDX_* from the developer's shell and no vidx.toml leak into a test."""
    for k in list(os.environ):
        if k.startswith("VIDX_") and k != "VIDX_TEST_ES_URL":
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("VIDX_CONFIG", str(tmp_path / "no-such-vidx.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared models (the joined bundled Whisper) shared by every test of the session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def make_settings(tmp_path: Path, models_cache: Path) -> Callable[..., Settings]:
    def make(**kw: Any) -> Settings:
        base: dict[str, Any] = dict(
            models_dir=models_cache,
            watch_dir=tmp_path / "watch",
            data_dir=tmp_path / "data",
            stable_seconds=0.3,
            poll_seconds=0.05,
            rescan_seconds=0.5,
            ocr=False,
            analyzer="basic",
        )
        base.update(kw)
        s = load_settings(**base)
        s.watch_dir.mkdir(parents=True, exist_ok=True)
        return s

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_embedder() -> Any:
    from vidx.embed import load_embedder

    return load_embedder(str(Settings.model_fields["embed_model"].default))  # the default model


@pytest.fixture(scope="session")
def talk_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32 s video: red, green, blue (with the text EXIT 42), yellow; 4 subtitle lines."""
    d = tmp_path_factory.mktemp("talk")
    make_video(d / "talk.mp4", texts={2: "EXIT 42"})
    write_srt(d / "talk.srt", TALK_CUES)
    return d / "talk.mp4"


@pytest.fixture
def watch_copy(settings: Settings, talk_video: Path) -> Callable[[str], Path]:
    """Copy the talk video (and its subtitles) into the watch folder under a name."""

    def copy(stem: str = "talk") -> Path:
        dest = settings.watch_dir / f"{stem}.mp4"
        shutil.copy(talk_video, dest)
        shutil.copy(talk_video.with_suffix(".srt"), dest.with_suffix(".srt"))
        return dest

    return copy


def chromium_path() -> str | None:
    for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(p).exists():
            return p
    return shutil.which("chromium")
