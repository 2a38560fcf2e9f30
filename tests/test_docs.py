"""The code drives the docs: every setting and every CLI command is in README.md."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from vidx.cli import build_parser
from vidx.config import Settings, env_name

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", list(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    name = env_name(field)
    assert re.search(rf"`{name}`", README), f"{name} is not documented in README.md"


def test_every_cli_command_is_documented() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"vidx {name}" in README, f"`vidx {name}` is not documented in README.md"


def test_readme_names_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
