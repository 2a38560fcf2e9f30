"""Progress on the console, one per video being processed: tqdm bars on a terminal, plain
lines (one every 10 % or 30 s, never redraws) when the output is a file or a pipe, so a log
stays readable."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

LINE_STEP = 10  # percent between two plain lines
LINE_EVERY_S = 30.0  # ... or this long, whichever comes first


class _Lines:
    """A progress bar as plain lines."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream, self.label = stream, label
        self.t0 = self.last_t = time.monotonic()
        self.last_pct = -LINE_STEP
        self._say("started")

    def _say(self, text: str) -> None:
        self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def update(self, pct: int, msg: str) -> None:
        now = time.monotonic()
        if pct >= self.last_pct + LINE_STEP or now - self.last_t >= LINE_EVERY_S:
            self.last_pct, self.last_t = pct - pct % LINE_STEP, now
            self._say(f"{pct:3d}%" + (f"  {msg}" if msg else ""))

    def close(self, text: str) -> None:
        self._say(f"{text} ({time.monotonic() - self.t0:.1f} s)")


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True, plain: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        # plain lines unless the stream is a terminal
        self.plain = (not getattr(self.stream, "isatty", lambda: False)()) if plain is None else plain
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, key: str, label: str) -> None:
        if not self.enabled:
            return
        if self.plain:
            with self._lock:
                self._bars[key] = _Lines(self.stream, label[:60])
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
            if isinstance(bar, _Lines):
                bar.update(int(frac * 100), msg[:80])
                return
            bar.n = int(frac * 100)
            bar.set_postfix_str(msg[:40], refresh=False)
            bar.refresh()

    def finish(self, key: str, state: str, events: int, error: str | None) -> None:
        with self._lock:
            bar = self._bars.pop(key, None)
            if bar is None:
                return
            if isinstance(bar, _Lines):
                bar.close(f"done, {events} events" if state == "done" else f"{state}: {(error or '')[:200]}")
                return
            if state == "done":
                bar.n = 100
                bar.set_postfix_str(f"{events} events", refresh=False)
            else:
                bar.set_postfix_str(f"{state}: {(error or '')[:60]}", refresh=False)
            bar.refresh()
            bar.close()
