"""One writer per data folder: the daemon, ``vidx index``, ``vidx reindex`` and
``vidx verify --fix`` hold an exclusive lock on ``<data_dir>/writer.lock``.

The lock is an ``flock`` on an open file, so the operating system releases it when the
process ends, even after ``kill -9``; a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("vidx.writelock")

LOCK_NAME = "writer.lock"


class WriterBusy(RuntimeError):
    """Another vidx process already writes to this data folder."""


class WriterLock:
    def __init__(self, data_dir: Path, purpose: str) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text(encoding="utf-8") or "{}"))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            h = self.holder()
            who = f"`vidx {h['purpose']}` (pid {h['pid']})" if "pid" in h else "another vidx process"
            raise WriterBusy(
                f"{who} is already writing to {self.path.parent}; only one writer at a time "
                f"(stop it first, or give this command another VIDX_DATA_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "purpose": self.purpose, "since": time.time()}).encode())
        os.fsync(fd)
        self._fd = fd
        log.debug("writer lock %s taken for %s", self.path, self.purpose)
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
