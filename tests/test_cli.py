from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidx.cli import build_parser, main


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("run", "ingest", "serve", "index", "search", "status", "config", "reindex", "es-setup"):
        assert cmd in out


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    monkeypatch.setenv("VIDX_ES_URL", "https://es.example:9200")
    monkeypatch.setenv("VIDX_ES_API_KEY", "top-secret-key")
    pw = tmp_path / "pw"
    pw.write_text("file-secret\n")
    monkeypatch.setenv("VIDX_ES_USERNAME", "vidx")
    monkeypatch.setenv("VIDX_ES_PASSWORD_FILE", str(pw))
    assert main(["config", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert "top-secret-key" not in out and "file-secret" not in out
    assert data["es_api_key"] == "********" and data["es_password"] == "********"
    assert data["es_url"] == "https://es.example:9200"


def test_config_reads_vidx_toml(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:
    toml = tmp_path / "vidx.toml"
    toml.write_text('port = 9999\nwatch_dir = "/srv/videos"\n')
    monkeypatch.setenv("VIDX_CONFIG", str(toml))
    monkeypatch.setenv("VIDX_PORT", "9000")  # the environment wins over the file
    assert main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["port"] == 9000 and data["watch_dir"] == "/srv/videos"


@pytest.mark.parametrize("env,needle", [
    ({"VIDX_PORT": "99999"}, "VIDX_PORT"),
    ({"VIDX_ANALYZER": "magic"}, "VIDX_ANALYZER"),
    ({"VIDX_ES_URL": "ftp://x"}, "VIDX_ES_URL"),
])
def test_invalid_settings_are_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            env: dict[str, str], needle: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["config"]) == 2
    assert needle in capsys.readouterr().err


def test_status_on_a_fresh_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["status", "--json", "--data-dir", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out) == {"videos": [], "forgetting_paused": None}


def test_search_rejects_bad_size(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["search", "x", "--size", "0", "--data-dir", str(tmp_path)]) == 2
    assert "size" in capsys.readouterr().err


def test_index_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["index", str(tmp_path / "nope.mp4"), "--data-dir", str(tmp_path)]) == 2


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, sp in sub.choices.items():  # type: ignore[union-attr]
        assert sp.description, name


def test_relative_folders_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vidx.config import load_settings

    monkeypatch.chdir(tmp_path)
    s = load_settings(data_dir="data", watch_dir="./watch")
    assert s.data_dir == tmp_path / "data" and s.watch_dir == tmp_path / "watch"
    assert s.thumbs_dir.is_absolute()
