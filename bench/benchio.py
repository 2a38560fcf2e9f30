"""What every benchmark script shares: the machine it ran on, and its JSON report."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_report(out: Path, report: dict[str, Any]) -> None:
    """Print the report and write it to ``out`` (folders made as needed)."""
    text = json.dumps(report, indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)


def last_json(text: str) -> dict[str, Any]:
    """The last JSON object in a script's output (some print progress lines before it)."""
    text = text.strip()
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        return dict(json.loads(text[text.rindex("\n{") + 1:]))
