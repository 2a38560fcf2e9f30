"""Logging setup: named loggers, the current video's name on every ingest line."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from vidx.config import Settings

# the video being processed; set by the ingest pipeline, shown on every log line
current_video: ContextVar[str] = ContextVar("current_video", default="")


class _VideoContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = current_video.get()
        record.video = f"[{name}] " if name else ""
        return True


def setup_logging(settings: Settings) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_vidx", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._vidx = True  # type: ignore[attr-defined]
    handler.addFilter(_VideoContext())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(video)s%(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in ("urllib3", "elastic_transport", "sentence_transformers", "httpx", "watchdog", "PIL", "RapidOCR"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
