"""Progress bars on the console (tqdm), one per video being processed."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, key: str, label: str) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        with self._lock:
            self._bars[key] = tqdm(
                total=100, desc=label[:40], unit="%", file=self.stream, leave=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
            )

    def update(self, key: str, frac: float, msg: str) -> None:
        with self._lock:
            bar = self._bars.get(key)
            if bar is None:
                return
            bar.n = int(frac * 100)
            bar.set_postfix_str(msg[:40], refresh=False)
            bar.refresh()

    def finish(self, key: str, state: str, events: int, error: str | None) -> None:
        with self._lock:
            bar = self._bars.pop(key, None)
            if bar is None:
                return
            if state == "done":
                bar.n = 100
                bar.set_postfix_str(f"{events} events", refresh=False)
            else:
                bar.set_postfix_str(f"{state}: {(error or '')[:60]}", refresh=False)
            bar.refresh()
            bar.close()
