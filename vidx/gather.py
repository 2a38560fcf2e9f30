"""Callers that arrive together share one piece of work (a model pass, a pass over vectors).

The pattern of a server whose requests each need the same costly pass: a caller that finds
a pass running waits for it, and the next free caller then runs one pass for everything queued
meanwhile. One caller alone never waits for anyone (unless a subclass lingers on purpose)."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Gatherer(Generic[T]):
    """Runs :meth:`_run` over the items of the callers that arrive together; each caller gets
    its own result, or the exception the pass raised. Subclasses give ``_run`` and may refine
    which queued items join a pass (``_select``), what happens when one arrives (``_arrived``)
    and wait for more before a pass (``_gathering``); the hooks run with ``self._cond`` held."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._pending: list[tuple[T, list[Any]]] = []
        self._busy = False

    def submit(self, item: T) -> Any:
        slot: list[tuple[bool, Any]] = []  # (ok, result or exception) once done
        with self._cond:
            self._pending.append((item, slot))
            self._arrived(item)
            while not slot:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                self._gathering()
                chosen = set(self._select([it for it, _ in self._pending], item))
                batch = [p for i, p in enumerate(self._pending) if i in chosen]
                self._pending = [p for i, p in enumerate(self._pending) if i not in chosen]
                self._cond.release()
                try:
                    try:
                        results = self._run([it for it, _ in batch])
                        for (_, s), r in zip(batch, results, strict=True):
                            s.append((True, r))
                    except Exception as exc:  # every caller of the pass gets the error
                        for _, s in batch:
                            s.append((False, exc))
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        ok, value = slot[0]
        if not ok:
            raise value
        return value

    def _run(self, items: list[T]) -> list[Any]:
        raise NotImplementedError

    def _select(self, items: list[T], mine: T) -> list[int]:
        """Indices of the queued items that join the pass ``mine``'s caller runs."""
        return list(range(min(len(items), self.max_batch)))

    def _arrived(self, item: T) -> None:
        """Called as an item is queued."""

    def _gathering(self) -> None:
        """Called before a pass; may wait on ``self._cond`` for more items."""
