"""Every EventStore implementation runs the same contract suite: add a factory here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from vidx.store.base import EventStore

StoreFactory = Callable[[Path], EventStore]


def _embedded(tmp: Path) -> EventStore:
    from vidx.store.embedded import EmbeddedStore

    return EmbeddedStore(tmp / "events.sqlite3")


def _elastic(tmp: Path) -> EventStore:
    from tests.fakes.es_server import make_elastic_store

    return make_elastic_store()


FACTORIES: dict[str, StoreFactory] = {"embedded": _embedded, "elastic": _elastic}


@pytest.fixture(params=list(FACTORIES))
def store(request: Any, tmp_path: Path) -> Iterator[EventStore]:
    s = FACTORIES[request.param](tmp_path)
    yield s
    s.close()
