"""Run a video's decoding and analysis under supervision.

The work runs in a worker thread and reports progress through a :class:`Heartbeat`.
The caller's thread watches it: when the daemon is stopping the caller returns at once
(:class:`Cancelled`, within a fraction of a second even while a VLM request is in
flight), and when no progress has been reported for ``stall_seconds`` the video fails
with :class:`Stalled` (a hung decoder) while the daemon goes on.  An abandoned worker
stops at its next progress report; the process can exit without waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from vidx.errors import Cancelled

T = TypeVar("T")

POLL_S = 0.1


class Stalled(RuntimeError):
    """The analysis made no progress for too long."""


class Heartbeat:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.where = "starting"
        self.abandoned = threading.Event()

    def beat(self, where: str = "") -> None:
        if self.abandoned.is_set():
            raise Cancelled()  # the supervisor gave up on this work: stop here
        self.last = time.monotonic()
        if where:
            self.where = where


def run_supervised(work: Callable[[Heartbeat], T], stall_seconds: float,
                   should_stop: Callable[[], bool], name: str = "analysis") -> T:
    hb = Heartbeat()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = work(hb)
        except BaseException as exc:  # handed to the supervising thread
            box["error"] = exc

    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    while True:
        t.join(POLL_S)
        if not t.is_alive():
            break
        if should_stop():
            hb.abandoned.set()
            raise Cancelled()
        idle = time.monotonic() - hb.last
        if idle > stall_seconds:
            hb.abandoned.set()
            raise Stalled(f"{name} made no progress for {idle:.0f}s (last: {hb.where}); the decoder may hang on "
                          "this file (VIDX_STALL_SECONDS)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
